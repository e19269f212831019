//! [`MessageWriter`]: the writing end of a [`MessageChannel`](super::MessageChannel).

use std::time::Duration;

use super::{oversized, words, WORD};
use crate::error::Error;
use crate::header::End;
use crate::notify::{self, Mode, Readiness, WaitStats, WaitStrategy};
use crate::writer::{Slots, WriterFront};

/// The writing end of a [`MessageChannel`](super::MessageChannel): appends whole messages,
/// copied ([`put`](Self::put)) or written in place ([`reserve`](Self::reserve)).
///
/// Its calls, errors and waiting are those of [`WriterFront`], counted in messages: after a
/// failed `put`, [`Error::accepted`] messages of the call are in the channel (a prefix:
/// resend the rest).
#[derive(Debug)]
pub struct MessageWriter {
    pub(super) w: WriterFront<u64>,
}

impl MessageWriter {
    pub(super) fn new(w: WriterFront<u64>) -> MessageWriter {
        MessageWriter { w }
    }

    /// The words a message of `len` bytes takes, or the error if the ring cannot hold it.
    #[inline]
    fn words_of(&self, len: usize) -> Result<usize, Error> {
        match words(len) {
            Some(n) if n <= self.w.capacity() => Ok(n),
            _ => Err(oversized(
                self.w.name(),
                End::Writer,
                len,
                self.w.capacity(),
            )),
        }
    }

    /// Checks that the ring can hold each of `msgs` (so that a `put` puts all of them or
    /// fails for a reason of the channel's, never half-way for a message that was never
    /// going to fit); returns the words they take in all (saturating).
    fn check_all<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<usize, Error> {
        msgs.iter().try_fold(0usize, |total, m| {
            self.words_of(m.as_ref().len())
                .map(|n| total.saturating_add(n))
        })
    }

    /// Puts the longest prefix of `msgs` that fits in the room there is now, with one
    /// commit; returns how many messages that is. `total`: the words of all of `msgs`, each
    /// of which fits the ring (`check_all`).
    fn put_now<M: AsRef<[u8]>>(&mut self, msgs: &[M], total: usize) -> Result<usize, Error> {
        let mut slots = self.w.reserve_up_to(total)?;
        let room = slots.len();
        let (mut at, mut k) = (0, 0);
        for m in msgs {
            let m = m.as_ref();
            let n = words(m.len()).unwrap_or(usize::MAX);
            if n > room - at {
                break;
            }
            frame(&mut slots[at..at + n], m.len()).copy_from_slice(m);
            at += n;
            k += 1;
        }
        slots.commit(at);
        Ok(k)
    }

    /// The fast path of a put of one message: true if it went in now (false: take the
    /// general path, which also reports an oversized message).
    #[inline]
    fn put_one_now(&mut self, m: &[u8]) -> bool {
        let Some(n) = words(m.len()) else {
            return false;
        };
        let Some(mut slots) = self.w.reserve_exact_now(n) else {
            return false;
        };
        frame(&mut slots, m.len()).copy_from_slice(m);
        slots.commit(n) == n
    }

    /// Appends `msgs` in order, each whole, as room comes, without waiting: returns how many
    /// went in (a prefix, possibly none).
    ///
    /// # Errors
    ///
    /// As [`WriterFront::try_put`]; [`Oversized`](crate::ErrorKind::Oversized) (nothing
    /// put) if one of `msgs` is longer than [`max_message_len`](Self::max_message_len).
    pub fn try_put<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<usize, Error> {
        let total = self.check_all(msgs)?;
        self.put_now(msgs, total)
    }

    /// Appends `msgs` in order, each whole, waiting for room as needed. As
    /// [`WriterFront::put`], in messages.
    ///
    /// # Errors
    ///
    /// As [`WriterFront::put`], with [`accepted`](Error::accepted) counting messages;
    /// [`Oversized`](crate::ErrorKind::Oversized) (nothing put) if one of `msgs` is longer
    /// than [`max_message_len`](Self::max_message_len).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe, as [`WriterFront::put`]: a cancelled `put` may have put a prefix of
    /// `msgs`. [`try_put`](Self::try_put) and [`wait_room`](Self::wait_room) count it.
    pub async fn put<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<(), Error> {
        if let [m] = msgs {
            if self.put_one_now(m.as_ref()) {
                return Ok(());
            }
        }
        let total = self.check_all(msgs)?;
        let done = self.put_now(msgs, total)?;
        if done == msgs.len() {
            return Ok(());
        }
        self.put_in(msgs, done, total, Mode::Async).await
    }

    /// The blocking twin of [`put`](Self::put).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    #[inline]
    pub fn blocking_put<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<(), Error> {
        // The fast path first, without the waiting future (as `WriterFront::blocking_put`).
        if let [m] = msgs {
            if self.put_one_now(m.as_ref()) {
                return Ok(());
            }
        }
        let total = self.check_all(msgs)?;
        let done = self.put_now(msgs, total)?;
        if done == msgs.len() {
            return Ok(());
        }
        self.blocking_put_slow(msgs, done, total)
    }

