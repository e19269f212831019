//! [`WriterFront`]: the producing end.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::element::{Stride, Typed};
use crate::end::EndCore;
use crate::error::{Error, ErrorKind};
use crate::header::{End, Header, OPEN};
use crate::notify::{self, Ended, FastThenSlow, Mode, WaitStrategy, Wake};
use crate::ring::{Producer, RingError};
use crate::segment::Segment;

mod slots;
pub use slots::Slots;

/// The writing end of a channel: appends sequences of `T` in order.
///
/// Obtained from [`ChannelIo::writer`](crate::ChannelIo::writer); one per channel across all
/// processes. Dropping it [closes](Self::close) the channel for writing: the reader drains
/// what remains, then gets [`ErrorKind::Closed`](crate::ErrorKind::Closed).
///
/// ```
/// use shmchan::{ChannelIo, Options};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let name = format!("doc-writer-front-{}", std::process::id());
/// let chan = ChannelIo::<u32>::create(&name, Options::new().capacity(1024))?;
/// let mut w = chan.writer()?;
/// w.put(&[1, 2, 3]).await?; // fits: returns at once
/// w.close();                // or drop; `w.abort("sensor lost")` passes a reason on
/// assert_eq!(chan.len(), 3); // waiting for a reader, which may start later
/// # shmchan::ChannelIo::remove(&name)?;
/// # Ok(())
/// # }
/// ```
///
/// The second parameter says how the front counts elements: [`Typed`] (the default: each
/// `T` is one) for a [`ChannelIo<T>`](crate::ChannelIo), [`Bytes`](crate::Bytes) for a
/// [`RawChannel`](crate::RawChannel), whose writer is a [`RawWriter`](crate::RawWriter).
pub struct WriterFront<T, S: Stride = Typed> {
    pub(crate) core: EndCore,
    pub(crate) ring: Producer,
    stride: S,
    _t: PhantomData<fn(T) -> T>,
}

impl<T, S: Stride> std::fmt::Debug for WriterFront<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterFront")
            .field("name", &self.core.name())
            .field("committed", &self.ring.position())
            .field("closed", &self.core.closed)
            .finish()
    }
}

/// Longest a `put` spins for a chunk of room in a full ring (see
/// `WriterFront::wait_for_chunk`): a reader that keeps up frees 2 KiB in about a microsecond.
const CHUNK_SPIN: Duration = Duration::from_micros(5);

