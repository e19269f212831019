//! [`ReaderFront`]: the consuming end.

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytemuck::Pod;

use crate::error::{ClaimError, Corruption, GetError};
use crate::header::{End, Header, ABORTED, CLOSED, OPEN, REASON_MAX};
use crate::liveness::Claim;
use crate::notify::{self, Mode, WaitStats, WaitStrategy, Waiter, Wake};
use crate::ring::{self, Consumer, RingError};
use crate::segment::Segment;

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
pub struct ReaderFront<T> {
    seg: Arc<Segment>,
    ring: Consumer,
    waiter: Waiter,
    closed: bool,
    // Declared last: dropped after `Drop::drop` closed the channel, releasing the lock.
    _claim: Claim,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for ReaderFront<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderFront")
            .field("name", &self.seg.name())
            .field("consumed", &self.ring.position())
            .field("closed", &self.closed)
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

fn corrupt(seg: &Segment, e: RingError) -> Corruption {
    Corruption {
        name: seg.name().to_string(),
        field: e.field,
        detail: e.detail,
    }
}

/// The reader's wait condition: `want` items, or the end of the stream.
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

impl<T: Pod> ReaderFront<T> {
    pub(crate) fn claim(seg: &Arc<Segment>, wait: WaitStrategy) -> Result<Self, ClaimError> {
        let claim = Claim::take(seg, End::Reader)?;
        let h = seg.header();
        // Resume at the first item not consumed. Acquire on tail pairs with the writer's
        // Release: the committed items' bytes are visible.
        let head = h.head.0.load(Ordering::Acquire);
        let tail = h.tail.0.load(Ordering::Acquire);
        let ring = Consumer::new(tail, head, seg.capacity).map_err(|e| corrupt(seg, e))?;
        let mut waiter = Waiter::new(seg, End::Reader, wait).map_err(|source| ClaimError::Io {
            name: seg.name().to_string(),
            op: "opening the doorbells",
            source,
        })?;
        // Only now, with nothing left to fail, make the claim visible, then wake a writer
        // that may be asleep waiting for room with no reader, so it starts watching us.
        claim.publish();
        waiter.ring_peer();
        Ok(ReaderFront {
            seg: Arc::clone(seg),
            ring,
            waiter,
            closed: false,
            _claim: claim,
            _t: PhantomData,
        })
    }

    fn check_open(&self) -> Result<(), GetError> {
        if self.closed {
            return Err(GetError::ReaderClosed {
                name: self.seg.name().to_string(),
            });
        }
        Ok(())
    }

    /// Copies the next `k` items into `to[..k]` and releases their slots.
    fn take(&mut self, to: &mut [T], k: usize) {
        let h = self.seg.header();
        // SAFETY: `data()` is the mirrored region of 2 × capacity × size_of::<T>() bytes;
        // `slot() < capacity` and `k <= available <= capacity` (callers pass k ≤ a count that
        // `probe` returned), so the copy stays inside it; those slots are committed and not
        // yet released, so the producer does not write them.
        unsafe {
            ring::copy_out(
                self.seg.data(),
                self.ring.slot(),
                std::mem::size_of::<T>(),
                bytemuck::cast_slice_mut(&mut to[..k]),
            )
        };
        self.ring.release(k as u64, &h.head.0);
        self.waiter.notify_peer(&h.room_waiting.0);
    }

    /// The error for a stream that ended with `avail` items left.
    fn ended(&self, avail: u64, state: u32, filled: usize) -> GetError {
        let h = self.seg.header();
        let name = self.seg.name().to_string();
        let remaining = avail as usize;
        match state {
            CLOSED => GetError::Closed {
                name,
                remaining,
                filled,
            },
            ABORTED => {
                // Relaxed: written before the writer's Release store of its state, which
                // `probe` loaded with Acquire.
                let len = h.reason_len.load(Ordering::Relaxed) as usize;
                let bytes = Header::read_bytes(&h.reason, len.min(REASON_MAX));
                GetError::Aborted {
                    name,
                    reason: String::from_utf8_lossy(&bytes).into_owned(),
                    remaining,
                    filled,
                }
            }
            other => GetError::Corrupted(Corruption {
                name,
                field: "writer_state",
                detail: format!("{other} is not 0 (open), 1 (closed) or 2 (aborted)"),
            }),
        }
    }