    #[inline(never)]
    #[cold]
    fn blocking_put_slow<M: AsRef<[u8]>>(
        &mut self,
        msgs: &[M],
        done: usize,
        total: usize,
    ) -> Result<(), Error> {
        notify::run_blocking(self.put_in(msgs, done, total, Mode::Blocking))
            .unwrap_or_else(|| Err(self.w.core.blocking_bug()))
    }

    /// Puts `msgs[done..]`, waiting for room; `total`: the words of all of `msgs`.
    async fn put_in<M: AsRef<[u8]>>(
        &mut self,
        msgs: &[M],
        mut done: usize,
        mut total: usize,
        mode: Mode,
    ) -> Result<(), Error> {
        for m in &msgs[..done] {
            total -= words(m.as_ref().len()).unwrap_or(0).min(total);
        }
        while done < msgs.len() {
            let k = self
                .put_now(&msgs[done..], total)
                .map_err(|e| e.with_progress(done))?;
            if k == 0 {
                // Room for the next message; the ring can hold it (`check_all`).
                let next = words(msgs[done].as_ref().len()).unwrap_or(usize::MAX);
                self.w
                    .room(next, mode)
                    .await
                    .map_err(|e| e.with_progress(done))?;
                continue;
            }
            for m in &msgs[done..done + k] {
                total -= words(m.as_ref().len()).unwrap_or(0).min(total);
            }
            done += k;
        }
        Ok(())
    }

    /// Waits until a message of `len` bytes fits; for loops that count what went in with
    /// [`try_put`](Self::try_put). As [`WriterFront::wait_room`].
    ///
    /// # Errors
    ///
    /// As [`WriterFront::wait_room`]; [`Oversized`](crate::ErrorKind::Oversized) if `len`
    /// exceeds [`max_message_len`](Self::max_message_len).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it changes nothing.
    pub async fn wait_room(&mut self, len: usize) -> Result<(), Error> {
        let n = self.words_of(len)?;
        self.w.room(n, Mode::Async).await.map(|_| ())
    }

    /// The blocking twin of [`wait_room`](Self::wait_room).
    ///
    /// # Errors
    ///
    /// As [`wait_room`](Self::wait_room).
    pub fn blocking_wait_room(&mut self, len: usize) -> Result<(), Error> {
        let n = self.words_of(len)?;
        self.w.blocking_wait_room(n).map(|_| ())
    }

