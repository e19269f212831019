//! The zero-copy half of [`ReaderFront`]: `peek` and its family show committed items in
//! place, as a [`View`], and remove them only when the view is consumed.

use bytemuck::Pod;

use super::{probe, Avail, ReaderFront};
use crate::element::{Stride, Typed};
use crate::error::Error;
use crate::notify::{self, Mode};

impl<T: Pod, S: Stride> ReaderFront<T, S> {
    /// The fast path of `peek` and `blocking_peek`: `n` if that many items are there now.
    #[inline(always)]
    fn peek_now(&mut self, n: usize) -> Option<usize> {
        self.ready_now(n).map(|_| n)
    }

    /// Waits until `n` items can be shown; returns how many to show (`n`). The view is made
    /// by the caller, so this future borrows nothing past its end.
    async fn peek_len(&mut self, n: usize, mode: Mode) -> Result<usize, Error> {
        self.check_open()?;
        self.fits(n)?;
        if n == 0 {
            return Ok(0);
        }
        match self.wait_for(n as u64, mode).await? {
            Avail::Enough(_) => Ok(n),
            Avail::Ended { avail, state } => Err(self.ended(avail, state)),
        }
    }

    /// Waits until at least one item is available; returns how many are.
    async fn peek_some_len(&mut self, mode: Mode) -> Result<usize, Error> {
        self.check_open()?;
        match self.wait_for(1, mode).await? {
            Avail::Enough(avail) => Ok(avail as usize),
            Avail::Ended { avail, state } => Err(self.ended(avail, state)),
        }
    }

    /// Waits until `n` items are available and shows them in place, in the shared segment,
    /// without copying: one contiguous slice even across the ring's wrap. Nothing is removed
    /// until you [`consume`](View::consume).
    ///
    /// # Errors
    ///
    /// [`Oversized`](crate::ErrorKind::Oversized) if `n` exceeds the capacity; otherwise as
    /// [`get`](Self::get) (nothing is removed).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: peeking removes nothing.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-peek-{}", std::process::id());
    /// let chan = ChannelIo::<f64>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.put(&[1.0, 2.0, 3.0, 4.0]).await?;
    /// let view = r.peek(3).await?;
    /// let sum: f64 = view.iter().sum(); // read in place
    /// view.consume(2);                  // remove the first two; 3.0 and 4.0 stay
    /// assert_eq!(sum, 6.0);
    /// assert_eq!(r.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn peek(&mut self, n: usize) -> Result<View<'_, T, S>, Error> {
        let len = match self.peek_now(n) {
            Some(len) => len,
            None => self.peek_len(n, Mode::Async).await?,
        };
        Ok(View { front: self, len })
    }

    /// Waits until at least one item is available and shows all available items in place
    /// (up to the capacity).
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: peeking removes nothing.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-peek-some-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.put(b"line one\nline").await?;
    /// let view = r.peek_some().await?;
    /// let upto = view.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    /// view.consume(upto); // take one whole line, leave the partial one
    /// assert_eq!(r.len(), 4);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn peek_some(&mut self) -> Result<View<'_, T, S>, Error> {
        let len = match self.ready_now(1) {
            Some(avail) => avail,
            None => self.peek_some_len(Mode::Async).await?,
        };
        Ok(View { front: self, len })
    }

    /// The blocking twin of [`peek`](Self::peek).
    ///
    /// # Errors
    ///
    /// As [`peek`](Self::peek).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-blocking-peek-{}", std::process::id());
    /// let chan = ChannelIo::<u32>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.blocking_put(&[7, 8, 9])?;
    /// let view = r.blocking_peek(2)?;
    /// assert_eq!(&*view, &[7, 8]);
    /// view.consume_all();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn blocking_peek(&mut self, n: usize) -> Result<View<'_, T, S>, Error> {
        let len = match self.peek_now(n) {
            Some(len) => len,
            None => self.blocking_peek_slow(n)?,
        };
        Ok(View { front: self, len })
    }

    /// The waiting part of `blocking_peek`, out of line (its frame then costs the fast path
    /// nothing).
    #[inline(never)]
    #[cold]
    fn blocking_peek_slow(&mut self, n: usize) -> Result<usize, Error> {
        notify::run_blocking(self.peek_len(n, Mode::Blocking))
            .unwrap_or_else(|| Err(self.core.blocking_bug()))
    }

    /// The blocking twin of [`peek_some`](Self::peek_some).
    ///
    /// # Errors
    ///
    /// As [`peek_some`](Self::peek_some).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-blocking-peek-some-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.blocking_put(b"abc")?;
    /// assert_eq!(r.blocking_peek_some()?.consume_all(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn blocking_peek_some(&mut self) -> Result<View<'_, T, S>, Error> {
        if let Some(avail) = self.ready_now(1) {
            return Ok(View {
                front: self,
                len: avail,
            });
        }
        let len = notify::run_blocking(self.peek_some_len(Mode::Blocking))
            .unwrap_or_else(|| Err(self.core.blocking_bug()))?;
        Ok(View { front: self, len })
    }

    /// Shows exactly `n` items in place if that many are there now (`None`, removing
    /// nothing, if not yet): [`peek`](Self::peek) for an event loop of your own (see
    /// [`prepare_wait`](Self::prepare_wait)).
    ///
    /// # Errors
    ///
    /// As [`peek`](Self::peek), without waiting.
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-try-peek-n-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// w.blocking_put(b"abc")?;
    /// assert!(r.try_peek(4)?.is_none());
    /// assert_eq!(&*r.try_peek(2)?.expect("two are there"), b"ab");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_peek(&mut self, n: usize) -> Result<Option<View<'_, T, S>>, Error> {
        if let Some(len) = self.peek_now(n) {
            return Ok(Some(View { front: self, len }));
        }
        if !self.there_now(n)? {
            return Ok(None);
        }
        Ok(Some(View {
            front: self,
            len: n,
        }))
    }

    /// Every item committed now, in place, if the cached view of the writer's index shows at
    /// least one (the fast path's checks only); `None`: take a slow path, which reports
    /// what is wrong.
    #[inline]
    pub(crate) fn peek_ready_now(&mut self) -> Option<View<'_, T, S>> {
        self.ready_now(1).map(|len| View { front: self, len })
    }

    /// Every item committed now, in place (possibly none): at once when the cached view of
    /// the writer's index shows some, else as [`try_peek_some`](Self::try_peek_some).
    #[inline]
    pub(crate) fn peek_committed(&mut self) -> Result<View<'_, T, S>, Error> {
        if let Some(len) = self.ready_now(1) {
            return Ok(View { front: self, len });
        }
        self.try_peek_some()
    }

    /// Shows the items available now, in place, without waiting (possibly none).
    ///
    /// # Errors
    ///
    /// As [`try_get_some`](Self::try_get_some).
    ///
    /// ```
    /// # use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-try-peek-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let mut r = chan.reader()?;
    /// assert!(r.try_peek_some()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_peek_some(&mut self) -> Result<View<'_, T, S>, Error> {
        self.check_open()?;
        match probe(&mut self.ring, &self.core.seg, 1) {
            None => Ok(View {
                front: self,
                len: 0,
            }),
            Some(Err(e)) => Err(self.core.corrupt(e)),
            Some(Ok(Avail::Enough(avail))) => Ok(View {
                front: self,
                len: avail as usize,
            }),
            Some(Ok(Avail::Ended { avail, state })) => Err(self.ended(avail, state)),
        }
    }
}