    /// Waits until `want` items are available or the stream ended.
    async fn wait_for(&mut self, want: u64, mode: Mode) -> Result<Avail, GetError> {
        let seg = &self.seg;
        let ring = &mut self.ring;
        if let Some(r) = probe(ring, seg, want) {
            return r.map_err(|e| corrupt(seg, e).into());
        }
        let woke = self
            .waiter
            .wait(seg, mode, || probe(ring, seg, want))
            .await
            .map_err(|source| GetError::Io {
                name: seg.name().to_string(),
                op: "waiting for items",
                source,
            })?;
        match woke {
            Wake::Ready(r) => r.map_err(|e| corrupt(seg, e).into()),
            Wake::PeerGone => {
                let remaining = ring
                    .available(&seg.header().tail.0, u64::MAX)
                    .map_err(|e| corrupt(seg, e))?;
                Err(GetError::PeerGone {
                    name: seg.name().to_string(),
                    remaining: remaining as usize,
                    filled: 0,
                })
            }
        }
    }

    async fn get_some_in(&mut self, to: &mut [T], mode: Mode) -> Result<usize, GetError> {
        self.check_open()?;
        if to.is_empty() {
            return Ok(0);
        }
        match self.wait_for(1, mode).await? {
            Avail::Enough(avail) => {
                let k = (avail as usize).min(to.len());
                self.take(to, k);
                Ok(k)
            }
            Avail::Ended { avail, state } => Err(self.ended(avail, state, 0)),
        }
    }

    async fn get_in(&mut self, to: &mut [T], mode: Mode) -> Result<(), GetError> {
        self.check_open()?;
        let n = to.len();
        if n == 0 {
            return Ok(());
        }
        if n as u64 > self.seg.capacity {
            // Larger than the ring: it can never hold all of `to` at once, so fill it
            // progressively.
            let mut filled = 0;
            while filled < n {
                filled += self
                    .get_some_in(&mut to[filled..], mode)
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
    /// If the writer closed (or aborted, or its process died) and fewer than `to.len()`
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
    pub async fn get(&mut self, to: &mut [T]) -> Result<(), GetError> {
        self.get_in(to, Mode::Async).await
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
    pub async fn get_some(&mut self, to: &mut [T]) -> Result<usize, GetError> {
        self.get_some_in(to, Mode::Async).await
    }

    /// Copies whatever is available now (up to `to.len()`) without waiting; `Ok(0)` if
    /// nothing is.
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
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
        if to.is_empty() {
            return Ok(0);
        }
        match probe(&mut self.ring, &self.seg, 1) {
            None => Ok(0),
            Some(Err(e)) => Err(corrupt(&self.seg, e).into()),
            Some(Ok(Avail::Enough(avail))) => {
                let k = (avail as usize).min(to.len());
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
    pub fn blocking_get(&mut self, to: &mut [T]) -> Result<(), GetError> {
        let name = self.seg.name().to_string();
        notify::run_blocking(self.get_in(to, Mode::Blocking))
            .unwrap_or_else(|| Err(blocking_bug(name)))
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
        let name = self.seg.name().to_string();
        notify::run_blocking(self.get_some_in(to, Mode::Blocking))
            .unwrap_or_else(|| Err(blocking_bug(name)))
    }

    /// Items available right now (stale as soon as it returns while the writer works).
    pub fn len(&mut self) -> usize {
        let h = self.seg.header();
        self.ring.available(&h.tail.0, u64::MAX).unwrap_or(0) as usize
    }

    /// True if no item is available right now.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }
}

fn blocking_bug(name: String) -> GetError {
    GetError::Io {
        name,
        op: "waiting for items",
        source: std::io::Error::other("a blocking wait did not complete (bug)"),
    }
}

impl<T> ReaderFront<T> {
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
        // A child forked without exec must not close its parent's end.
        if self.closed || !self.seg.in_owner_process() {
            self.closed = true;
            return;
        }
        self.closed = true;
        // Release: orders our last head store before it, for whoever reads the final state.
        self.seg
            .header()
            .reader_state
            .store(CLOSED, Ordering::Release);
        // Always ring: closing is rare, and a writer waiting for room must wake.
        self.waiter.ring_peer();
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Ring capacity in elements.
    pub fn capacity(&self) -> usize {
        self.seg.capacity as usize
    }

    /// This end's waiting counters (system calls made to sleep and to wake the peer).
    pub fn wait_stats(&self) -> WaitStats {
        self.waiter.stats
    }

    /// Changes how this end waits (see [`WaitStrategy`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.waiter.strategy = strategy;
    }
}

impl<T> Drop for ReaderFront<T> {
    fn drop(&mut self) {
        self.finish();
    }
}