    /// Waits for room for a message of `len` bytes and lends it, in place in the shared
    /// segment, to be filled and [committed](MessageSlot::commit); dropping the slot
    /// publishes nothing. As [`WriterFront::reserve`].
    ///
    /// # Errors
    ///
    /// As [`wait_room`](Self::wait_room).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is published until you commit.
    ///
    /// ```
    /// # use shmchan::{MessageChannel, Options};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-msg-reserve-{}", std::process::id());
    /// let chan = MessageChannel::create(&name, Options::new())?;
    /// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    /// let mut slot = w.reserve(64).await?; // at most 64 bytes
    /// let n = { let mut s = std::io::Cursor::new(&mut slot[..]); std::io::Write::write(&mut s, b"{\"t\": 1}")? };
    /// slot.commit_len(n); // a message of the 8 bytes written
    /// assert_eq!(&*r.peek().await?, b"{\"t\": 1}");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reserve(&mut self, len: usize) -> Result<MessageSlot<'_>, Error> {
        let n = self.words_of(len)?;
        let slots = self.w.reserve(n).await?;
        Ok(MessageSlot { slots, len })
    }

    /// The blocking twin of [`reserve`](Self::reserve).
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve).
    pub fn blocking_reserve(&mut self, len: usize) -> Result<MessageSlot<'_>, Error> {
        let n = self.words_of(len)?;
        let slots = self.w.blocking_reserve(n)?;
        Ok(MessageSlot { slots, len })
    }

    /// Lends room for a message of `len` bytes if there is room now.
    ///
    /// # Errors
    ///
    /// As [`try_put`](Self::try_put).
    pub fn try_reserve(&mut self, len: usize) -> Result<Option<MessageSlot<'_>>, Error> {
        let n = self.words_of(len)?;
        let slots = self.w.try_reserve(n)?;
        Ok((slots.len() == n).then_some(MessageSlot { slots, len }))
    }

    /// The longest message the channel takes, in bytes.
    pub fn max_message_len(&self) -> usize {
        super::max_len(self.w.capacity())
    }

    /// Bytes of ring, as [`MessageChannel::capacity_bytes`](super::MessageChannel::capacity_bytes).
    pub fn capacity_bytes(&self) -> usize {
        self.w.capacity() * WORD
    }

    /// True if the reader closed the channel (a `put` would fail with
    /// [`Closed`](crate::ErrorKind::Closed)). As [`WriterFront::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.w.is_closed()
    }

    /// `Ok` in the process that claimed this end. As [`WriterFront::check_process`].
    ///
    /// # Errors
    ///
    /// [`Forked`](crate::ErrorKind::Forked) in a process that inherited it through `fork`.
    pub fn check_process(&self) -> Result<(), Error> {
        self.w.check_process()
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.w.name()
    }

    /// Closes the channel for writing: the reader reads every message committed, then gets
    /// [`Closed`](crate::ErrorKind::Closed). Dropping the writer does the same. As
    /// [`WriterFront::close`].
    pub fn close(self) {
        self.w.close();
    }

    /// Ends the stream with an error: the reader reads every message committed, then gets
    /// [`Aborted`](crate::ErrorKind::Aborted) with `reason`. As [`WriterFront::abort`].
    pub fn abort(self, reason: &str) {
        self.w.abort(reason);
    }

    /// Lets go of the writer without ending the stream, as a process that dies does: a
    /// restarted writer carries it on. As [`WriterFront::leave`].
    pub fn leave(self) {
        self.w.leave();
    }

    /// The longest any call waits, then fails with [`TimedOut`](crate::ErrorKind::TimedOut)
    /// (`None`: no limit). As [`WriterFront::set_timeout`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.w.set_timeout(timeout);
    }

    /// How the writer waits for room. As [`WriterFront::set_wait_strategy`].
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.w.set_wait_strategy(strategy);
    }

    /// The writer's waiting so far. As [`WriterFront::wait_stats`].
    pub fn wait_stats(&self) -> WaitStats {
        self.w.wait_stats()
    }

    /// The descriptor an event loop waits on. As [`WriterFront::wait_fd`].
    ///
    /// # Errors
    ///
    /// As [`WriterFront::wait_fd`].
    pub fn wait_fd(&mut self) -> Result<std::os::fd::BorrowedFd<'_>, Error> {
        self.w.wait_fd()
    }

    /// Ready if a message of `len` bytes fits now; otherwise arms the wait. As
    /// [`WriterFront::prepare_wait`].
    ///
    /// # Errors
    ///
    /// As [`WriterFront::prepare_wait`]; [`Oversized`](crate::ErrorKind::Oversized) if
    /// `len` exceeds [`max_message_len`](Self::max_message_len).
    pub fn prepare_wait(&mut self, len: usize) -> Result<Readiness, Error> {
        let n = self.words_of(len)?;
        self.w.prepare_wait(n)
    }

    /// Ends a wait armed by [`prepare_wait`](Self::prepare_wait). As
    /// [`WriterFront::finish_wait`].
    ///
    /// # Errors
    ///
    /// As [`WriterFront::finish_wait`].
    pub fn finish_wait(&mut self) -> Result<(), Error> {
        self.w.finish_wait()
    }
}

/// Writes the length word of a message of `len` bytes into `words` (exactly the words it
/// takes), zeroes its padding, and returns its bytes to fill.
#[inline]
fn frame(words: &mut [u64], len: usize) -> &mut [u8] {
    let (head, body) = words.split_at_mut(1);
    head[0] = len as u64;
    if let Some(last) = body.last_mut() {
        *last = 0; // the padding, before the bytes overwrite the rest of the word
    }
    &mut bytemuck::cast_slice_mut::<u64, u8>(body)[..len]
}

/// Room for one message lent by [`MessageWriter::reserve`]: `len` bytes in place in the
/// shared segment, 8-byte aligned. Fill them, then [`commit`](Self::commit) (or
/// [`commit_len`](Self::commit_len) a shorter message); dropping the slot publishes
/// nothing. What a peer that ignores the protocol can do to it is as for [`Slots`].
pub struct MessageSlot<'a> {
    slots: Slots<'a, u64>,
    len: usize,
}

impl MessageSlot<'_> {
    /// Publishes the message: all the slot's bytes.
    #[inline]
    pub fn commit(self) {
        let len = self.len;
        self.commit_len(len);
    }

    /// Publishes a message of the slot's first `len` bytes (at most the slot's length; a
    /// larger `len` publishes all of them). For a message whose length is known only once
    /// written.
    #[inline]
    pub fn commit_len(mut self, len: usize) {
        let len = len.min(self.len);
        let n = words(len).unwrap_or(1);
        let body = &mut self.slots[..n];
        body[0] = len as u64;
        if len % WORD != 0 {
            // Zero the padding after the message's last byte (within its last word).
            let bytes = bytemuck::cast_slice_mut::<u64, u8>(&mut body[1..]);
            bytes[len..].fill(0);
        }
        self.slots.commit(n);
    }
}

impl std::fmt::Debug for MessageSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageSlot")
            .field("len", &self.len)
            .finish()
    }
}

impl std::ops::Deref for MessageSlot<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.slots[1..])[..self.len]
    }
}

impl std::ops::DerefMut for MessageSlot<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut bytemuck::cast_slice_mut::<u64, u8>(&mut self.slots[1..])[..len]
    }
}

const _: () = assert!(WORD == std::mem::size_of::<u64>());
