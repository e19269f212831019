//! The index protocol of the ring, over raw memory. No system call, no waiting.
//!
//! `tail` (items ever committed, written only by the producer) and `head` (items ever
//! consumed, written only by the consumer) are monotonic `u64`s; item `i` lives in slot
//! `i % capacity`. The invariant `head ≤ tail ≤ head + capacity` holds for a correct peer;
//! each side keeps its own index locally (never re-reading it from the segment after it
//! claimed its end) and checks every value of the peer's index it reads against that
//! invariant, so a corrupt peer yields [`RingError`], never an out-of-range slot.
//!
//! Orderings, pairwise:
//! - producer: write slots, then `tail.store(Release)` — pairs with the consumer's
//!   `tail.load(Acquire)`, after which the slot bytes are visible;
//! - consumer: read slots, then `head.store(Release)` — pairs with the producer's
//!   `head.load(Acquire)`, after which the consumer no longer reads those slots and the
//!   producer may overwrite them.
//!
//! Each side caches the other's index and re-reads it only when the cached view says the
//! ring is full (producer) or has too few items (consumer), so in steady streaming each side
//! touches the other's cache line once per lap of the ring, not once per item.

use crate::sync::{AtomicU64, Ordering};

/// A peer's index broke the ring invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RingError {
    pub field: &'static str,
    pub detail: String,
}

/// The producer's view: its own `tail` and the last `head` it saw.
#[derive(Debug)]
pub(crate) struct Producer {
    tail: u64,
    /// The last `head` seen, plus the capacity: how far `tail` may go (kept in this form so
    /// that the fast path's test for room is one subtraction and one comparison).
    limit: u64,
    cap: u64,
    /// `tail % cap`, kept up to date by `commit` so the fast path has no division.
    slot: u64,
}

impl Producer {
    /// Starts producing after the items already committed (a restarted writer appends after
    /// the last item its predecessor committed).
    pub(crate) fn new(tail: u64, head: u64, cap: u64) -> Result<Producer, RingError> {
        check(head, tail, cap)?;
        Ok(Producer {
            tail,
            limit: head + cap,
            cap,
            slot: tail % cap,
        })
    }

    /// Free slots, at least `want` if the ring has them. Re-reads `head` only if the cached
    /// view shows fewer than `want`.
    #[inline]
    pub(crate) fn room(&mut self, head: &AtomicU64, want: u64) -> Result<u64, RingError> {
        let room = self.limit - self.tail;
        if room >= want {
            return Ok(room);
        }
        self.reread_head(head)
    }

    /// The fast path's `room`: `Some(room)` if at least `want` slots are free, by the cached
    /// view or after re-reading `head`; else `None`, also for a `head` that breaks the
    /// invariant (not recorded: the slow path's [`room`](Self::room) re-reads it and reports
    /// it). No error to build, so that it inlines into `put`.
    #[inline(always)]
    pub(crate) fn room_now(&mut self, head: &AtomicU64, want: u64) -> Option<u64> {
        let room = self.limit - self.tail;
        if room >= want {
            return Some(room);
        }
        // Acquire: as in `reread_head`.
        let h = head.load(Ordering::Acquire);
        if !self.head_ok(h) {
            return None;
        }
        self.limit = h + self.cap;
        let room = self.limit - self.tail;
        (room >= want).then_some(room)
    }

    /// The slow half of `room`: re-reads the consumer's index (only when the cached view
    /// shows the ring full, so kept out of line).
    #[inline(never)]
    fn reread_head(&mut self, head: &AtomicU64) -> Result<u64, RingError> {
        // Acquire: pairs with the consumer's Release store of `head` after it finished
        // reading those slots; we may overwrite them from now on.
        let h = head.load(Ordering::Acquire);
        if !self.head_ok(h) {
            return Err(self.bad_head(h));
        }
        self.limit = h + self.cap;
        Ok(self.limit - self.tail)
    }

    /// Whether a `head` read from the segment keeps the invariant: `head_seen ≤ h ≤ tail`,
    /// in one comparison (below `head_seen`, the wrapping difference is larger than any
    /// `tail - head_seen`). The one test of both re-reads.
    #[inline(always)]
    fn head_ok(&self, h: u64) -> bool {
        let seen = self.limit - self.cap;
        h.wrapping_sub(seen) <= self.tail - seen
    }

    #[cold]
    fn bad_head(&self, h: u64) -> RingError {
        RingError {
            field: "head",
            detail: format!(
                "{h} is outside {}..={} (the items committed so far)",
                self.limit - self.cap,
                self.tail
            ),
        }
    }

    /// Slot of the next item to write, `< capacity`.
    #[inline]
    pub(crate) fn slot(&self) -> u64 {
        self.slot
    }

    /// Publishes the next `n` items. The caller has written them, and `n` ≤ the last
    /// [`room`](Self::room).
    #[inline]
    pub(crate) fn commit(&mut self, n: u64, tail: &AtomicU64) {
        debug_assert!(n <= self.limit - self.tail);
        self.tail += n;
        self.slot = advance(self.slot, n, self.cap);
        // Release: the slot bytes written before this store are visible to a consumer that
        // loads this value of `tail` with Acquire.
        tail.store(self.tail, Ordering::Release);
    }

