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

use std::sync::atomic::{AtomicU64, Ordering};

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
    head_seen: u64,
    cap: u64,
}

impl Producer {
    /// Starts producing after the items already committed (a restarted writer appends after
    /// the last item its predecessor committed).
    pub(crate) fn new(tail: u64, head: u64, cap: u64) -> Result<Producer, RingError> {
        check(head, tail, cap)?;
        Ok(Producer {
            tail,
            head_seen: head,
            cap,
        })
    }

    /// Free slots, at least `want` if the ring has them. Re-reads `head` only if the cached
    /// view shows fewer than `want`.
    pub(crate) fn room(&mut self, head: &AtomicU64, want: u64) -> Result<u64, RingError> {
        let room = self.cap - (self.tail - self.head_seen);
        if room >= want {
            return Ok(room);
        }
        // Acquire: pairs with the consumer's Release store of `head` after it finished
        // reading those slots; we may overwrite them from now on.
        let h = head.load(Ordering::Acquire);
        if h < self.head_seen || h > self.tail {
            return Err(RingError {
                field: "head",
                detail: format!(
                    "{h} is outside {}..={} (the items committed so far)",
                    self.head_seen, self.tail
                ),
            });
        }
        self.head_seen = h;
        Ok(self.cap - (self.tail - h))
    }

    /// Slot of the next item to write, `< capacity`.
    pub(crate) fn slot(&self) -> u64 {
        self.tail % self.cap
    }

    /// Publishes the next `n` items. The caller has written them, and `n` ≤ the last
    /// [`room`](Self::room).
    pub(crate) fn commit(&mut self, n: u64, tail: &AtomicU64) {
        debug_assert!(n <= self.cap - (self.tail - self.head_seen));
        self.tail += n;
        // Release: the slot bytes written before this store are visible to a consumer that
        // loads this value of `tail` with Acquire.
        tail.store(self.tail, Ordering::Release);
    }

    /// Items ever committed.
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
        })
    }

    /// Items available, at least `want` if there are. Re-reads `tail` only if the cached view
    /// shows fewer than `want`.
    pub(crate) fn available(&mut self, tail: &AtomicU64, want: u64) -> Result<u64, RingError> {
        let avail = self.tail_seen - self.head;
        if avail >= want {
            return Ok(avail);
        }
        // Acquire: pairs with the producer's Release store of `tail` after it wrote those
        // slots; their bytes are visible from now on.
        let t = tail.load(Ordering::Acquire);
        if t < self.tail_seen || t - self.head > self.cap || t > u64::MAX / 2 {
            return Err(RingError {
                field: "tail",
                detail: format!(
                    "{t} is outside {}..={} (consumed so far + capacity)",
                    self.tail_seen,
                    self.head.saturating_add(self.cap)
                ),
            });
        }
        self.tail_seen = t;
        Ok(t - self.head)
    }

    /// Slot of the next item to read, `< capacity`.
    pub(crate) fn slot(&self) -> u64 {
        self.head % self.cap
    }

    /// Releases the next `n` items to the producer. The caller has read them, and `n` ≤ the
    /// last [`available`](Self::available).
    pub(crate) fn release(&mut self, n: u64, head: &AtomicU64) {
        debug_assert!(n <= self.tail_seen - self.head);
        self.head += n;
        // Release: our reads of the slots happen before the producer, loading this value with
        // Acquire, overwrites them.
        head.store(self.head, Ordering::Release);
    }

    /// Items ever consumed.
    pub(crate) fn position(&self) -> u64 {
        self.head
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_wrap_and_cache() {
        let (tail, head) = (AtomicU64::new(0), AtomicU64::new(0));
        let mut p = Producer::new(0, 0, 4).unwrap();
        let mut c = Consumer::new(0, 0, 4).unwrap();
        assert_eq!(p.room(&head, 1).unwrap(), 4);
        p.commit(3, &tail);
        assert_eq!(c.available(&tail, 1).unwrap(), 3);
        assert_eq!(p.room(&head, 2).unwrap(), 1, "reader has not released yet");
        c.release(2, &head);
        assert_eq!(p.room(&head, 2).unwrap(), 3);
        assert_eq!(p.slot(), 3);
        p.commit(3, &tail);
        assert_eq!(p.slot(), 2, "6 % 4");
        assert_eq!(c.available(&tail, 4).unwrap(), 4);
        assert_eq!(c.slot(), 2);
    }

    #[test]
    fn hostile_indices_are_refused() {
        let (tail, head) = (AtomicU64::new(0), AtomicU64::new(0));
        assert!(Producer::new(10, 0, 4).is_err());
        assert!(Consumer::new(0, 1, 4).is_err());
        let mut p = Producer::new(0, 0, 4).unwrap();
        p.commit(4, &tail);
        head.store(5, Ordering::Relaxed); // consumed more than was written
        assert_eq!(p.room(&head, 1).unwrap_err().field, "head");
        let mut c = Consumer::new(0, 0, 4).unwrap();
        tail.store(9, Ordering::Relaxed); // more than a capacity ahead
        assert_eq!(c.available(&tail, 5).unwrap_err().field, "tail");
        tail.store(u64::MAX, Ordering::Relaxed);
        assert!(c.available(&tail, 5).is_err());
    }
}
