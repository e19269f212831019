//! The zero-copy half of [`WriterFront`]: `reserve` and its family lend free slots in place,
//! as [`Slots`], and publish them only when committed.

use std::sync::atomic::Ordering;

use bytemuck::Pod;

use super::WriterFront;
use crate::element::{Stride, Typed};
use crate::error::Error;
use crate::notify::{self, Mode};

impl<T: Pod, S: Stride> WriterFront<T, S> {
    /// The fast path of `reserve` and `blocking_reserve`: `n` if that many slots are free now
    /// (None: take the slow path, which also reports an oversized `n`).
    #[inline(always)]
    fn reserve_now(&mut self, n: usize) -> Option<usize> {
        // As `put_now`: the reader's state and the fork generation, then room (more than the
        // capacity never fits).
        let h = self.core.hot.header();
        // Relaxed: as in `free`.
        if !self.core.open_here(h.reader_state.load(Ordering::Relaxed)) {
            return None;
        }
        self.ring.room_now(&h.head.0, n as u64).map(|_| n)
    }

    /// Waits until `n` slots are free; returns `n`. The guard is made by the caller, so this
    /// future borrows nothing past its end.
    async fn reserve_len(&mut self, n: usize, mode: Mode) -> Result<usize, Error> {
        self.room(n, mode).await.map(|_| n)
    }

    /// Waits until `n` slots are free and lends them, in place in the shared segment, to be
    /// filled and then [committed](Slots::commit). One contiguous slice, even across the
    /// ring's wrap. Dropping the guard without committing publishes nothing.
    ///
    /// The slots hold whatever was there before (old items, or zeros): any bit pattern is a
    /// valid `T`, but write what you commit.
    ///
    /// # Errors
    ///
    /// [`Oversized`](crate::ErrorKind::Oversized) if `n` exceeds the capacity; otherwise as
    /// [`put`](Self::put) (with nothing accepted).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is published until you commit.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-reserve-{}", std::process::id());
    /// let chan = ChannelIo::<u64>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let mut slots = w.reserve(4).await?;
    /// for (i, s) in slots.iter_mut().enumerate() {
    ///     *s = i as u64 * 10; // written in place, in shared memory
    /// }
    /// slots.commit(3); // publish the first 3
    /// let mut got = [0u64; 3];
    /// r.get(&mut got).await?;
    /// assert_eq!(got, [0, 10, 20]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reserve(&mut self, n: usize) -> Result<Slots<'_, T, S>, Error> {
        let len = match self.reserve_now(n) {
            Some(len) => len,
            None => self.reserve_len(n, Mode::Async).await?,
        };
        Ok(Slots { front: self, len })
    }

    /// The blocking twin of [`reserve`](Self::reserve).
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-blocking-reserve-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let mut slots = w.blocking_reserve(5)?;
    /// slots.copy_from_slice(b"hello");
    /// slots.commit_all();
    /// assert_eq!(&*r.blocking_peek(5)?, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn blocking_reserve(&mut self, n: usize) -> Result<Slots<'_, T, S>, Error> {
        let len = match self.reserve_now(n) {
            Some(len) => len,
            None => self.blocking_reserve_slow(n)?,
        };
        Ok(Slots { front: self, len })
    }

    /// The waiting part of `blocking_reserve`, out of line (its frame then costs the fast
    /// path nothing).
    #[inline(never)]
    #[cold]
    fn blocking_reserve_slow(&mut self, n: usize) -> Result<usize, Error> {
        notify::run_blocking(self.reserve_len(n, Mode::Blocking))
            .unwrap_or_else(|| Err(self.core.blocking_bug()))
    }

    /// Lends up to `n` free slots without waiting: as many as are free now, possibly none.
    ///
    /// # Errors
    ///
    /// As [`try_put`](Self::try_put).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-try-reserve-{}", std::process::id());
    /// let chan = ChannelIo::<u16>::create(&name, Options::new().capacity(2048))?;
    /// let mut w = chan.writer()?;
    /// let slots = w.try_reserve(5000)?;
    /// assert_eq!(slots.len(), 2048); // all that is free
    /// drop(slots); // nothing published
    /// assert_eq!(chan.len(), 0);
    /// # drop(w);
    /// # ChannelIo::remove(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_reserve(&mut self, n: usize) -> Result<Slots<'_, T, S>, Error> {
        let len = self.free(n)?.min(n);
        Ok(Slots { front: self, len })
    }
}

