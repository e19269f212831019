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