impl<T: Pod, S: Stride> WriterFront<T, S> {
    pub(crate) fn claim(seg: &Arc<Segment>, wait: WaitStrategy, stride: S) -> Result<Self, Error> {
        // Resume after the last committed item.
        let (core, ring) = EndCore::claim(seg, End::Writer, wait, Producer::new)?;
        Ok(WriterFront {
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

    /// The elements in `len` `T`s, or the error for a partial element.
    fn whole(&self, len: usize) -> Result<usize, Error> {
        self.core.whole(self.stride, len)
    }

    fn header(&self) -> &Header {
        self.core.seg.header()
    }

    /// Puts as many items of `items` as fit now, without waiting; returns how many (a
    /// prefix, possibly 0).
    ///
    /// # Errors
    ///
    /// [`Closed`](ErrorKind::Closed) if the reader closed the channel,
    /// [`Corrupted`](ErrorKind::Corrupted) if the reader's index makes no sense.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-try-put-{}", std::process::id());
    /// let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    /// let mut w = chan.writer()?;
    /// assert_eq!(w.try_put(&[7; 600])?, 512); // the ring holds 512
    /// assert_eq!(w.try_put(&[7])?, 0);
    /// # shmchan::ChannelIo::remove(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put(&mut self, items: &[T]) -> Result<usize, Error> {
        let len = self.whole(items.len())?;
        let n = self.free(len)?.min(len);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `free()` returned ≥ n.
        unsafe { self.write_and_publish(&items[..n * self.stride.units()]) };
        Ok(n)
    }

    /// Copies `items` (whole elements) into the next slots and publishes them.
    ///
    /// # Safety
    ///
    /// `items` must be whole elements, and at least that many slots must be free (a
    /// `room`/`free` of this writer said so since its last commit).
    #[inline(always)]
    unsafe fn write_and_publish(&mut self, items: &[T]) {
        let units = items.len();
        // SAFETY: `slots()` points at ≥ `units / stride` free slots, that is ≥ `units` `T`s,
        // owned by the producer (the caller's contract), inside the mirrored mapping (see
        // `slots`); `items` is a distinct allocation, so the ranges do not overlap.
        unsafe {
            if units == 1 {
                // One item: a plain store, not a call to memcpy.
                self.slots().write(items[0]);
            } else {
                std::ptr::copy_nonoverlapping(items.as_ptr(), self.slots(), units);
            }
        }
        self.publish(units / self.stride.units());
    }

    /// The fast path of `put`: all of `items` at once if they fit now and nothing is amiss
    /// (else false, having done nothing: the caller takes the full path, which also reports
    /// errors). Small and inlined, returning a bool rather than a `Result` carrying an
    /// `Error`, so a one-item `put` is a handful of instructions.
    #[inline(always)]
    fn put_now(&mut self, items: &[T]) -> bool {
        let Some(n) = self.elements(items.len()) else {
            return false;
        };
        // No test of `n` against 0: there is always room for nothing, and putting it does
        // nothing (but store `tail` unchanged). None of `core.closed` either: it is set
        // only on the way out (see `EndCore::closed`).
        let h = self.core.hot.header();
        // Relaxed: as in `free`. An end inherited through fork takes the slow path too,
        // which reports it (`put_start`); one branch for both.
        if !self.core.open_here(h.reader_state.load(Ordering::Relaxed)) {
            return false;
        }
        // Re-reads the reader's `head` only when the cached view shows too little room.
        // (A variant that never re-read it here, leaving that to the slow path, measured
        // 20–30% slower for batches of 4096 and 8192 and no faster for single items.)
        if self.ring.room_now(&h.head.0, n as u64).is_none() {
            return false;
        }
        // SAFETY: `room()` returned ≥ n just above.
        unsafe { self.write_and_publish(items) };
        true
    }

    /// The part of `put` that does not wait, once the fast path (`put_now`, which both
    /// callers ran first) found too little room: the brief spin for a chunk of room, then as
    /// many items as fit. Returns how many were put; the caller waits for room for the rest.
    #[inline(always)]
    fn put_start(&mut self, items: &[T]) -> Result<usize, Error> {
        // Before the spin, which would otherwise wait for a ring this end may not use.
        self.core.check()?;
        self.wait_for_chunk(self.whole(items.len())?);
        self.try_put(items)
    }

    /// Room a writer waits for (briefly) once the ring was full: 2 KiB worth of items, at
    /// least one, at most an eighth of the ring.
    #[inline]
    fn chunk(&self) -> u64 {
        let per_2k = (2048 / self.core.seg.elem_size.max(1)).max(1) as u64;
        per_2k.min(self.core.seg.capacity / 8).max(1)
    }

    /// Called when a `put` does not fit: the ring is full, the reader is the slower side. A
    /// writer that then took each slot as soon as the reader freed it would write into the
    /// very cache line the reader is reading, and its polls of `head` would take that line
    /// from the reader on every item. So a small `put` first spins briefly (at most
    /// [`CHUNK_SPIN`], and only under a spinning [`WaitStrategy`]) for a chunk of room
    /// (`chunk()`), polling `head` with growing pauses; then it goes on as always (write what
    /// fits, wait for the rest). This delays a write by at most a bounded spin; it never
    /// makes a `put` wait for more room than it needs. (With this, the writer's pauses between
    /// polls in its waits, and the async `get` of `FastThenSlow`, a reader slower than its
    /// writer went from 10–25 M to 53–56 M single items/s.)
    fn wait_for_chunk(&mut self, n: usize) {
        let WaitStrategy::SpinThenSleep(window) = self.core.waiter.strategy else {
            return;
        };
        let limit = window.min(CHUNK_SPIN);
        let chunk = self.chunk();
        let want = (n as u64).saturating_add(chunk);
        // A put of a chunk or more shares at most a line with the reader per call: nothing to
        // gain by waiting.
        if limit.is_zero() || n as u64 >= chunk || want > self.core.seg.capacity {
            return;
        }
        let h = self.core.seg.header();
        let mut start = None;
        let mut i = 0u32;
        // Pauses between two polls of `head`, doubling: each poll takes the line from the
        // reader, whose next store to `head` must take it back (see `pause_between_polls`).
        let mut pauses = 8u32;
        loop {
            match self.ring.room(&h.head.0, want) {
                Ok(room) if room < want => {}
                _ => return,
            }
            // Relaxed: only ends the spin early; `try_put` re-checks.
            if h.reader_state.load(Ordering::Relaxed) != OPEN {
                return;
            }
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
            // At most 64 pauses (a few µs at most, by CPU model) between polls, and the clock
            // read on every poll from there on, so the spin keeps to its limit.
            pauses = (pauses * 2).min(64);
            i = i.wrapping_add(1);
            if pauses == 64 || i % 8 == 0 {
                let now = Instant::now();
                if now - *start.get_or_insert(now) >= limit {
                    return;
                }
            }
        }
    }

    /// Free slots now, re-reading the reader's index only if the cached view shows fewer
    /// than `want`. Fails if this writer or the reader closed, or if this process inherited
    /// the writer through fork.
    pub(crate) fn free(&mut self, want: usize) -> Result<usize, Error> {
        self.core.check()?;
        let h = self.core.seg.header();
        // Relaxed: a flag with no data behind it; a close that we miss here is seen by the
        // next call or by the wait, whose check re-reads it after a SeqCst fence.
        if h.reader_state.load(Ordering::Relaxed) != OPEN {
            return Err(self.core.error(ErrorKind::Closed));
        }
        if want == 0 {
            return Ok(0);
        }
        let room = self
            .ring
            .room(&h.head.0, want as u64)
            .map_err(|e| self.core.corrupt(e))?;
        Ok(room as usize)
    }

    /// The first free slot. Up to `capacity` slots from here are one contiguous range of
    /// the mirrored mapping; the first `free()` of them belong to the producer.
    #[inline]
    fn slots(&self) -> *mut T {
        self.core.hot.slot(self.ring.slot(), self.stride.units())
    }

    /// Commits the next `n` slots (written by the caller) and wakes a sleeping reader.
    #[inline]
    fn publish(&mut self, n: usize) {
        let h = self.core.hot.header();
        self.ring.commit(n as u64, &h.tail.0);
        self.core.waiter.notify_peer(&h.data_waiting.0);
    }

    /// Waits until at least `want` (≤ capacity) slots are free, or the reader closed (then
    /// the caller's next `free` reports it) or died.
    async fn wait_room_in(&mut self, want: usize, mode: Mode) -> Result<(), Error> {
        let seg = &self.core.seg;
        let ring = &mut self.ring;
        let woke = self
            .core
            .waiter
            .wait(seg, mode, || room_for(ring, seg, want))
            .await
            .map_err(|source| self.core.io_error("waiting for room", source))?;
        match woke {
            Wake::Ready(Ok(())) => Ok(()),
            Wake::Ready(Err(e)) => Err(self.core.corrupt(e)),
            Wake::Ended(end) => Err(self.wait_ended(end)),
        }
    }

    /// The error of a wait that ended without room (`Waiter::wait`, or `prepare_wait`).
    #[cold]
    pub(crate) fn wait_ended(&mut self, end: Ended) -> Error {
        match end {
            Ended::PeerGone { holder } => {
                // Reported once: a later put waits for a restarted reader.
                self.core.waiter.reported(holder);
                self.core.error(ErrorKind::PeerGone)
            }
            Ended::TimedOut => self.core.error(ErrorKind::TimedOut),
            Ended::Corrupt(detail) => self.core.peer_corrupt(detail),
        }
    }

    /// Puts `items[done..]`, waiting as needed (`done` items were put already). The one
    /// place that counts a failed put's progress: whatever stops it, the error says how many
    /// items went in.
    async fn put_in(&mut self, items: &[T], mut done: usize, mode: Mode) -> Result<(), Error> {
        let (units, total) = (self.stride.units(), items.len() / self.stride.units());
        loop {
            let step = match self.try_put(&items[done * units..]) {
                Ok(n) => {
                    done += n;
                    if done == total {
                        return Ok(());
                    }
                    // Any room will do: the rest is streamed in pieces. (Waiting for room
                    // for all of it would deadlock against a reader whose `get` waits for
                    // more items than the ring then holds.)
                    self.wait_room_in(1, mode).await
                }
                Err(e) => Err(e),
            };
            step.map_err(|e| e.with_progress(done))?;
        }
    }

    /// Appends all of `items`, in order, waiting for room as needed: what fits goes in at
    /// once, the rest as the reader makes room.
    ///
    /// # Errors
    ///
    /// [`Closed`](ErrorKind::Closed) if the reader closed the channel (before or while this
    /// waits), [`PeerGone`](ErrorKind::PeerGone) if the reader's process died while this
    /// waited (reported once; a later `put` waits for a restarted reader, which resumes where
    /// the dead one stopped), [`TimedOut`](ErrorKind::TimedOut) past the end's timeout; each
    /// says how many items of `items` were [accepted](Error::accepted).
    /// [`Io`](ErrorKind::Io) if called outside a tokio runtime (with the IO driver enabled).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: if the future is dropped while waiting, a prefix of `items` may
    /// already be in the channel, and you cannot tell how long. To cancel precisely, loop
    /// over [`try_put`](Self::try_put) (which counts) and [`wait_room`](Self::wait_room)
    /// (which puts nothing): see its example.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-put-{}", std::process::id());
    /// let chan = ChannelIo::<f32>::create(&name, Options::new().capacity(1024))?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let reader = tokio::spawn(async move {
    ///     let mut all = vec![0f32; 5000];
    ///     r.get(&mut all).await.map(|()| all)
    /// });
    /// let samples: Vec<f32> = (0..5000).map(|i| i as f32).collect();
    /// w.put(&samples).await?; // 5000 items through a 1024-slot ring
    /// assert_eq!(reader.await??, samples);
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn put<'a>(&'a mut self, items: &'a [T]) -> impl Future<Output = Result<(), Error>> + 'a {
        // The fast path runs in the future's first poll, inlined into the caller (forced:
        // left to itself, the inliner keeps this closure out of line once the fast path
        // grows by a few instructions, and the call costs more than the path); the waiting
        // future (a large state machine) is made only when it is needed.
        FastThenSlow::new(
            #[inline(always)]
            move || {
                if self.put_now(items) {
                    return Err(Ok(()));
                }
                Ok(self.put_slow(items))
            },
        )
    }

    /// The rest of `put`, once its fast path found no room for all of `items`.
    async fn put_slow(&mut self, items: &[T]) -> Result<(), Error> {
        let done = self.put_start(items)?;
        if done * self.stride.units() == items.len() {
            return Ok(());
        }
        self.put_in(items, done, Mode::Async).await
    }

    /// The blocking twin of [`put`](Self::put), for code without a tokio runtime. Do not call
    /// it from async code (it blocks the thread).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-blocking-put-{}", std::process::id());
    /// let chan = ChannelIo::<u16>::create(&name, Options::new())?;
    /// let mut w = chan.writer()?;
    /// w.blocking_put(&[1, 2, 3])?;
    /// assert_eq!(chan.len(), 3);
    /// # shmchan::ChannelIo::remove(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn blocking_put(&mut self, items: &[T]) -> Result<(), Error> {
        // Fast path without building the waiting future (which run_blocking would move).
        if self.put_now(items) {
            return Ok(());
        }
        self.blocking_put_slow(items)
    }

    /// The rest of `blocking_put`, out of line: its frame then costs the fast path nothing.
    #[inline(never)]
    #[cold]
    fn blocking_put_slow(&mut self, items: &[T]) -> Result<(), Error> {
        let done = self.put_start(items)?;
        if done * self.stride.units() == items.len() {
            return Ok(());
        }
        notify::run_blocking(self.put_in(items, done, Mode::Blocking))
            .unwrap_or_else(|| Err(self.core.blocking_bug()))
    }

    /// Waits until at least `n` slots are free (`n` at most the capacity), putting nothing;
    /// returns how many are free then. A base for puts of your own, such as a put larger
    /// than the ring that must be cancellable precisely: `try_put` counts what went in, and
    /// this waits for room for more.
    ///
    /// # Errors
    ///
    /// [`Oversized`](ErrorKind::Oversized) if `n` exceeds the capacity; otherwise as
    /// [`put`](Self::put) (with nothing accepted).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it changes nothing.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-wait-room-{}", std::process::id());
    /// let chan = ChannelIo::<u32>::create(&name, Options::new().capacity(1024))?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let items: Vec<u32> = (0..5000).collect();
    /// let reader = tokio::spawn(async move {
    ///     let mut all = vec![0u32; 5000];
    ///     r.get(&mut all).await.map(|()| all)
    /// });
    /// let mut done = 0; // what went in, however this loop is stopped
    /// while done < items.len() {
    ///     done += w.try_put(&items[done..])?;
    ///     if done < items.len() {
    ///         w.wait_room(1).await?;
    ///     }
    /// }
    /// assert_eq!(reader.await??, items);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_room(&mut self, n: usize) -> Result<usize, Error> {
        self.room(n, Mode::Async).await
    }