impl<T: Pod, S: Stride> WriterFront<T, S> {
    /// `n` free slots if the cached view of the reader's index shows them (the fast path's
    /// checks only); `None`: take a slow path, which reports what is wrong.
    #[inline]
    pub(crate) fn reserve_exact_now(&mut self, n: usize) -> Option<Slots<'_, T, S>> {
        self.reserve_now(n).map(|len| Slots { front: self, len })
    }

    /// As [`try_reserve`](Self::try_reserve), at once when the cached view of the reader's
    /// index shows `n` free slots (no check of the channel's state beyond the fast path's).
    #[inline]
    pub(crate) fn reserve_up_to(&mut self, n: usize) -> Result<Slots<'_, T, S>, Error> {
        if let Some(len) = self.reserve_now(n) {
            return Ok(Slots { front: self, len });
        }
        self.try_reserve(n)
    }
}

/// Free slots of the ring lent to the writer by [`WriterFront::reserve`]: a contiguous
/// `&mut [T]` in the shared segment. Fill them, then [`commit`](Self::commit) a prefix;
/// dropping the guard publishes nothing.
///
/// # What the peer can do to these slots
///
/// The slice is always inside our mapping, whatever the peer writes to the indices: a
/// corrupt peer cannot make it point elsewhere. Beyond that, this API relies on the peer
/// following the protocol, which gives reserved slots to the writer alone, so that the
/// `&mut [T]` is exclusive as Rust requires. A process that writes into the segment anyway
/// breaks that assumption: values could change under the reference, and the compiler may
/// have assumed they do not. Channels are created 0600 and opened only from their owner (see
/// [`Options::accept_other_owner`](crate::Options::accept_other_owner)), so such a process
/// runs as the same user. If you cannot trust the peer that far, use the copy API
/// ([`put`](WriterFront::put)), which never holds a reference into shared memory.
///
/// The slots of a [`RawWriter`](crate::RawWriter) are bytes: the slice holds
/// [`elements`](Self::elements) × the element size bytes, and `commit` counts elements.
pub struct Slots<'a, T: Pod, S: Stride = Typed> {
    front: &'a mut WriterFront<T, S>,
    /// In elements.
    len: usize,
}

impl<T: Pod, S: Stride> Slots<'_, T, S> {
    /// The slots lent (for typed slots, the slice's length).
    pub fn elements(&self) -> usize {
        self.len
    }

    /// Publishes the first `k` slots (at most the guard's length; a larger `k` publishes all
    /// of them) to the reader, in order, and returns how many.
    ///
    /// A guard that a process inherited through `fork` (the fork came while it was held)
    /// publishes nothing there and returns 0: the writer is its claimant's (see
    /// [`ErrorKind::Forked`](crate::ErrorKind::Forked)).
    #[inline]
    pub fn commit(self, k: usize) -> usize {
        let k = k.min(self.len);
        if k == 0 || self.front.core.forked() {
            return 0;
        }
        self.front.publish(k);
        k
    }

    /// Publishes every slot.
    pub fn commit_all(self) -> usize {
        let n = self.len;
        self.commit(n)
    }
}

impl<T: Pod, S: Stride> std::ops::Deref for Slots<'_, T, S> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // (`len` elements are `len × units` `T`s; see the type's docs for a peer that
        // ignores the protocol.)
        // SAFETY: `len` ≤ the free slots counted when the guard was made (slots only become
        // more free while we hold `&mut` of the front); they lie in the mirrored mapping from
        // `slots()` on, contiguous and aligned; the reader does not access uncommitted slots.
        unsafe {
            std::slice::from_raw_parts(self.front.slots(), self.len * self.front.stride.units())
        }
    }
}

impl<T: Pod, S: Stride> std::ops::DerefMut for Slots<'_, T, S> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the guard holds the only `&mut` of the writer, so no other
        // reference to these slots exists in this process.
        unsafe {
            std::slice::from_raw_parts_mut(self.front.slots(), self.len * self.front.stride.units())
        }
    }
}

impl<T: Pod, S: Stride> std::fmt::Debug for Slots<'_, T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots").field("len", &self.len).finish()
    }
}
