//! What the workspace's tests and test tools share: unique channel names ([`unique`]), a
//! small reproducible random generator ([`Rng`]), and time limits, on one wait ([`watchdog`],
//! [`background`]) or on a whole test ([`Deadline`]).
//!
//! This crate does not depend on `shmchan`, so the library's own tests can use it.

mod names;
mod rng;
mod time_limit;

pub use names::unique;
pub use rng::Rng;
pub use time_limit::{background, watchdog, Background, Deadline};