    /// The blocking twin of [`wait_room`](Self::wait_room).
    ///
    /// # Errors
    ///
    /// As [`wait_room`](Self::wait_room).
    pub fn blocking_wait_room(&mut self, n: usize) -> Result<usize, Error> {
        notify::run_blocking(self.room(n, Mode::Blocking))
            .unwrap_or_else(|| Err(self.core.blocking_bug()))
    }

    /// Waits until `n` (≤ capacity) slots are free; returns how many are.
    pub(crate) async fn room(&mut self, n: usize, mode: Mode) -> Result<usize, Error> {
        self.core.fits(n)?;
        loop {
            let free = self.free(n)?;
            if free >= n {
                return Ok(free);
            }
            self.wait_room_in(n, mode).await?;
        }
    }

    /// Closes the channel for writing. The reader can read everything committed, then gets
    /// [`ErrorKind::Closed`]. Dropping the writer does the same.
    ///
    /// In a process that inherited the writer through `fork`, closing (or aborting, or
    /// dropping) it closes nothing: it lets go of this process's copy, and the claimant's
    /// writer stays open (see [`check_process`](Self::check_process)).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, ErrorKind, Options};
    /// # let name = format!("doc-close-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.blocking_put(b"hi")?;
    /// w.close();
    /// let mut buf = [0u8; 2];
    /// r.blocking_get(&mut buf)?;
    /// let e = r.blocking_get(&mut buf).unwrap_err();
    /// assert_eq!((e.kind(), e.remaining()), (ErrorKind::Closed, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(mut self) {
        self.finish(None);
    }

    /// Closes the channel for writing with a reason: the reader drains what was committed,
    /// then gets [`ErrorKind::Aborted`] carrying `reason` (cut to
    /// [`REASON_MAX`](crate::REASON_MAX) bytes).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, ErrorKind, Options};
    /// # let name = format!("doc-abort-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.abort("sensor lost");
    /// let e = r.blocking_get(&mut [0u8; 1]).unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::Aborted);
    /// assert_eq!(e.reason(), Some("sensor lost"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn abort(mut self, reason: &str) {
        self.finish(Some(reason));
    }

    crate::end::accessors!();

    /// True if the reader closed the channel (a `put` would fail with
    /// [`ErrorKind::Closed`]).
    pub fn is_closed(&self) -> bool {
        self.core.closed || self.header().reader_state.load(Ordering::Relaxed) != OPEN
    }
}

/// The writer's wait condition: `want` free slots, or the reader closed (the caller's next
/// `free` reports it).
#[inline]
pub(crate) fn room_for(
    ring: &mut Producer,
    seg: &Segment,
    want: usize,
) -> Option<Result<(), RingError>> {
    let h = seg.header();
    // Relaxed: a flag with no data behind it (the waiter's fence orders this re-check).
    if h.reader_state.load(Ordering::Relaxed) != OPEN {
        return Some(Ok(()));
    }
    match ring.room(&h.head.0, want as u64) {
        Ok(room) if (room as usize) < want => None,
        Ok(_) => Some(Ok(())),
        Err(e) => Some(Err(e)),
    }
}

impl<T, S: Stride> WriterFront<T, S> {
    /// Ends the stream: closed (`None`) or aborted with a reason.
    fn finish(&mut self, abort: Option<&str>) {
        self.core.finish(|h| h.end_stream(abort));
    }
}

impl<T, S: Stride> Drop for WriterFront<T, S> {
    fn drop(&mut self) {
        self.finish(None);
    }
}

#[cfg(test)]
mod tests;
