//! # shmchan
//!
//! Typed single-producer / single-consumer channels between two processes on one machine,
//! through a named POSIX shared-memory segment.
//!
//! A channel is a ring of fixed-layout elements (`T:`[`bytemuck::Pod`]) in a segment that
//! two unrelated processes open **by name**. Nothing is serialized: `put` copies a slice into
//! the ring with one `memcpy`, `get` copies out with one (the data region is mapped twice back
//! to back, so no copy ever splits at the wrap). While the peer is not sleeping, neither side
//! makes a system call; a side that must wait sleeps on a doorbell (a named FIFO) that tokio
//! awaits without a thread, or that the blocking twins `poll(2)`.
//!
//! ```
//! use shmchan::{ChannelIo, ErrorKind, Options};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-lib-{}", std::process::id());
//! // Process A
//! let chan = ChannelIo::<f32>::create(&name, Options::new().capacity(1 << 16))?;
//! let mut w = chan.writer()?;
//! w.put(&[1.0, 2.0, 3.0, 4.0]).await?;
//! w.close();
//!
//! // Process B (here the same one, for the doctest)
//! let chan = ChannelIo::<f32>::open(&name)?;
//! let mut r = chan.reader()?;
//! let mut frame = [0f32; 3];
//! r.get(&mut frame).await?; // exactly 3, whatever sizes were put
//! assert_eq!(frame, [1.0, 2.0, 3.0]);
//! let n = r.get_some(&mut frame).await?; // 1..=3, whatever is there
//! assert_eq!(n, 1);
//! let end = r.get(&mut frame).await.unwrap_err(); // the writer closed, nothing remains
//! assert_eq!((end.kind(), end.remaining()), (ErrorKind::Closed, 0));
//! # Ok(())
//! # }
//! ```
//!
//! ## Guarantees
//!
//! - **Order, no loss, no duplicates**: items arrive in the order they were put; every
//!   committed item is delivered once. A `get` that cannot be satisfied because the writer
//!   closed removes nothing.
//! - **Ends**: one writer and one reader across all processes ([`ErrorKind::EndTaken`]). A
//!   holder that dies (even by SIGKILL) frees its end at once: the kernel drops its lock.
//! - **Closing**: the writer's close (or drop) lets the reader drain, then it gets
//!   [`ErrorKind::Closed`]; [`WriterFront::abort`] passes a reason. The reader's close
//!   discards what remains and fails the writer's `put` with [`ErrorKind::Closed`].
//! - **Peer death**: a `put`/`get` that waits while the peer's process dies returns
//!   `PeerGone` (the reader first drains every committed item). The death is reported once
//!   (to the reader: once nothing is left); after that a call waits for a restarted peer.
//! - **Cleanup**: a finished or never-used channel is removed when its last handle drops;
//!   one with unread items stays until read or [removed](ChannelIo::remove).
//! - **No lost wakeups, no fence on the fast path**: on channels created with the default
//!   [`Barrier::Auto`] where `membarrier(2)` is allowed, `put` and `get` execute no fence
//!   instruction; a side about to sleep issues `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`,
//!   which makes the peer's CPU fence for it (see [`Barrier`]). A process that may not use
//!   `membarrier` gets [`ErrorKind::MembarrierUnavailable`] for such a channel;
//!   [`Barrier::Fence`] channels work everywhere.
//! - **Hostile peers**: nothing read from the segment is trusted. Identity fields are
//!   validated at open and never re-read; every index read from the peer is checked, so a
//!   corrupt peer causes [`ErrorKind::Corrupted`] errors or garbled values, never an out-of-bounds
//!   access. The copy API (`put`/`get`) never holds a reference into shared memory; the
//!   zero-copy views ([`Slots`], [`View`]) stay in bounds too, but their aliasing guarantee
//!   assumes a peer that follows the protocol (see their docs). One thing no POSIX program can prevent: if another process **truncates** the
//!   segment file while it is mapped, touching the lost pages raises `SIGBUS`. Segments are
//!   created mode 0600, so only the same user (or root) can do that.
//!
//! ## Files
//!
//! Channel `NAME` lives in the directory `/dev/shm/shmchan.NAME` (or under `$SHMCHAN_DIR`):
//! the segment `ring` and two doorbell FIFOs. See `docs/design.md` for the layout and the
//! wake protocol.
//!
//! ## Platform
//!
//! Linux (OFD locks, pidfds, tmpfs), 64-bit. Peer-death detection while waiting uses a pidfd
//! of the peer's pid as recorded in the segment; if the two processes are in different pid
//! namespaces that pid is not visible, and a sleeping side learns of its peer's death
//! within a second (it then re-checks the peer's lock periodically; the peer's end is freed
//! at once for a new holder either way).
//!
//! Async methods need a tokio runtime with its IO driver enabled (`enable_io` or
//! `enable_all`), like every tokio socket type; a front registers its doorbell with the
//! runtime of its first async wait, so use its async methods within one runtime.
//!
//! ## fork
//!
//! A child forked without `exec` inherits the parent's handles and ends, and their open file
//! descriptions (so their locks), but it cannot use them. Every call of an inherited end that
//! moves data or waits fails with [`ErrorKind::Forked`] (one load and one compare per call,
//! no system call), and so does claiming an end through an inherited handle: open the
//! channel by name in the child and claim an end of its own. Dropping inherited handles and
//! ends (or exiting) in the child does nothing to the channel: the parent's ends stay open
//! and claimed.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

// The mapping arithmetic relies on `usize` holding any in-range u64 size (a ring is up to
// 1 TiB, mapped twice); 32-bit targets would need extra checks, and shmchan targets
// 64-bit Linux.
#[cfg(not(target_pointer_width = "64"))]
compile_error!("shmchan supports 64-bit targets only");

mod barrier;
mod channel;
mod element;
mod end;
mod error;
mod eventcount;
mod fork;
mod header;
pub mod layout;
mod liveness;
mod message;
mod notify;
mod options;
mod raw;
mod reader;
mod ring;
#[cfg(test)]
mod ring_tests;
mod segment;
mod sync;
mod writer;

pub use barrier::Barrier;
pub use channel::ChannelIo;
pub use element::{Bytes, ElementType, ElementTypeError, Stride, Typed};
pub use error::{Context, Error, ErrorKind};
pub use header::{
    Descr, DescrError, End, Primitive, WriterState, DESCR_MAX, MAX_DATA_LEN, REASON_MAX, SCHEMA_MAX,
};
pub use message::{Message, MessageChannel, MessageReader, MessageSlot, MessageWriter, Messages};
pub use notify::{Readiness, WaitStats, WaitStrategy};
pub use options::{Options, Origin, DEFAULT_RING_BYTES};
pub use raw::{RawChannel, RawReader, RawSlots, RawView, RawWriter};
pub use reader::{ReaderFront, View};
pub use segment::{
    base_dir, channel_dir, validate_name, ChannelInfo, ChannelState, Collected, EndInfo, GcAction,
    GcOptions, GcReason, KeepMapped, Removal, NAME_MAX,
};
pub use writer::{Slots, WriterFront};