/// Committed items shown in place by [`ReaderFront::peek`]: a contiguous `&[T]` in the
/// shared segment. [`consume`](Self::consume) removes a prefix; dropping the view removes
/// nothing.
///
/// # What the peer can do to these items
///
/// The slice is always inside our mapping, whatever the peer writes to the indices: a
/// corrupt peer cannot make it point elsewhere. Beyond that, this API relies on the peer
/// following the protocol, which forbids the writer to touch committed items until the
/// reader releases them, so that the `&[T]` does not change while you hold it, as Rust
/// requires. A process that writes into the segment anyway breaks that assumption: a value
/// could change between two reads of it, which safe code is entitled to assume impossible
/// (a bounds check on `view[0]` followed by a use of `view[0]`, say). Channels are created
/// 0600 and opened only from their owner (see
/// [`Options::accept_other_owner`](crate::Options::accept_other_owner)), so such a process
/// runs as the same user. If you cannot trust the peer that far, copy out with
/// [`get`](ReaderFront::get), which never holds a reference into shared memory.
///
/// The view of a [`RawReader`](crate::RawReader) is bytes: its slice holds
/// [`elements`](Self::elements) × the element size bytes, and `consume` counts elements.
pub struct View<'a, T: Pod, S: Stride = Typed> {
    front: &'a mut ReaderFront<T, S>,
    /// In elements.
    len: usize,
}

impl<T: Pod, S: Stride> View<'_, T, S> {
    /// The elements shown (for a typed view, its slice's length).
    pub fn elements(&self) -> usize {
        self.len
    }

    /// Removes the first `k` elements (at most the view's length) and returns how many.
    ///
    /// A view that a process inherited through `fork` (the fork came while it was held)
    /// removes nothing there and returns 0: the reader is its claimant's (see
    /// [`ErrorKind::Forked`](crate::ErrorKind::Forked)).
    #[inline]
    pub fn consume(self, k: usize) -> usize {
        let k = k.min(self.len);
        if k == 0 || self.front.core.forked() {
            return 0;
        }
        self.front.release(k);
        k
    }

    /// Removes every item shown.
    pub fn consume_all(self) -> usize {
        let n = self.len;
        self.consume(n)
    }
}

impl<T: Pod, S: Stride> std::ops::Deref for View<'_, T, S> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` ≤ the committed elements counted when the view was made (≤ the
        // capacity); their `len × units` `T`s start at `items()`, contiguous and aligned in
        // the mirrored mapping, and the writer does not write them until we release them,
        // which needs `&mut` of the front the view holds.
        unsafe {
            std::slice::from_raw_parts(self.front.items(), self.len * self.front.stride.units())
        }
    }
}

impl<T: Pod, S: Stride> std::fmt::Debug for View<'_, T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("len", &self.len).finish()
    }
}
