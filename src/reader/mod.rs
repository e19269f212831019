//! [`ReaderFront`]: the consuming end.

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytemuck::Pod;

use crate::element::{Stride, Typed};
use crate::end::EndCore;
use crate::error::{Context, Error, ErrorKind};
use crate::header::{End, WriterState, CLOSED, OPEN};
use crate::notify::{Ended, Mode, WaitStrategy, Wake};
use crate::ring::{Consumer, RingError};
use crate::segment::Segment;

mod get;
mod view;
pub use view::View;

/// The reading end of a channel: takes items out in order, in any batch sizes.
///
/// Obtained from [`ChannelIo::reader`](crate::ChannelIo::reader); one per channel across all
/// processes. Dropping it [closes](Self::close) the channel: what remains is discarded and
/// the writer's `put` fails with [`ErrorKind::Closed`].
///
/// ```
/// use shmchan::{ChannelIo, ErrorKind, Options};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let name = format!("doc-reader-front-{}", std::process::id());
/// let chan = ChannelIo::<f32>::create(&name, Options::new())?;
/// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
/// w.put(&[0.5; 300]).await?;
/// w.close();
/// let mut frame = [0f32; 256];
/// r.get(&mut frame).await?;                    // exactly 256 items
/// let n = r.get_some(&mut frame).await?;       // whatever is there, here the last 44
/// assert_eq!(n, 44);
/// let end = r.get_some(&mut frame).await.unwrap_err();
/// assert_eq!(end.kind(), ErrorKind::Closed);
/// # Ok(())
/// # }
/// ```
///
/// The second parameter says how the front counts elements: [`Typed`] (the default: each
/// `T` is one) for a [`ChannelIo<T>`](crate::ChannelIo), [`Bytes`](crate::Bytes) for a
/// [`RawChannel`](crate::RawChannel), whose reader is a [`RawReader`](crate::RawReader).
pub struct ReaderFront<T, S: Stride = Typed> {
    pub(crate) core: EndCore,
    pub(crate) ring: Consumer,
    stride: S,
    _t: PhantomData<fn(T) -> T>,
}

impl<T, S: Stride> std::fmt::Debug for ReaderFront<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderFront")
            .field("name", &self.core.name())
            .field("consumed", &self.ring.position())
            .field("closed", &self.core.closed)
            .finish()
    }
}

/// What the ring holds for a reader that wants some number of items.
pub(crate) enum Avail {
    /// At least as many as wanted (the count).
    Enough(u64),
    /// Fewer, and the writer closed (`state`): no more will come.
    Ended { avail: u64, state: u32 },
}

/// A hint to the CPU to fetch the cache line at `p` (no effect on program semantics: a
/// prefetch is not a memory access and cannot fault).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only loads a line into the cache; it never faults, whatever the
    // address, and `p` is inside our mapping anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The reader's wait condition: `want` items, or the end of the stream.
#[inline]
pub(crate) fn probe(
    ring: &mut Consumer,
    seg: &Segment,
    want: u64,
) -> Option<Result<Avail, RingError>> {
    let h = seg.header();
    match ring.available(&h.tail.0, want) {
        Err(e) => Some(Err(e)),
        Ok(a) if a >= want => Some(Ok(Avail::Enough(a))),
        Ok(_) => {
            // Acquire: pairs with the writer's Release store of its state, made after its
            // last tail store; the tail we re-read below is then final.
            let state = h.writer_state.load(Ordering::Acquire);
            if state == OPEN {
                return None;
            }
            Some(ring.available(&h.tail.0, want).map(|avail| {
                if avail >= want {
                    Avail::Enough(avail)
                } else {
                    Avail::Ended { avail, state }
                }
            }))
        }
    }
}

impl<T: Pod, S: Stride> ReaderFront<T, S> {
    pub(crate) fn claim(seg: &Arc<Segment>, wait: WaitStrategy, stride: S) -> Result<Self, Error> {
        // Resume at the first item not consumed.
        let (core, ring) = EndCore::claim(seg, End::Reader, wait, Consumer::new)?;
        Ok(ReaderFront {
            core,
            ring,
            stride,
            _t: PhantomData,
        })
    }

    /// The elements in `len` `T`s, if that is a whole number of them.
    #[inline(always)]
    fn elements(&self, len: usize) -> Option<usize> {
        self.stride.elements(len)
    }

    /// `Oversized` if `n` elements can never be in the ring at once.
    fn fits(&self, n: usize) -> Result<(), Error> {
        self.core.fits(n)
    }

    /// The elements in a buffer of `len` `T`s, or the error for a partial element.
    fn whole(&self, len: usize) -> Result<usize, Error> {
        self.core.whole(self.stride, len)
    }

