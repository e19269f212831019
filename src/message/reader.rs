//! [`MessageReader`]: the reading end of a [`MessageChannel`](super::MessageChannel).

use std::time::Duration;

use super::view::Messages;
use super::{max_len, words};
use crate::error::Error;
use crate::notify::{self, Mode, Readiness, WaitStats, WaitStrategy};
use crate::reader::{ReaderFront, View};

/// The reading end of a [`MessageChannel`](super::MessageChannel): takes whole messages, in
/// order, copied ([`get`](Self::get)) or in place ([`peek`](Self::peek)).
///
/// Its calls, errors and waiting are those of [`ReaderFront`], counted in messages. A `get`
/// of N messages takes them as they come: if the stream ends first, the error's
/// [`filled`](Error::filled) says how many of `to` it filled (and consumed).
#[derive(Debug)]
pub struct MessageReader {
    r: ReaderFront<u64>,
    /// The channel's name, for errors made while a view of the ring borrows `r`.
    name: Box<str>,
}

/// Where the message at word `at` of `committed` (the committed words from the head) ends: the
/// words it takes. Its length word comes from the peer: a length that runs past the
/// committed words is an error, never a read past them.
#[inline]
pub(super) fn extent(committed: &[u64], at: usize, name: &str) -> Result<(usize, usize), Error> {
    let there = committed.len() - at;
    let len = read_once(&committed[at]);
    if len > max_len(there) as u64 {
        return Err(Error::corrupted(
            name,
            "message length",
            format!("{len} bytes, but only {there} words are committed from its length word"),
        )
        .by(crate::header::End::Reader));
    }
    // In range: `len` ≤ (there - 1) × 8, so neither conversion nor `words` overflows.
    let len = len as usize;
    Ok((len, words(len).unwrap_or(there)))
}

/// A word of the ring, read with one load that the compiler may not repeat: the peer may
/// write it (against the protocol) between a check of the value and its use, which must
/// then both see this one value.
#[inline]
pub(super) fn read_once(word: &u64) -> u64 {
    // SAFETY: `word` is a valid, aligned reference to a u64 of our mapping.
    unsafe { std::ptr::read_volatile(word) }
}

/// The message at the head of `view` (the committed words), if there is one.
#[inline]
fn at_head<'a>(view: View<'a, u64>, name: &str) -> Result<Option<Message<'a>>, Error> {
    if view.is_empty() {
        return Ok(None);
    }
    let (len, n) = extent(&view, 0, name)?;
    Ok(Some(Message {
        view,
        len,
        words: n,
    }))
}

impl MessageReader {
    pub(super) fn new(r: ReaderFront<u64>) -> MessageReader {
        let name = r.name().into();
        MessageReader { r, name }
    }