    /// Items ever committed.
    #[inline]
    pub(crate) fn position(&self) -> u64 {
        self.tail
    }
}

/// The consumer's view: its own `head` and the last `tail` it saw.
#[derive(Debug)]
pub(crate) struct Consumer {
    head: u64,
    tail_seen: u64,
    cap: u64,
    /// `head % cap`, kept up to date by `release` so the fast path has no division.
    slot: u64,
}

impl Consumer {
    /// Starts consuming at the first item not yet consumed (a restarted reader resumes where
    /// its predecessor stopped).
    pub(crate) fn new(tail: u64, head: u64, cap: u64) -> Result<Consumer, RingError> {
        check(head, tail, cap)?;
        Ok(Consumer {
            head,
            tail_seen: tail,
            cap,
            slot: head % cap,
        })
    }

    /// Items available, at least `want` if there are. Re-reads `tail` only if the cached view
    /// shows fewer than `want`.
    #[inline]
    pub(crate) fn available(&mut self, tail: &AtomicU64, want: u64) -> Result<u64, RingError> {
        let avail = self.tail_seen - self.head;
        if avail >= want {
            return Ok(avail);
        }
        self.reread_tail(tail)
    }

    /// The fast path's `available`: `Some(avail)` if at least `want` items are there, by the
    /// cached view or after re-reading `tail`; else `None`, also for a `tail` that breaks the
    /// invariant (not recorded: the slow path's [`available`](Self::available) re-reads it
    /// and reports it). No error to build, so that it inlines into `get`.
    #[inline(always)]
    pub(crate) fn available_now(&mut self, tail: &AtomicU64, want: u64) -> Option<u64> {
        let avail = self.tail_seen - self.head;
        if avail >= want {
            return Some(avail);
        }
        // Acquire: as in `reread_tail`.
        let t = tail.load(Ordering::Acquire);
        if !self.tail_ok(t, avail) {
            return None;
        }
        self.tail_seen = t;
        let avail = t - self.head;
        (avail >= want).then_some(avail)
    }

    /// The slow half of `available`: re-reads the producer's index (inline: a reader that
    /// keeps up with its writer takes it on most calls).
    #[inline]
    fn reread_tail(&mut self, tail: &AtomicU64) -> Result<u64, RingError> {
        // Acquire: pairs with the producer's Release store of `tail` after it wrote those
        // slots; their bytes are visible from now on.
        let t = tail.load(Ordering::Acquire);
        if !self.tail_ok(t, self.tail_seen - self.head) {
            return Err(self.bad_tail(t));
        }
        self.tail_seen = t;
        Ok(t - self.head)
    }

    /// Whether a `tail` read from the segment keeps the invariant: `tail_seen ≤ t ≤ head +
    /// cap` in one comparison (below `tail_seen`, the wrapping difference is larger than any
    /// free space, `cap - avail` for `avail = tail_seen - head`), and the bound of `check`.
    /// The one test of both re-reads.
    #[inline(always)]
    fn tail_ok(&self, t: u64, avail: u64) -> bool {
        t.wrapping_sub(self.tail_seen) <= self.cap - avail && t <= u64::MAX / 2
    }

    #[cold]
    fn bad_tail(&self, t: u64) -> RingError {
        RingError {
            field: "tail",
            detail: format!(
                "{t} is outside {}..={} (consumed so far + capacity)",
                self.tail_seen,
                self.head.saturating_add(self.cap)
            ),
        }
    }

    /// Slot of the next item to read, `< capacity`.
    #[inline]
    pub(crate) fn slot(&self) -> u64 {
        self.slot
    }

    /// Releases the next `n` items to the producer. The caller has read them, and `n` ≤ the
    /// last [`available`](Self::available).
    #[inline]
    pub(crate) fn release(&mut self, n: u64, head: &AtomicU64) {
        debug_assert!(n <= self.tail_seen - self.head);
        self.head += n;
        self.slot = advance(self.slot, n, self.cap);
        // Release: our reads of the slots happen before the producer, loading this value with
        // Acquire, overwrites them.
        head.store(self.head, Ordering::Release);
    }

    /// Items ever consumed.
    #[inline]
    pub(crate) fn position(&self) -> u64 {
        self.head
    }
}

/// `(slot + n) % cap` for `slot < cap` and `n ≤ cap`, without a division (a 64-bit `div` is
/// the most expensive instruction of a single-item `put` or `get`). The result is `< cap`.
///
/// The wrap is a call out of line, taken once a lap: the common case is then an add, a
/// compare and a branch, not the three more of a conditional move.
#[inline(always)]
fn advance(slot: u64, n: u64, cap: u64) -> u64 {
    debug_assert!(slot < cap && n <= cap);
    let s = slot + n;
    if s >= cap {
        return wrap(s, cap);
    }
    s
}

#[cold]
#[inline(never)]
fn wrap(s: u64, cap: u64) -> u64 {
    s - cap
}

fn check(head: u64, tail: u64, cap: u64) -> Result<(), RingError> {
    // No real channel comes near 2^64 items; refusing the top of the range keeps every
    // `index + n` below from overflowing.
    if head > tail || tail - head > cap || tail > u64::MAX / 2 {
        return Err(RingError {
            field: "head/tail",
            detail: format!("head {head}, tail {tail}: not within one capacity ({cap})"),
        });
    }
    Ok(())
}
