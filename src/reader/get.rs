//! The copying reads of [`ReaderFront`]: `get` and `get_some`, their blocking twins, and the
//! calls that do not wait (`try_get`, `try_get_some`), each with its fast path.

use std::future::Future;

use bytemuck::Pod;

use super::{probe, Avail, ReaderFront};
use crate::element::Stride;
use crate::error::Error;
use crate::notify::{self, FastThenSlow, Mode};

impl<T: Pod, S: Stride> ReaderFront<T, S> {
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

    async fn get_some_in(&mut self, to: &mut [T], mode: Mode) -> Result<usize, Error> {
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
            Avail::Ended { avail, state } => Err(self.ended(avail, state)),
        }
    }

    async fn get_in(&mut self, to: &mut [T], mode: Mode) -> Result<(), Error> {
        self.check_open()?;
        let n = self.whole(to.len())?;
        if n == 0 {
            return Ok(());
        }
        if n as u64 > self.core.seg.capacity {
            // Larger than the ring: it can never hold all of `to` at once, so fill it
            // progressively. The one place that counts a failed get's progress.
            let mut filled = 0;
            while filled < n {
                filled += self
                    .get_some_in(&mut to[filled * self.stride.units()..], mode)
                    .await
                    .map_err(|e| e.with_progress(filled))?;
            }
            return Ok(());
        }
        match self.wait_for(n as u64, mode).await? {
            Avail::Enough(_) => {
                self.take(to, n);
                Ok(())
            }
            Avail::Ended { avail, state } => Err(self.ended(avail, state)),
        }
    }

    /// Fills `to` with exactly `to.len()` items, waiting until that many are available. The
    /// batch sizes the writer used do not matter.
    ///
    /// # Errors
    ///
    /// If the writer closed (or aborted, or its process died: reported once nothing is left,
    /// after which a call waits for a restarted writer) and fewer than `to.len()`
    /// items remain: [`Closed`](crate::ErrorKind::Closed) (or [`Aborted`](crate::ErrorKind::Aborted),
    /// [`PeerGone`](crate::ErrorKind::PeerGone)) with [`remaining`](Error::remaining), and
    /// **nothing is removed**: the
    /// remaining items can still be read with [`get_some`](Self::get_some) or a smaller
    /// `get`. Only when `to` is larger than the ring is it filled progressively; the error
    /// then says how many items are already in `to` ([`filled`](Error::filled)).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe if `to.len()` ≤ the capacity: items are removed only in the same poll
    /// that completes the call, so a dropped future removed nothing. For a larger `to`, a
    /// dropped future may have consumed a prefix into `to`.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, ErrorKind, Options};
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
    /// assert_eq!((err.kind(), err.remaining(), err.filled()), (crate::ErrorKind::Closed, 1, 0));
    /// let mut one = [0u8; 1];
    /// r.get(&mut one).await?; // the last item is still there
    /// assert_eq!(&one, b"e");
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn get<'a>(&'a mut self, to: &'a mut [T]) -> impl Future<Output = Result<(), Error>> + 'a {
        // Inlined into the caller's poll, as `put`'s.
        FastThenSlow::new(
            #[inline(always)]
            move || {
                if self.get_now(to) {
                    return Err(Ok(()));
                }
                Ok(self.get_in(to, Mode::Async))
            },
        )
    }

    /// Copies between 1 and `to.len()` items into `to` — whatever is available — waiting only
    /// while none is. Returns the count (0 only for an empty `to`).
    ///
    /// # Errors
    ///
    /// [`Closed`](crate::ErrorKind::Closed) (or [`Aborted`](crate::ErrorKind::Aborted),
    /// [`PeerGone`](crate::ErrorKind::PeerGone)) once the writer ended the stream and every item was
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
    ) -> impl Future<Output = Result<usize, Error>> + 'a {
        // As `get`: the first poll takes what is there; only a miss builds the waiting future.
        FastThenSlow::new(
            #[inline(always)]
            move || {
                if let Some(k) = self.get_some_now(to) {
                    return Err(Ok(k));
                }
                Ok(self.get_some_in(to, Mode::Async))
            },
        )
    }

    /// Waits until at least `n` items are there (`n` at most the capacity), removing
    /// nothing; returns how many are there then. A base for reads of your own, such as a
    /// get larger than the ring that must be cancellable precisely: `try_get_some` counts
    /// what it took, and this waits for more.
    ///
    /// # Errors
    ///
    /// [`Oversized`](crate::ErrorKind::Oversized) if `n` exceeds the capacity; otherwise as
    /// [`get`](Self::get): if the stream ended with fewer than `n` items left, the error
    /// says how many [remain](Error::remaining).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it removes nothing.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-wait-items-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.put(b"abc").await?;
    /// assert_eq!(r.wait_items(2).await?, 3);
    /// assert_eq!(r.len(), 3); // nothing was removed
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_items(&mut self, n: usize) -> Result<usize, Error> {
        self.items_in(n, Mode::Async).await
    }

    /// The blocking twin of [`wait_items`](Self::wait_items).
    ///
    /// # Errors
    ///
    /// As [`wait_items`](Self::wait_items).
    pub fn blocking_wait_items(&mut self, n: usize) -> Result<usize, Error> {
        notify::run_blocking(self.items_in(n, Mode::Blocking))
            .unwrap_or_else(|| Err(self.core.blocking_bug()))
    }

    pub(crate) async fn items_in(&mut self, n: usize, mode: Mode) -> Result<usize, Error> {
        self.check_open()?;
        self.fits(n)?;
        if n == 0 {
            return Ok(self.len());
        }
        match self.wait_for(n as u64, mode).await? {
            Avail::Enough(avail) => Ok(avail as usize),
            Avail::Ended { avail, state } => Err(self.ended(avail, state)),
        }
    }

    /// Fills `to` with exactly its length in elements if that many are there now; `Ok(false)`
    /// (removing nothing) if not yet. For `get` in an event loop of your own: see
    /// [`prepare_wait`](Self::prepare_wait).
    ///
    /// # Errors
    ///
    /// [`Oversized`](crate::ErrorKind::Oversized) if `to` is larger than the ring (it could never be filled at
    /// once: use [`try_get_some`](Self::try_get_some)); [`Closed`](crate::ErrorKind::Closed) /
    /// [`Aborted`](crate::ErrorKind::Aborted) once the writer ended the stream and fewer remain
    /// (nothing is removed); [`Corrupted`](crate::ErrorKind::Corrupted).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-try-get-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let mut two = [0u8; 2];
    /// assert!(!r.try_get(&mut two)?);
    /// w.blocking_put(b"ab")?;
    /// assert!(r.try_get(&mut two)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get(&mut self, to: &mut [T]) -> Result<bool, Error> {
        if self.get_now(to) {
            return Ok(true);
        }
        let n = self.whole(to.len())?;
        if !self.there_now(n)? {
            return Ok(false);
        }
        self.take(to, n);
        Ok(true)
    }

    /// Whether `n` elements (at most the capacity) are there now, without waiting; an ended
    /// stream with fewer, a closed reader, an oversized `n` or a corrupt index are errors.
    /// The non-waiting half of `try_get` and `try_peek`.
    pub(super) fn there_now(&mut self, n: usize) -> Result<bool, Error> {
        self.check_open()?;
        if n == 0 {
            return Ok(true);
        }
        self.fits(n)?;
        match probe(&mut self.ring, &self.core.seg, n as u64) {
            None => Ok(false),
            Some(Err(e)) => Err(self.core.corrupt(e)),
            Some(Ok(Avail::Enough(_))) => Ok(true),
            Some(Ok(Avail::Ended { avail, state })) => Err(self.ended(avail, state)),
        }
    }

    /// Copies whatever is available now (up to `to.len()`) without waiting; `Ok(0)` if
    /// nothing is.
    ///
    /// # Errors
    ///
    /// [`Closed`](crate::ErrorKind::Closed) / [`Aborted`](crate::ErrorKind::Aborted) once the writer ended
    /// the stream and nothing is left; [`Corrupted`](crate::ErrorKind::Corrupted). Never
    /// [`PeerGone`](crate::ErrorKind::PeerGone): it does not wait, so it does not watch the writer
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
    pub fn try_get_some(&mut self, to: &mut [T]) -> Result<usize, Error> {
        self.check_open()?;
        let room = self.whole(to.len())?;
        if room == 0 {
            return Ok(0);
        }
        match probe(&mut self.ring, &self.core.seg, 1) {
            None => Ok(0),
            Some(Err(e)) => Err(self.core.corrupt(e)),
            Some(Ok(Avail::Enough(avail))) => {
                let k = (avail as usize).min(room);
                self.take(to, k);
                Ok(k)
            }
            Some(Ok(Avail::Ended { avail, state })) => Err(self.ended(avail, state)),
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
    pub fn blocking_get(&mut self, to: &mut [T]) -> Result<(), Error> {
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
    fn blocking_get_slow(&mut self, to: &mut [T]) -> Result<(), Error> {
        notify::run_blocking(self.get_in(to, Mode::Blocking))
            .unwrap_or_else(|| Err(self.core.blocking_bug()))
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
    pub fn blocking_get_some(&mut self, to: &mut [T]) -> Result<usize, Error> {
        if let Some(k) = self.get_some_now(to) {
            return Ok(k);
        }
        notify::run_blocking(self.get_some_in(to, Mode::Blocking))
            .unwrap_or_else(|| Err(self.core.blocking_bug()))
    }
}
