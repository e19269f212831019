//! The reader in someone else's event loop: `try_get`, and `prepare_wait` / `wait_fd` /
//! `finish_wait`, with which asyncio, mio or glib can wait on a channel without a thread
//! and without tokio.

use std::os::fd::BorrowedFd;

use bytemuck::Pod;

use super::{probe, Avail, ReaderFront};
use crate::element::Stride;
use crate::error::GetError;
use crate::notify::{Prepared, Readiness};

impl<T: Pod, S: Stride> ReaderFront<T, S> {
    /// Fills `to` with exactly its length in elements if that many are there now; `Ok(false)`
    /// (removing nothing) if not yet. For `get` in an event loop of your own: see
    /// [`prepare_wait`](Self::prepare_wait).
    ///
    /// # Errors
    ///
    /// [`GetError::Oversized`] if `to` is larger than the ring (it could never be filled at
    /// once: use [`try_get_some`](Self::try_get_some)); [`GetError::Closed`] /
    /// [`Aborted`](GetError::Aborted) once the writer ended the stream and fewer remain
    /// (nothing is removed); [`Corrupted`](GetError::Corrupted).
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
    pub fn try_get(&mut self, to: &mut [T]) -> Result<bool, GetError> {
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
    pub(super) fn there_now(&mut self, n: usize) -> Result<bool, GetError> {
        self.check_open()?;
        if n == 0 {
            return Ok(true);
        }
        self.fits(n)?;
        match probe(&mut self.ring, &self.core.seg, n as u64) {
            None => Ok(false),
            Some(Err(e)) => Err(self.core.corrupt(e).into()),
            Some(Ok(Avail::Enough(_))) => Ok(true),
            Some(Ok(Avail::Ended { avail, state })) => Err(self.ended(avail, state, 0)),
        }
    }

    /// The descriptor to wait on between [`prepare_wait`](Self::prepare_wait) and
    /// [`finish_wait`](Self::finish_wait): readable when items may have arrived, the writer
    /// may have ended the stream or died. The same descriptor for this end's whole life
    /// (an epoll instance of its own), so register it with your event loop once, for
    /// reading. Never read from it yourself.
    ///
    /// # Errors
    ///
    /// [`GetError::Io`] if the descriptor cannot be made (descriptor limit).
    pub fn wait_fd(&mut self) -> Result<BorrowedFd<'_>, GetError> {
        let name = self.core.seg.name().to_string();
        self.core.waiter.wait_fd().map_err(|source| GetError::Io {
            name,
            op: "making the wait descriptor",
            source,
        })
    }

    /// Prepares to wait, in an event loop of your own, until `want` elements are available
    /// (1 for `get_some`; at most the capacity) or the stream ends. This is the eventcount's
    /// announce-then-re-check: [`Readiness::Ready`] means try again now (the call you wanted
    /// will succeed or report the end); [`Readiness::Wait`] means wait until
    /// [`wait_fd`](Self::wait_fd) is readable, call [`finish_wait`](Self::finish_wait), then
    /// try again. The writer rings only for a waiter that announced itself, which is why the
    /// re-check must come between the announcement and the sleep.
    ///
    /// The timeout of [`set_timeout`](Self::set_timeout) does not apply here: your loop keeps
    /// its own deadline. Abandoning a wait (a cancelled task) needs no clean-up: the
    /// announcement costs the writer at most one needless ring.
    ///
    /// # Errors
    ///
    /// [`GetError::PeerGone`] if the writer's process died (reported as for `get`),
    /// [`Corrupted`](GetError::Corrupted), [`Io`](GetError::Io);
    /// [`ReaderClosed`](GetError::ReaderClosed).
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use shmchan::{ChannelIo, Options, Readiness};
    /// # let name = format!("doc-prepare-wait-{}", std::process::id());
    /// let chan = ChannelIo::<u32>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let fd = r.wait_fd()?.as_raw_fd(); // register this with your event loop
    /// let mut buf = [0u32; 4];
    /// std::thread::spawn(move || w.blocking_put(&[1, 2, 3, 4]));
    /// while !r.try_get(&mut buf)? {
    ///     if r.prepare_wait(buf.len())? == Readiness::Wait {
    ///         // Your loop's wait; here plain poll(2) on the descriptor.
    ///         let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    ///         // SAFETY: one valid pollfd.
    ///         unsafe { libc::poll(&mut p, 1, -1) };
    ///         r.finish_wait()?;
    ///     }
    /// }
    /// assert_eq!(buf, [1, 2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare_wait(&mut self, want: usize) -> Result<Readiness, GetError> {
        self.check_open()?;
        let want = want.clamp(1, self.capacity()) as u64;
        if probe(&mut self.ring, &self.core.seg, want).is_some() {
            return Ok(Readiness::Ready);
        }
        let seg = &self.core.seg;
        let ring = &mut self.ring;
        let prepared = self
            .core
            .waiter
            .prepare(seg, || probe(ring, seg, want))
            .map_err(|source| GetError::Io {
                name: seg.name().to_string(),
                op: "preparing to wait for items",
                source,
            })?;
        match prepared {
            Prepared::Ready(Err(e)) => Err(self.core.corrupt(e).into()),
            Prepared::Ready(Ok(_)) => Ok(Readiness::Ready),
            Prepared::Sleep => Ok(Readiness::Wait),
            Prepared::Ended(end) => Err(self.wait_ended(end)),
        }
    }

    /// Ends a wait that [`prepare_wait`](Self::prepare_wait) began, once
    /// [`wait_fd`](Self::wait_fd) was readable: empties the doorbell and notes a writer whose
    /// process exited. Then try again.
    ///
    /// # Errors
    ///
    /// [`GetError::Io`] if reading the descriptors failed.
    pub fn finish_wait(&mut self) -> Result<(), GetError> {
        let name = self.core.seg.name().to_string();
        self.core.waiter.finish().map_err(|source| GetError::Io {
            name,
            op: "finishing a wait for items",
            source,
        })
    }
}
