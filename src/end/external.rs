//! Both fronts in someone else's event loop: `prepare_wait` / `wait_fd` / `finish_wait`
//! around the non-waiting calls (`try_put`, `try_get`, `try_get_some`), with which asyncio,
//! mio or glib wait on a channel without a thread and without tokio. The waiting layer's
//! half (the epoll set a loop waits on) is `notify::external`.

use std::os::fd::BorrowedFd;

use bytemuck::Pod;

use super::EndCore;
use crate::element::Stride;
use crate::error::Error;
use crate::notify::{Prepared, Readiness};
use crate::reader::{probe, ReaderFront};
use crate::ring::RingError;
use crate::segment::Segment;
use crate::writer::{room_for, WriterFront};

impl EndCore {
    fn wait_fd(&mut self) -> Result<BorrowedFd<'_>, Error> {
        self.check()?;
        let (seg, end) = (&self.seg, self.end);
        self.waiter
            .wait_fd()
            .map_err(|source| Error::io(seg.name(), "making the wait descriptor", source).by(end))
    }

    /// The announce-then-re-check of `prepare_wait`, for the condition `check` on the
    /// segment.
    fn prepare_wait<R>(
        &mut self,
        mut check: impl FnMut(&Segment) -> Option<Result<R, RingError>>,
    ) -> Result<Prepared<Result<R, RingError>>, Error> {
        let (seg, end) = (&self.seg, self.end);
        self.waiter
            .prepare(seg, || check(seg))
            .map_err(|source| Error::io(seg.name(), "preparing to wait", source).by(end))
    }

    fn finish_wait(&mut self) -> Result<(), Error> {
        // In a process that inherited the end, draining the doorbell would take the
        // claimant's wakeup.
        self.check()?;
        self.waiter
            .finish()
            .map_err(|source| self.io_error("finishing a wait", source))
    }
}

impl<T: Pod, S: Stride> WriterFront<T, S> {
    /// The descriptor to wait on between [`prepare_wait`](Self::prepare_wait) and
    /// [`finish_wait`](Self::finish_wait): readable when room may have been freed, or the
    /// reader may have closed or died. The same descriptor for this end's whole life, so
    /// register it with your event loop once, for reading. Never read from it yourself.
    ///
    /// # Errors
    ///
    /// [`Io`](crate::ErrorKind::Io) if the descriptor cannot be made (descriptor limit).
    pub fn wait_fd(&mut self) -> Result<BorrowedFd<'_>, Error> {
        self.core.wait_fd()
    }

    /// Prepares to wait, in an event loop of your own, until `want` slots are free (at most
    /// the capacity; 1 to stream a long `put` in pieces) or the reader closed. As
    /// [`ReaderFront::prepare_wait`]: on [`Readiness::Ready`] try again now
    /// ([`try_put`](Self::try_put) puts something, or reports the close); on
    /// [`Readiness::Wait`] wait until [`wait_fd`](Self::wait_fd) is readable, call
    /// [`finish_wait`](Self::finish_wait), then try again.
    ///
    /// # Errors
    ///
    /// [`PeerGone`](crate::ErrorKind::PeerGone) if the reader's process died (reported once,
    /// as for `put`), [`Closed`](crate::ErrorKind::Closed),
    /// [`Corrupted`](crate::ErrorKind::Corrupted), [`Io`](crate::ErrorKind::Io),
    /// [`EndClosed`](crate::ErrorKind::EndClosed). Nothing is [accepted](Error::accepted) by
    /// this call: a loop that put a prefix before adds it with
    /// [`with_progress`](Error::with_progress).
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use shmchan::{ChannelIo, Options, Readiness};
    /// # let name = format!("doc-writer-prepare-{}", std::process::id());
    /// let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let fd = w.wait_fd()?.as_raw_fd();
    /// let items: Vec<u64> = (0..2000).collect();
    /// let reader = std::thread::spawn(move || {
    ///     let mut all = vec![0u64; 2000];
    ///     r.blocking_get(&mut all).map(|()| all)
    /// });
    /// let mut done = 0;
    /// while done < items.len() {
    ///     done += w.try_put(&items[done..])?;
    ///     if done < items.len() && w.prepare_wait(1)? == Readiness::Wait {
    ///         let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    ///         // SAFETY: one valid pollfd.
    ///         unsafe { libc::poll(&mut p, 1, -1) };
    ///         w.finish_wait()?;
    ///     }
    /// }
    /// assert_eq!(reader.join().unwrap()?, items);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare_wait(&mut self, want: usize) -> Result<Readiness, Error> {
        let want = want.clamp(1, self.capacity());
        // Reports this writer's own close (and a reader's, through the check below).
        self.free(0)?;
        if room_for(&mut self.ring, &self.core.seg, want).is_some() {
            return Ok(Readiness::Ready);
        }
        let ring = &mut self.ring;
        match self.core.prepare_wait(|seg| room_for(ring, seg, want))? {
            Prepared::Ready(Err(e)) => Err(self.core.corrupt(e)),
            Prepared::Ready(Ok(())) => Ok(Readiness::Ready),
            Prepared::Sleep => Ok(Readiness::Wait),
            Prepared::Ended(end) => Err(self.wait_ended(end)),
        }
    }

    /// Ends a wait that [`prepare_wait`](Self::prepare_wait) began, once
    /// [`wait_fd`](Self::wait_fd) was readable. Then try again.
    ///
    /// # Errors
    ///
    /// [`Io`](crate::ErrorKind::Io) if reading the descriptors failed.
    pub fn finish_wait(&mut self) -> Result<(), Error> {
        self.core.finish_wait()
    }
}

impl<T: Pod, S: Stride> ReaderFront<T, S> {
    /// The descriptor to wait on between [`prepare_wait`](Self::prepare_wait) and
    /// [`finish_wait`](Self::finish_wait): readable when items may have arrived, the writer
    /// may have ended the stream or died. The same descriptor for this end's whole life
    /// (an epoll instance of its own), so register it with your event loop once, for
    /// reading. Never read from it yourself.
    ///
    /// # Errors
    ///
    /// [`Io`](crate::ErrorKind::Io) if the descriptor cannot be made (descriptor limit).
    pub fn wait_fd(&mut self) -> Result<BorrowedFd<'_>, Error> {
        self.core.wait_fd()
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
    /// [`PeerGone`](crate::ErrorKind::PeerGone) if the writer's process died (reported as
    /// for `get`), [`Corrupted`](crate::ErrorKind::Corrupted), [`Io`](crate::ErrorKind::Io),
    /// [`EndClosed`](crate::ErrorKind::EndClosed). Nothing is [filled](Error::filled) by
    /// this call: a loop that filled a prefix before adds it with
    /// [`with_progress`](Error::with_progress).
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
    pub fn prepare_wait(&mut self, want: usize) -> Result<Readiness, Error> {
        self.check_open()?;
        let want = want.clamp(1, self.capacity()) as u64;
        if probe(&mut self.ring, &self.core.seg, want).is_some() {
            return Ok(Readiness::Ready);
        }
        let ring = &mut self.ring;
        match self.core.prepare_wait(|seg| probe(ring, seg, want))? {
            Prepared::Ready(Err(e)) => Err(self.core.corrupt(e)),
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
    /// [`Io`](crate::ErrorKind::Io) if reading the descriptors failed.
    pub fn finish_wait(&mut self) -> Result<(), Error> {
        self.core.finish_wait()
    }
}
