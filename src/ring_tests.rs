//! Unit tests of `ring` (kept outside `ring.rs`, which `tests/loom.rs` compiles on its own).

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::ring::{Consumer, Producer};

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
    fn slots_follow_the_indices_modulo_capacity() {
        // The slot is kept incrementally (no division): it must equal index % capacity
        // after any sequence of commits and releases, from any starting index.
        for (cap, start) in [(1u64, 0u64), (3, 7), (512, 1 << 40), (1000, 999)] {
            let (tail, head) = (AtomicU64::new(start), AtomicU64::new(start));
            let mut p = Producer::new(start, start, cap).unwrap();
            let mut c = Consumer::new(start, start, cap).unwrap();
            let mut x = 0x2545_f491_4f6c_dd1du64;
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let room = p.room(&head, 1).unwrap();
                let n = x % (room + 1);
                p.commit(n, &tail);
                assert_eq!(p.slot(), p.position() % cap);
                let avail = c.available(&tail, 1).unwrap();
                let k = (x >> 32) % (avail + 1);
                c.release(k, &head);
                assert_eq!(c.slot(), c.position() % cap);
            }
        }
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

    #[test]
    fn the_fast_paths_refuse_what_the_slow_paths_report() {
        let (tail, head) = (AtomicU64::new(0), AtomicU64::new(0));
        let mut p = Producer::new(0, 0, 4).unwrap();
        assert_eq!(p.room_now(&head, 4), Some(4));
        p.commit(4, &tail);
        assert_eq!(p.room_now(&head, 1), None); // full
        for bad in [5, u64::MAX] {
            head.store(bad, Ordering::Relaxed); // past the tail: refused, and not recorded
            assert_eq!(p.room_now(&head, 1), None);
            assert_eq!(p.room(&head, 1).unwrap_err().field, "head");
        }
        head.store(3, Ordering::Relaxed);
        assert_eq!(p.room_now(&head, 3), Some(3));
        head.store(2, Ordering::Relaxed); // backwards
        p.commit(3, &tail);
        assert_eq!(p.room_now(&head, 1), None);
        assert!(p.room(&head, 1).is_err());

        let mut c = Consumer::new(0, 0, 4).unwrap();
        tail.store(2, Ordering::Relaxed);
        assert_eq!(c.available_now(&tail, 2), Some(2));
        c.release(2, &head);
        for bad in [1, 7, u64::MAX / 2 + 1, u64::MAX] {
            // Backwards, more than a capacity ahead, past the bound: refused, not recorded.
            tail.store(bad, Ordering::Relaxed);
            assert_eq!(c.available_now(&tail, 1), None, "tail {bad}");
            assert!(c.available(&tail, 1).is_err(), "tail {bad}");
        }
        tail.store(6, Ordering::Relaxed); // exactly a capacity ahead of head 2
        assert_eq!(c.available_now(&tail, 4), Some(4));
        assert_eq!(c.available_now(&tail, 5), None); // more than there is
    }
}
