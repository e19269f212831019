//! [`ReaderFront`]: the consuming end.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytemuck::Pod;

use crate::element::{Stride, Typed};
use crate::end::{self, EndCore};
use crate::error::{ClaimError, Corruption, GetError};
use crate::header::{End, CLOSED, OPEN};
use crate::info::WriterState;
use crate::notify::{self, Ended, FastThenSlow, Mode, WaitStrategy, Wake};
use crate::ring::{Consumer, RingError};
use crate::segment::Segment;

mod poll;
mod view;
pub use view::View;

/// The reading end of a channel: takes items out in order, in any batch sizes.
///
/// Obtained from [`ChannelIo::reader`](crate::ChannelIo::reader); one per channel across all
/// processes. Dropping it [closes](Self::close) the channel: what remains is discarded and
/// the writer's `put` fails with [`PutError::Closed`](crate::PutError::Closed).
///
/// ```
/// use shmchan::{ChannelIo, GetError, Options};
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
/// assert!(matches!(r.get_some(&mut frame).await, Err(GetError::Closed { .. })));
/// # Ok(())
/// # }
/// ```
///
/// The second parameter says how the front counts elements: [`Typed`] (the default: each
/// `T` is one) for a [`ChannelIo<T>`](crate::ChannelIo), [`Bytes`](crate::Bytes) for a
/// [`RawChannel`](crate::RawChannel), whose reader is a [`RawReader`](crate::RawReader).
pub struct ReaderFront<T, S: Stride = Typed> {
    core: EndCore,
    ring: Consumer,
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
enum Avail {
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
fn probe(ring: &mut Consumer, seg: &Segment, want: u64) -> Option<Result<Avail, RingError>> {
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
    pub(crate) fn claim(
        seg: &Arc<Segment>,
        wait: WaitStrategy,
        stride: S,
    ) -> Result<Self, ClaimError> {
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
    fn fits(&self, n: usize) -> Result<(), GetError> {
        if n > self.capacity() {
            return Err(GetError::Oversized {
                name: self.core.seg.name().to_string(),
                requested: n,
                capacity: self.capacity(),
            });
        }
        Ok(())
    }

    /// The elements in a buffer of `len` `T`s, or the error for a partial element.
    fn whole(&self, len: usize) -> Result<usize, GetError> {
        self.elements(len).ok_or_else(|| GetError::PartialElement {
            name: self.core.seg.name().to_string(),
            len,
            element_size: self.stride.units(),
        })
    }

    fn check_open(&self) -> Result<(), GetError> {
        if self.core.closed {
            return Err(GetError::ReaderClosed {
                name: self.core.seg.name().to_string(),
            });
        }
        Ok(())
    }

    /// The first unconsumed item. Up to `capacity` slots from here are one contiguous range
    /// of the mirrored mapping; the first `available` of them are committed.
    #[inline]
    fn items(&self) -> *const T {
        // SAFETY: `slot() < capacity`, so the offset (slot × the element's size in bytes:
        // `units` `T`s of `size_of::<T>()`, which open checked against the header's element
        // size) is inside the first copy of the data region; elements are that size apart
        // from a page-aligned start, so the pointer is aligned for T.
        unsafe {
            (self.core.hot.data() as *const T).add(self.ring.slot() as usize * self.stride.units())
        }
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
    fn ended(&self, avail: u64, state: u32, filled: usize) -> GetError {
        let name = self.core.name().to_string();
        let remaining = avail as usize;
        match self.core.seg.header().writer_end(state) {
            Ok(WriterState::Aborted(reason)) => GetError::Aborted {
                name,
                reason,
                remaining,
                filled,
            },
            // `probe` reports an end only for a state that is not open.
            Ok(WriterState::Closed | WriterState::Open) => GetError::Closed {
                name,
                remaining,
                filled,
            },
            Err(detail) => GetError::Corrupted(Corruption {
                name,
                field: "writer_state",
                detail,
            }),
        }
    }

    /// Waits until `want` items are available or the stream ended.
    async fn wait_for(&mut self, want: u64, mode: Mode) -> Result<Avail, GetError> {
        let seg = &self.core.seg;
        let ring = &mut self.ring;
        if let Some(r) = probe(ring, seg, want) {
            return r.map_err(|e| self.core.corrupt(e).into());
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
            .map_err(|source| GetError::Io {
                name: seg.name().to_string(),
                op: "waiting for items",
                source,
            })?;
        match woke {
            Wake::Ready(r) => r.map_err(|e| self.core.corrupt(e).into()),
            Wake::Ended(end) => Err(self.wait_ended(end)),
        }
    }

    /// The error of a wait that ended without its condition (`Waiter::wait`, or
    /// `prepare_wait`).
    #[cold]
    fn wait_ended(&mut self, end: Ended) -> GetError {
        let seg = &self.core.seg;
        let remaining = match self.ring.available(&seg.header().tail.0, u64::MAX) {
            Ok(n) => n as usize,
            Err(e) => return self.core.corrupt(e).into(),
        };
        match end {
            Ended::PeerGone { holder } => {
                if remaining == 0 {
                    // Everything the dead writer committed has been read: its death is now
                    // reported for good, and later calls wait for a restarted writer. While
                    // items remain, each wait reports it again (the caller drains first).
                    self.core.waiter.reported(holder);
                }
                GetError::PeerGone {
                    name: seg.name().to_string(),
                    remaining,
                    filled: 0,
                }
            }
            Ended::TimedOut => GetError::TimedOut {
                name: seg.name().to_string(),
                remaining,
                filled: 0,
            },
            Ended::Corrupt(detail) => self.core.peer_corrupt(detail).into(),
        }
    }

    /// The non-waiting path: `want` items if they are there now (None: take the slow path,
    /// which also reports closes and errors).
    #[inline]
    fn ready_now(&mut self, want: usize) -> Option<usize> {
        // No test of `want` against 0 or the capacity: 0 items are always there (and taking
        // them does nothing), more than the capacity never. None of `core.closed` either: it
        // is set only on the way out (see `EndCore::closed`).
        // Enough items: the stream's end does not matter yet (they are read first).
        let tail = &self.core.hot.header().tail.0;
        self.ring
            .available_now(tail, want as u64)
            .map(|a| a as usize)
    }

    /// The fast path of `get` and `blocking_get`: fills `to` if enough items are there now
    /// (false: take the slow path).
    #[inline(always)]
    fn get_now(&mut self, to: &mut [T]) -> bool {
        let Some(n) = self.elements(to.len()) else {
            return false;
        };
        if self.ready_now(n).is_none() {
            return false;
        }
        self.take(to, n);
        true
    }

    /// The fast path of `get_some` and `blocking_get_some`: takes what is there now, if
    /// anything (None: take the slow path).
    #[inline(always)]
    fn get_some_now(&mut self, to: &mut [T]) -> Option<usize> {
        let room = self.elements(to.len())?;
        if room == 0 {
            return None;
        }
        let k = self.ready_now(1)?.min(room);
        self.take(to, k);
        Some(k)
    }

    /// The fast path of `peek` and `blocking_peek`: `n` if that many items are there now.
    #[inline(always)]
    fn peek_now(&mut self, n: usize) -> Option<usize> {
        self.ready_now(n).map(|_| n)
    }

    async fn get_some_in(&mut self, to: &mut [T], mode: Mode) -> Result<usize, GetError> {
        self.check_open()?;
        let room = self.whole(to.len())?;
        if room == 0 {
            return Ok(0);
        }
        match self.wait_for(1, mode).await? {
            Avail::Enough(avail) => {
                let k = (avail as usize).min(room);
                self.take(to, k);
                Ok(k)
            }
            Avail::Ended { avail, state } => Err(self.ended(avail, state, 0)),
        }
    }

    async fn get_in(&mut self, to: &mut [T], mode: Mode) -> Result<(), GetError> {
        self.check_open()?;
        let n = self.whole(to.len())?;
        if n == 0 {
            return Ok(());
        }
        if n as u64 > self.core.seg.capacity {
            // Larger than the ring: it can never hold all of `to` at once, so fill it
            // progressively.
            let mut filled = 0;
            while filled < n {
                filled += self
                    .get_some_in(&mut to[filled * self.stride.units()..], mode)
                    .await
                    .map_err(|e| e.add_filled(filled))?;
            }
            return Ok(());
        }
        match self.wait_for(n as u64, mode).await? {
            Avail::Enough(_) => {
                self.take(to, n);
                Ok(())
            }
            Avail::Ended { avail, state } => Err(self.ended(avail, state, 0)),
        }
    }

    /// Fills `to` with exactly `to.len()` items, waiting until that many are available. The
    /// batch sizes the writer used do not matter.
    ///
    /// # Errors
    ///
    /// If the writer closed (or aborted, or its process died: reported once nothing is left,
    /// after which a call waits for a restarted writer) and fewer than `to.len()`
    /// items remain: [`GetError::Closed`] (or [`Aborted`](GetError::Aborted),
    /// [`PeerGone`](GetError::PeerGone)) with `remaining`, and **nothing is removed**: the
    /// remaining items can still be read with [`get_some`](Self::get_some) or a smaller
    /// `get`. Only when `to` is larger than the ring is it filled progressively; the error
    /// then says how many items are already in `to` (`filled`).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe if `to.len()` ≤ the capacity: items are removed only in the same poll
    /// that completes the call, so a dropped future removed nothing. For a larger `to`, a
    /// dropped future may have consumed a prefix into `to`.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, GetError, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-get-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.put(b"abc").await?;
    /// w.put(b"de").await?;
    /// w.close();
    /// let mut four = [0u8; 4];
    /// r.get(&mut four).await?;
    /// assert_eq!(&four, b"abcd");
    /// let err = r.get(&mut four).await.unwrap_err();
    /// assert!(matches!(err, GetError::Closed { remaining: 1, filled: 0, .. }));
    /// let mut one = [0u8; 1];
    /// r.get(&mut one).await?; // the last item is still there
    /// assert_eq!(&one, b"e");
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn get<'a>(
        &'a mut self,
        to: &'a mut [T],
    ) -> impl Future<Output = Result<(), GetError>> + 'a {
        FastThenSlow::new(move || {
            if self.get_now(to) {
                return Err(Ok(()));
            }
            Ok(self.get_in(to, Mode::Async))
        })
    }

    /// Copies between 1 and `to.len()` items into `to` — whatever is available — waiting only
    /// while none is. Returns the count (0 only for an empty `to`).
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] (or [`Aborted`](GetError::Aborted),
    /// [`PeerGone`](GetError::PeerGone)) once the writer ended the stream and every item was
    /// read.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: items are removed only in the poll that returns them.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-get-some-{}", std::process::id());
    /// let chan = ChannelIo::<i32>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.put(&[1, 2, 3]).await?;
    /// let mut buf = [0; 8];
    /// assert_eq!(r.get_some(&mut buf).await?, 3);
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn get_some<'a>(
        &'a mut self,
        to: &'a mut [T],
    ) -> impl Future<Output = Result<usize, GetError>> + 'a {
        // As `get`: the first poll takes what is there; only a miss builds the waiting future.
        FastThenSlow::new(move || {
            if let Some(k) = self.get_some_now(to) {
                return Err(Ok(k));
            }
            Ok(self.get_some_in(to, Mode::Async))
        })
    }