    /// [`EndClosed`](ErrorKind::EndClosed) once closed, [`Forked`](ErrorKind::Forked) in a
    /// process that inherited this reader: the first step of every slow path.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        self.core.check()
    }

    /// The first unconsumed item. Up to `capacity` slots from here are one contiguous range
    /// of the mirrored mapping; the first `available` of them are committed.
    #[inline]
    fn items(&self) -> *const T {
        self.core.hot.slot(self.ring.slot(), self.stride.units())
    }

    /// Releases the next `k` items to the writer and wakes it if it sleeps.
    #[inline]
    fn release(&mut self, k: usize) {
        let h = self.core.hot.header();
        self.ring.release(k as u64, &h.head.0);
        self.core.waiter.notify_peer(&h.room_waiting.0);
    }

    /// Copies the next `k` elements into the start of `to` and releases their slots.
    #[inline]
    fn take(&mut self, to: &mut [T], k: usize) {
        let units = k * self.stride.units();
        debug_assert!(to.len() >= units);
        // SAFETY: callers pass `k` ≤ a count `probe` returned, so `k` committed elements
        // (`units` `T`s) start at `items()`, inside the mapping (see `items`); the producer
        // does not write them until we release them below; `to` is a distinct allocation
        // of ≥ `units` `T`s (callers pass `k` ≤ its whole elements).
        unsafe {
            if units == 1 {
                // One item: a plain load, not a call to memcpy.
                to[0] = self.items().read();
            } else {
                std::ptr::copy_nonoverlapping(self.items(), to.as_mut_ptr(), units)
            }
        };
        self.release(k);
    }

    /// The error for a stream that ended (writer state `state`) with `avail` items left.
    #[cold]
    fn ended(&self, avail: u64, state: u32) -> Error {
        let e = match self.core.seg.header().writer_end(state) {
            Ok(WriterState::Aborted(reason)) => self
                .core
                .error(ErrorKind::Aborted)
                .with_context(Context::Reason(reason)),
            // `probe` reports an end only for a state that is not open.
            Ok(WriterState::Closed | WriterState::Open) => self.core.error(ErrorKind::Closed),
            Err(detail) => {
                return Error::corrupted(self.core.name(), "writer_state", detail).by(End::Reader)
            }
        };
        e.with_remaining(avail as usize)
    }

    /// Waits until `want` items are available or the stream ended.
    async fn wait_for(&mut self, want: u64, mode: Mode) -> Result<Avail, Error> {
        let seg = &self.core.seg;
        let ring = &mut self.ring;
        if let Some(r) = probe(ring, seg, want) {
            return r.map_err(|e| self.core.corrupt(e));
        }
        let woke = self
            .core
            .waiter
            .wait(seg, mode, || {
                // While we wait, ask for the line of the next item along with each load of
                // `tail`: the writer writes that line just before it publishes, so when the
                // new `tail` arrives the item's bytes are usually on their way too, instead
                // of costing a second cache miss after it (a ping-pong's one-way latency).
                prefetch(
                    seg.data()
                        .wrapping_add(ring.slot() as usize * seg.elem_size),
                );
                probe(ring, seg, want)
            })
            .await
            .map_err(|source| self.core.io_error("waiting for items", source))?;
        match woke {
            Wake::Ready(r) => r.map_err(|e| self.core.corrupt(e)),
            Wake::Ended(end) => Err(self.wait_ended(end)),
        }
    }

    /// The error of a wait that ended without its condition (`Waiter::wait`, or
    /// `prepare_wait`).
    #[cold]
    pub(crate) fn wait_ended(&mut self, end: Ended) -> Error {
        let seg = &self.core.seg;
        let remaining = match self.ring.available(&seg.header().tail.0, u64::MAX) {
            Ok(n) => n as usize,
            Err(e) => return self.core.corrupt(e),
        };
        match end {
            Ended::PeerGone { holder } => {
                if remaining == 0 {
                    // Everything the dead writer committed has been read: its death is now
                    // reported for good, and later calls wait for a restarted writer. While
                    // items remain, each wait reports it again (the caller drains first).
                    self.core.waiter.reported(holder);
                }
                self.core
                    .error(ErrorKind::PeerGone)
                    .with_remaining(remaining)
            }
            Ended::TimedOut => self
                .core
                .error(ErrorKind::TimedOut)
                .with_remaining(remaining),
            Ended::Corrupt(detail) => self.core.peer_corrupt(detail),
        }
    }

    /// The non-waiting path: `want` items if they are there now (None: take the slow path,
    /// which also reports closes and errors).
    #[inline]
    pub(crate) fn ready_now(&mut self, want: usize) -> Option<usize> {
        // No test of `want` against 0 or the capacity: 0 items are always there (and taking
        // them does nothing), more than the capacity never. None of `core.closed` either: it
        // is set only on the way out (see `EndCore::closed`).
        // Enough items: the stream's end does not matter yet (they are read first).
        // An end inherited through fork takes the slow path, which reports it.
        if self.core.forked() {
            return None;
        }
        let tail = &self.core.hot.header().tail.0;
        self.ring
            .available_now(tail, want as u64)
            .map(|a| a as usize)
    }

    /// Items available right now (stale as soon as it returns while the writer works).
    pub fn len(&mut self) -> usize {
        let h = self.core.seg.header();
        self.ring.available(&h.tail.0, u64::MAX).unwrap_or(0) as usize
    }

    /// True if no item is available right now.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }
}

impl<T, S: Stride> ReaderFront<T, S> {
    /// Closes the channel: what remains is discarded, and the writer's waiting or next
    /// `put` fails with [`ErrorKind::Closed`]. Dropping the reader does the same.
    ///
    /// In a process that inherited the reader through `fork`, closing (or dropping) it
    /// closes nothing: it lets go of this process's copy, and the claimant's reader stays
    /// open (see [`check_process`](Self::check_process)).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, ErrorKind, Options};
    /// # let name = format!("doc-reader-close-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, r) = (chan.writer()?, chan.reader()?);
    /// r.close();
    /// let e = w.blocking_put(b"x").unwrap_err();
    /// assert_eq!((e.kind(), e.accepted()), (ErrorKind::Closed, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.core.finish(|h| {
            // Release: orders our last head store before it, for whoever reads the final
            // state.
            h.reader_state.store(CLOSED, Ordering::Release);
        });
    }

    crate::end::accessors!();
}

impl<T, S: Stride> Drop for ReaderFront<T, S> {
    fn drop(&mut self) {
        self.finish();
    }
}
