//! The writer in someone else's event loop: `prepare_wait` / `wait_fd` / `finish_wait`
//! around [`try_put`](WriterFront::try_put), with which asyncio, mio or glib can wait on a
//! channel without a thread and without tokio.

use std::os::fd::BorrowedFd;

use bytemuck::Pod;

use super::{room_for, WriterFront};
use crate::element::Stride;
use crate::error::PutError;
use crate::notify::{Prepared, Readiness};

impl<T: Pod, S: Stride> WriterFront<T, S> {
    /// The descriptor to wait on between [`prepare_wait`](Self::prepare_wait) and
    /// [`finish_wait`](Self::finish_wait): readable when room may have been freed, or the
    /// reader may have closed or died. The same descriptor for this end's whole life, so
    /// register it with your event loop once, for reading. Never read from it yourself.
    ///
    /// # Errors
    ///
    /// [`PutError::Io`] if the descriptor cannot be made (descriptor limit).
    pub fn wait_fd(&mut self) -> Result<BorrowedFd<'_>, PutError> {
        let name = self.core.seg.name().to_string();
        self.core.waiter.wait_fd().map_err(|source| PutError::Io {
            name,
            op: "making the wait descriptor",
            source,
        })
    }

    /// Prepares to wait, in an event loop of your own, until `want` slots are free (at most
    /// the capacity; 1 to stream a long `put` in pieces) or the reader closed. As
    /// [`ReaderFront::prepare_wait`](crate::ReaderFront::prepare_wait): on
    /// [`Readiness::Ready`] try again now ([`try_put`](Self::try_put) puts something, or
    /// reports the close); on [`Readiness::Wait`] wait until [`wait_fd`](Self::wait_fd) is
    /// readable, call [`finish_wait`](Self::finish_wait), then try again.
    ///
    /// # Errors
    ///
    /// [`PutError::PeerGone`] if the reader's process died (reported once, as for `put`),
    /// [`Corrupted`](PutError::Corrupted), [`Io`](PutError::Io),
    /// [`WriterClosed`](PutError::WriterClosed). Counts of accepted items are 0: this call
    /// accepts none.
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
    pub fn prepare_wait(&mut self, want: usize) -> Result<Readiness, PutError> {
        let want = want.clamp(1, self.capacity());
        // Reports this writer's own close (and a reader's, through the check below).
        self.free(0)?;
        if room_for(&mut self.ring, &self.core.seg, want).is_some() {
            return Ok(Readiness::Ready);
        }
        let seg = &self.core.seg;
        let ring = &mut self.ring;
        let prepared = self
            .core
            .waiter
            .prepare(seg, || room_for(ring, seg, want))
            .map_err(|source| PutError::Io {
                name: seg.name().to_string(),
                op: "preparing to wait for room",
                source,
            })?;
        match prepared {
            Prepared::Ready(Err(e)) => Err(self.core.corrupt(e).into()),
            Prepared::Ready(Ok(())) => Ok(Readiness::Ready),
            Prepared::Sleep => Ok(Readiness::Wait),
            Prepared::Ended(end) => Err(self.wait_ended(end, 0)),
        }
    }

    /// Ends a wait that [`prepare_wait`](Self::prepare_wait) began, once
    /// [`wait_fd`](Self::wait_fd) was readable. Then try again.
    ///
    /// # Errors
    ///
    /// [`PutError::Io`] if reading the descriptors failed.
    pub fn finish_wait(&mut self) -> Result<(), PutError> {
        let name = self.core.seg.name().to_string();
        self.core.waiter.finish().map_err(|source| PutError::Io {
            name,
            op: "finishing a wait for room",
            source,
        })
    }
}