    /// Copies whatever is available now (up to `to.len()`) without waiting; `Ok(0)` if
    /// nothing is.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] / [`Aborted`](GetError::Aborted) once the writer ended the stream
    /// and nothing is left; [`Corrupted`](GetError::Corrupted). Never
    /// [`PeerGone`](GetError::PeerGone): it does not wait, so it does not watch the writer
    /// (it returns `Ok(0)` while a dead writer's items are all read).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-try-get-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let mut r = chan.reader()?;
    /// assert_eq!(r.try_get_some(&mut [0u8; 4])?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_some(&mut self, to: &mut [T]) -> Result<usize, GetError> {
        self.check_open()?;
        let room = self.whole(to.len())?;
        if room == 0 {
            return Ok(0);
        }
        match probe(&mut self.ring, &self.core.seg, 1) {
            None => Ok(0),
            Some(Err(e)) => Err(self.core.corrupt(e).into()),
            Some(Ok(Avail::Enough(avail))) => {
                let k = (avail as usize).min(room);
                self.take(to, k);
                Ok(k)
            }
            Some(Ok(Avail::Ended { avail, state })) => Err(self.ended(avail, state, 0)),
        }
    }

    /// The blocking twin of [`get`](Self::get). Do not call it from async code.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-blocking-get-{}", std::process::id());
    /// let chan = ChannelIo::<u32>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let t = std::thread::spawn(move || w.blocking_put(&[5; 10_000]));
    /// let mut big = vec![0u32; 10_000];
    /// r.blocking_get(&mut big)?;
    /// t.join().unwrap()?;
    /// assert!(big.iter().all(|&x| x == 5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn blocking_get(&mut self, to: &mut [T]) -> Result<(), GetError> {
        // Fast path without building the waiting future (which run_blocking would move).
        if self.get_now(to) {
            return Ok(());
        }
        self.blocking_get_slow(to)
    }

    /// The waiting part of `blocking_get`, out of line: its future's large frame then costs
    /// the fast path nothing (no prologue saving registers and reserving the frame).
    #[inline(never)]
    #[cold]
    fn blocking_get_slow(&mut self, to: &mut [T]) -> Result<(), GetError> {
        notify::run_blocking(self.get_in(to, Mode::Blocking))
            .unwrap_or_else(|| Err(blocking_bug(self.core.seg.name())))
    }

    /// The blocking twin of [`get_some`](Self::get_some). Do not call it from async code.
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-blocking-get-some-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.blocking_put(b"xyz")?;
    /// assert_eq!(r.blocking_get_some(&mut [0u8; 2])?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn blocking_get_some(&mut self, to: &mut [T]) -> Result<usize, GetError> {
        if let Some(k) = self.get_some_now(to) {
            return Ok(k);
        }
        notify::run_blocking(self.get_some_in(to, Mode::Blocking))
            .unwrap_or_else(|| Err(blocking_bug(self.core.seg.name())))
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

#[cold]
fn blocking_bug(name: &str) -> GetError {
    GetError::Io {
        name: name.to_string(),
        op: "waiting for items",
        source: end::blocking_bug(),
    }
}

impl<T, S: Stride> ReaderFront<T, S> {
    /// Closes the channel: what remains is discarded, and the writer's waiting or next
    /// `put` fails with [`PutError::Closed`](crate::PutError::Closed). Dropping the reader
    /// does the same.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options, PutError};
    /// # let name = format!("doc-reader-close-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, r) = (chan.writer()?, chan.reader()?);
    /// r.close();
    /// assert!(matches!(w.blocking_put(b"x"), Err(PutError::Closed { accepted: 0, .. })));
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