    /// The message at the head, if one is committed; `Err` once the stream has ended (and
    /// nothing is left), or for a corrupt length.
    #[inline]
    fn show(&mut self) -> Result<Option<Message<'_>>, Error> {
        at_head(self.r.peek_committed()?, &self.name)
    }

    /// The fast path of a get of one message: true if one was there, whole, and is now in
    /// `to` (false: take the general path, which also reports errors).
    #[inline]
    fn take_one_now(&mut self, to: &mut Vec<u8>) -> bool {
        let Some(view) = self.r.peek_ready_now() else {
            return false;
        };
        let Ok((len, n)) = extent(&view, 0, &self.name) else {
            return false;
        };
        to.clear();
        to.extend_from_slice(&bytemuck::cast_slice::<u64, u8>(&view[1..n])[..len]);
        view.consume(n);
        true
    }

    /// Copies the messages committed now into `to` (at most its length), each into its own
    /// `Vec` (cleared first), and consumes them with one store; returns how many.
    #[inline]
    fn take_now(&mut self, to: &mut [Vec<u8>]) -> Result<usize, Error> {
        if to.is_empty() {
            return Ok(0);
        }
        let view = self.r.peek_committed()?;
        let (mut at, mut k) = (0, 0);
        while k < to.len() && at < view.len() {
            let (len, n) = match extent(&view, at, &self.name) {
                Ok(x) => x,
                // The messages before a corrupt length are whole: deliver them; the next
                // call reports it.
                Err(_) if k > 0 => break,
                Err(e) => return Err(e),
            };
            let bytes = bytemuck::cast_slice::<u64, u8>(&view[at + 1..at + n]);
            to[k].clear();
            to[k].extend_from_slice(&bytes[..len]);
            at += n;
            k += 1;
        }
        view.consume(at);
        Ok(k)
    }

    /// Fills `to` with exactly `to.len()` messages, waiting for them as needed; each `Vec`
    /// is cleared, then holds one message (its allocation is reused).
    ///
    /// # Errors
    ///
    /// As [`ReaderFront::get`], with [`filled`](Error::filled) counting the messages of
    /// `to` already filled (they are consumed); [`Corrupted`](crate::ErrorKind::Corrupted)
    /// for a length word that runs past what the writer committed.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a cancelled `get` may have consumed some messages into `to`. Use
    /// [`get_some`](Self::get_some) or [`peek`](Self::peek) in a `select!`.
    pub async fn get(&mut self, to: &mut [Vec<u8>]) -> Result<(), Error> {
        if let [one] = to {
            if self.take_one_now(one) {
                return Ok(());
            }
        }
        let done = self.take_now(to)?;
        if done == to.len() {
            return Ok(());
        }
        self.get_in(to, done, Mode::Async).await
    }

    /// The blocking twin of [`get`](Self::get).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    #[inline]
    pub fn blocking_get(&mut self, to: &mut [Vec<u8>]) -> Result<(), Error> {
        // The fast path first, without the waiting future (as `ReaderFront::blocking_get`).
        if let [one] = to {
            if self.take_one_now(one) {
                return Ok(());
            }
        }
        let done = self.take_now(to)?;
        if done == to.len() {
            return Ok(());
        }
        self.blocking_get_slow(to, done)
    }

    #[inline(never)]
    #[cold]
    fn blocking_get_slow(&mut self, to: &mut [Vec<u8>], done: usize) -> Result<(), Error> {
        notify::run_blocking(self.get_in(to, done, Mode::Blocking))
            .unwrap_or_else(|| Err(self.r.core.blocking_bug()))
    }

    /// Fills `to[done..]`, waiting for messages.
    async fn get_in(
        &mut self,
        to: &mut [Vec<u8>],
        mut done: usize,
        mode: Mode,
    ) -> Result<(), Error> {
        while done < to.len() {
            let k = self
                .take_now(&mut to[done..])
                .map_err(|e| e.with_progress(done))?;
            if k == 0 {
                self.r
                    .items_in(1, mode)
                    .await
                    .map_err(|e| e.with_progress(done))?;
            }
            done += k;
        }
        Ok(())
    }

    /// Fills the start of `to` with the messages there are, at least one, waiting for one
    /// if none is; returns how many (1..=`to.len()`; 0 only for an empty `to`).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), with nothing filled.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it consumes only once it no longer waits.
    pub async fn get_some(&mut self, to: &mut [Vec<u8>]) -> Result<usize, Error> {
        self.get_some_in(to, Mode::Async).await
    }

    /// The blocking twin of [`get_some`](Self::get_some).
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    pub fn blocking_get_some(&mut self, to: &mut [Vec<u8>]) -> Result<usize, Error> {
        notify::run_blocking(self.get_some_in(to, Mode::Blocking))
            .unwrap_or_else(|| Err(self.r.core.blocking_bug()))
    }

    async fn get_some_in(&mut self, to: &mut [Vec<u8>], mode: Mode) -> Result<usize, Error> {
        if to.is_empty() {
            return Ok(0);
        }
        self.r.items_in(1, mode).await?;
        self.take_now(to)
    }

    /// As [`get_some`](Self::get_some), without waiting: 0 if no message is there.
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    pub fn try_get_some(&mut self, to: &mut [Vec<u8>]) -> Result<usize, Error> {
        self.take_now(to)
    }

    /// Waits for a message and shows the whole messages there are, in place, without
    /// copying (the first, and those after it within 64 KiB); they are removed only when
    /// [consumed](Messages::consume). For a consumer
    /// that must finish with a message (write it out, say) before it may be removed, and
    /// takes many at a time.
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: peeking removes nothing.
    pub async fn peek_some(&mut self) -> Result<Messages<'_>, Error> {
        if self.r.ready_now(1).is_none() {
            self.r.items_in(1, Mode::Async).await?;
        }
        Messages::new(self.r.peek_committed()?, &self.name, usize::MAX)
    }

    /// The blocking twin of [`peek_some`](Self::peek_some).
    ///
    /// # Errors
    ///
    /// As [`peek_some`](Self::peek_some).
    pub fn blocking_peek_some(&mut self) -> Result<Messages<'_>, Error> {
        if self.r.ready_now(1).is_none() {
            self.r.blocking_wait_items(1)?;
        }
        Messages::new(self.r.peek_committed()?, &self.name, usize::MAX)
    }

    /// As [`peek_some`](Self::peek_some), without waiting: possibly no message.
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    pub fn try_peek_some(&mut self) -> Result<Messages<'_>, Error> {
        Messages::new(self.r.peek_committed()?, &self.name, usize::MAX)
    }

    /// As [`try_peek_some`](Self::try_peek_some), showing at most `max` messages: a view
    /// walks the length words of what it shows, so a consumer that takes a few messages at
    /// a time from a long backlog shows only those.
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    pub fn try_peek_at_most(&mut self, max: usize) -> Result<Messages<'_>, Error> {
        Messages::new(self.r.peek_committed()?, &self.name, max)
    }

    /// Waits for the next message and shows it in place, without copying; it is removed
    /// only when [consumed](Message::consume).
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: peeking removes nothing.
    pub async fn peek(&mut self) -> Result<Message<'_>, Error> {
        if self.r.ready_now(1).is_none() {
            self.r.items_in(1, Mode::Async).await?;
        }
        self.shown()
    }

    /// The blocking twin of [`peek`](Self::peek).
    ///
    /// # Errors
    ///
    /// As [`peek`](Self::peek).
    pub fn blocking_peek(&mut self) -> Result<Message<'_>, Error> {
        if self.r.ready_now(1).is_none() {
            self.r.blocking_wait_items(1)?;
        }
        self.shown()
    }

    /// The message a wait found there (messages leave only through this reader).
    #[inline]
    fn shown(&mut self) -> Result<Message<'_>, Error> {
        at_head(self.r.peek_committed()?, &self.name)?.ok_or_else(|| {
            Error::io(
                &self.name,
                "peeking",
                std::io::Error::other("a wait for a message found none (bug)"),
            )
        })
    }

    /// Shows the next message in place if one is there now.
    ///
    /// # Errors
    ///
    /// As [`get_some`](Self::get_some).
    pub fn try_peek(&mut self) -> Result<Option<Message<'_>>, Error> {
        self.show()
    }

    /// The number of messages in the channel now, counted by walking their length words
    /// (a snapshot; for a count of the ring's bytes in use, see
    /// [`MessageChannel::len_bytes`](super::MessageChannel::len_bytes)).
    ///
    /// # Errors
    ///
    /// [`Corrupted`](crate::ErrorKind::Corrupted) for a length word that runs past what the
    /// writer committed; the errors of [`try_get_some`](Self::try_get_some) but the end of
    /// the stream, which counts 0.
    pub fn count(&mut self) -> Result<usize, Error> {
        // A fresh look at the writer's index: a view shows what the reader last saw of it
        // while that holds a message (its fast path), and a count is of what is there now.
        self.r.len();
        let view = match self.r.try_peek_some() {
            Ok(v) => v,
            Err(e) if e.is_end_of_stream() => return Ok(0),
            Err(e) => return Err(e),
        };
        // Every committed message, not only those a view shows: at most one step per
        // message, and never past the committed words (`extent` checks each length).
        let (mut at, mut k) = (0, 0);
        while at < view.len() {
            at += extent(&view, at, &self.name)?.1;
            k += 1;
        }
        Ok(k)
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of ring, as [`MessageChannel::capacity_bytes`](super::MessageChannel::capacity_bytes).
    pub fn capacity_bytes(&self) -> usize {
        self.r.capacity() * super::WORD
    }

    /// The longest message the channel takes, in bytes.
    pub fn max_message_len(&self) -> usize {
        max_len(self.r.capacity())
    }

    /// Bytes of ring the messages there take now, with their length words and padding (a
    /// snapshot; 0 once the stream has ended and nothing is left).
    pub fn len_bytes(&mut self) -> usize {
        self.r.len() * super::WORD
    }

    /// `Ok` in the process that claimed this end. As [`ReaderFront::check_process`].
    ///
    /// # Errors
    ///
    /// [`Forked`](crate::ErrorKind::Forked) in a process that inherited it through `fork`.
    pub fn check_process(&self) -> Result<(), Error> {
        self.r.check_process()
    }

    /// Closes the channel: what remains is discarded, and the writer's waiting or next `put`
    /// fails with [`Closed`](crate::ErrorKind::Closed). Dropping the reader does the same.
    /// As [`ReaderFront::close`].
    pub fn close(self) {
        self.r.close();
    }

    /// Lets go of the reader without closing the channel, as a process that dies does: a
    /// restarted reader carries on from the first message not consumed. As
    /// [`ReaderFront::leave`].
    pub fn leave(self) {
        self.r.leave();
    }

    /// The longest any call waits, then fails with [`TimedOut`](crate::ErrorKind::TimedOut)
    /// (`None`: no limit). As [`ReaderFront::set_timeout`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.r.set_timeout(timeout);
    }

    /// How the reader waits for messages. As [`ReaderFront::set_wait_strategy`].
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.r.set_wait_strategy(strategy);
    }

    /// The reader's waiting so far. As [`ReaderFront::wait_stats`].
    pub fn wait_stats(&self) -> WaitStats {
        self.r.wait_stats()
    }

    /// The descriptor an event loop waits on. As [`ReaderFront::wait_fd`].
    ///
    /// # Errors
    ///
    /// As [`ReaderFront::wait_fd`].
    pub fn wait_fd(&mut self) -> Result<std::os::fd::BorrowedFd<'_>, Error> {
        self.r.wait_fd()
    }

    /// Ready if a message is there now; otherwise arms the wait. As
    /// [`ReaderFront::prepare_wait`].
    ///
    /// # Errors
    ///
    /// As [`ReaderFront::prepare_wait`].
    pub fn prepare_wait(&mut self) -> Result<Readiness, Error> {
        self.r.prepare_wait(1)
    }

    /// Ends a wait armed by [`prepare_wait`](Self::prepare_wait). As
    /// [`ReaderFront::finish_wait`].
    ///
    /// # Errors
    ///
    /// As [`ReaderFront::finish_wait`].
    pub fn finish_wait(&mut self) -> Result<(), Error> {
        self.r.finish_wait()
    }
}

/// One message shown in place by [`MessageReader::peek`]: its bytes in the shared segment,
/// 8-byte aligned. [`consume`](Self::consume) removes it; dropping it removes nothing. What
/// a peer that ignores the protocol can do to it is as for [`View`].
pub struct Message<'a> {
    view: View<'a, u64>,
    len: usize,
    /// The words it takes, its length word included.
    words: usize,
}

impl Message<'_> {
    /// Removes the message from the channel.
    #[inline]
    pub fn consume(self) {
        let n = self.words;
        self.view.consume(n);
    }
}

impl std::ops::Deref for Message<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.view[1..self.words])[..self.len]
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message").field("len", &self.len).finish()
    }
}
