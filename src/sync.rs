//! The atomics the pure protocol modules (`ring`, `eventcount`) use. The loom model tests
//! (`tests/loom.rs`) compile those modules against loom's atomics instead, through a `sync`
//! module of their own, so the model checker runs this very code.

pub(crate) use std::sync::atomic::{compiler_fence, fence, AtomicU32, AtomicU64, Ordering};
