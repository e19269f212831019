//! Model checking of the protocol with loom: the index protocol (`src/ring.rs`) and the
//! eventcount (`src/eventcount.rs`, with the wait skeleton the library's waits run) are
//! compiled here, unchanged, against loom's atomics
//! (through the `sync` module below), and every interleaving up to a preemption bound is
//! explored. The doorbell FIFO is modelled by a loom mutex + condvar with the same semantics
//! (a ring is remembered until drained), so a lost wakeup shows up as a deadlock, which loom
//! reports as a failure.
//!
//! `broken_notifier_without_fence_loses_a_wakeup` runs the same model with the notifier's
//! fence left out and must fail: proof that the model can see the bug the fence prevents.

#![allow(dead_code)]

mod sync {
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
    // loom has no compiler fence; the real one has no effect on the model, which is the
    // point: the asymmetric notifier is modelled without the membarrier that makes it sound.
    pub(crate) use std::sync::atomic::compiler_fence;
}

#[path = "../src/eventcount.rs"]
mod eventcount;
#[path = "../src/ring.rs"]
mod ring;

use loom::cell::UnsafeCell;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use std::future::Future;

use sync::{AtomicU32, AtomicU64, Ordering};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// The doorbell: a FIFO byte modelled as a flag that stays set until drained.
struct Bell {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Bell {
    fn new() -> Bell {
        Bell {
            rung: Mutex::new(false),
            cv: Condvar::new(),
        }
    }
    fn ring(&self) {
        *self.rung.lock().unwrap() = true;
        self.cv.notify_one();
    }
    /// Sleeps until rung, then drains.
    fn sleep(&self) {
        let mut g = self.rung.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
        *g = false;
    }
}

/// What one direction of a channel shares: the index, the waiting word and the doorbell.
struct Side {
    index: AtomicU64,
    closed: AtomicU32,
    waiting: AtomicU32,
    bell: Bell,
}

impl Side {
    fn new() -> Side {
        Side {
            index: AtomicU64::new(0),
            closed: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            bell: Bell::new(),
        }
    }
}

/// The modelled doorbell as the wait skeleton's sleeper: a fence channel (no barrier), and
/// nothing but a ring ends a sleep.
struct ModelSleeper<'a>(&'a Bell);

impl eventcount::Sleeper for ModelSleeper<'_> {
    type End = ();
    type Error = ();
    fn barrier(&mut self) -> Result<(), ()> {
        Ok(())
    }
    async fn sleep_once(&mut self) -> Result<Option<()>, ()> {
        self.0.sleep();
        Ok(None)
    }
}

/// A wait as `Waiter::wait` makes it after its spin phase: the library's own skeleton
/// (`eventcount::wait`: announce, barrier, re-check, sleep), run on the modelled doorbell.
fn wait_until(side: &Side, mut ready: impl FnMut() -> bool) {
    if ready() {
        return;
    }
    let mut sleeper = ModelSleeper(&side.bell);
    let wait = std::pin::pin!(eventcount::wait(&side.waiting, &mut sleeper, || {
        ready().then_some(())
    }));
    // The model's sleeps block (on a loom condvar) inside `poll`, so one poll completes the
    // wait, as `notify::run_blocking` does for the blocking twins.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let waited = wait.poll(&mut cx);
    assert!(matches!(
        waited,
        std::task::Poll::Ready(Ok(eventcount::Waited::Ready(())))
    ));
}

/// The notifier: publish (Release), then ring if a waiter announced itself.
fn publish(side: &Side, value: u64) {
    side.index.store(value, Ordering::Release);
    if eventcount::must_ring(&side.waiting, false) {
        side.bell.ring();
    }
}

#[test]
fn no_lost_wakeup_for_data() {
    model(|| {
        let side = Arc::new(Side::new());
        let s = Arc::clone(&side);
        let writer = thread::spawn(move || {
            publish(&s, 1);
            publish(&s, 2);
        });
        // The reader waits for each item in turn; a lost wakeup deadlocks.
        wait_until(&side, || side.index.load(Ordering::Acquire) >= 1);
        wait_until(&side, || side.index.load(Ordering::Acquire) >= 2);
        writer.join().unwrap();
    });
}

#[test]
fn close_wakes_a_waiter() {
    model(|| {
        let side = Arc::new(Side::new());
        let s = Arc::clone(&side);
        let closer = thread::spawn(move || {
            // Closing: set the flag (Release), then ring unconditionally (as `finish` does).
            s.closed.store(1, Ordering::Release);
            s.bell.ring();
        });
        wait_until(&side, || {
            side.index.load(Ordering::Acquire) >= 1 || side.closed.load(Ordering::Acquire) != 0
        });
        closer.join().unwrap();
    });
}

#[test]
fn close_racing_with_publish_and_wait() {
    model(|| {
        let side = Arc::new(Side::new());
        let s = Arc::clone(&side);
        let writer = thread::spawn(move || {
            publish(&s, 1);
            s.closed.store(1, Ordering::Release);
            s.bell.ring();
        });
        // Wait for a second item that never comes: must end by the close, having seen item 1.
        wait_until(&side, || {
            side.index.load(Ordering::Acquire) >= 2 || side.closed.load(Ordering::Acquire) != 0
        });
        // The close was published after item 1 (Release/Acquire): item 1 is visible.
        assert_eq!(side.index.load(Ordering::Acquire), 1);
        writer.join().unwrap();
    });
}

/// The same model with the notifier's store→load ordering missing (no fence): loom must
/// find the interleaving in which the waiter sleeps forever.
#[test]
#[should_panic(expected = "deadlock")]
fn broken_notifier_without_fence_loses_a_wakeup() {
    model(|| {
        let side = Arc::new(Side::new());
        let s = Arc::clone(&side);
        let writer = thread::spawn(move || {
            s.index.store(1, Ordering::Release);
            // The asymmetric notifier (compiler fence only), with a waiter that does not
            // call membarrier: the load of the waiting word may be ordered before the store
            // above. (The membarrier that makes the asymmetric protocol sound is beyond
            // loom; `tests/process/` stresses it across processes.)
            if eventcount::must_ring(&s.waiting, true) {
                s.bell.ring();
            }
        });
        wait_until(&side, || side.index.load(Ordering::Acquire) >= 1);
        writer.join().unwrap();
    });
}

/// The same model with the waiter's store→load ordering missing (no fence after announcing):
/// loom must find the lost wakeup too. Together with the control above, this shows both
/// fences are needed, and that the model checks each.
#[test]
#[should_panic(expected = "deadlock")]
fn broken_waiter_without_fence_loses_a_wakeup() {
    model(|| {
        let side = Arc::new(Side::new());
        let s = Arc::clone(&side);
        let writer = thread::spawn(move || publish(&s, 1));
        loop {
            if side.index.load(Ordering::Acquire) >= 1 {
                break;
            }
            side.waiting.store(1, Ordering::Relaxed); // announce, without the fence
            if side.index.load(Ordering::Acquire) >= 1 {
                eventcount::retract(&side.waiting);
                break;
            }
            side.bell.sleep();
        }
        writer.join().unwrap();
    });
}

/// A waiter that already reported its peer's death waits for a new holder; the new holder
/// claims (bumping the claim count with Release) and then rings unconditionally, which must
/// wake it whatever the interleaving.
#[test]
fn a_claim_ring_wakes_a_waiter_waiting_for_a_new_peer() {
    model(|| {
        let side = Arc::new(Side::new());
        let claims = Arc::new(AtomicU64::new(1)); // the dead holder's claim
        let (s, c) = (Arc::clone(&side), Arc::clone(&claims));
        let claimant = thread::spawn(move || {
            c.store(2, Ordering::Release); // publish the claim
            s.bell.ring(); // then ring, as WriterFront::claim does
        });
        // The waiter: reported holder 1; wait until another holder is visible.
        wait_until(&side, || claims.load(Ordering::Acquire) != 1);
        claimant.join().unwrap();
    });
}

const CAP: u64 = 2;

/// The ring's slots, modelled so that loom checks every slot access is ordered by the
/// index protocol (a data race on a slot is a loom failure).
struct Slots([UnsafeCell<u64>; CAP as usize]);

#[test]
fn ring_hands_over_items_in_order_without_races() {
    ring_model(false);
}

/// The same through the fast paths' checks (`room_now`, `available_now`), which `put` and
/// `get` take first.
#[test]
fn ring_fast_paths_hand_over_items_in_order_without_races() {
    ring_model(true);
}

fn ring_model(fast: bool) {
    model(move || {
        let tail = Arc::new(AtomicU64::new(0));
        let head = Arc::new(AtomicU64::new(0));
        let slots = Arc::new(Slots([UnsafeCell::new(0), UnsafeCell::new(0)]));
        let (t, h, sl) = (Arc::clone(&tail), Arc::clone(&head), Arc::clone(&slots));
        let producer = thread::spawn(move || {
            let mut p = ring::Producer::new(0, 0, CAP).unwrap();
            for v in 1..=3u64 {
                while !(if fast {
                    p.room_now(&h, 1).is_some()
                } else {
                    p.room(&h, 1).unwrap() > 0
                }) {
                    thread::yield_now();
                }
                let slot = p.slot() as usize;
                // SAFETY (model): the slot is free per `room`; loom checks it.
                sl.0[slot].with_mut(|x| unsafe { *x = v * 10 });
                p.commit(1, &t);
            }
        });
        let mut c = ring::Consumer::new(0, 0, CAP).unwrap();
        for v in 1..=3u64 {
            while !(if fast {
                c.available_now(&tail, 1).is_some()
            } else {
                c.available(&tail, 1).unwrap() > 0
            }) {
                thread::yield_now();
            }
            let slot = c.slot() as usize;
            // SAFETY (model): the slot is committed per `available`; loom checks it.
            let got = slots.0[slot].with(|x| unsafe { *x });
            assert_eq!(got, v * 10);
            c.release(1, &head);
        }
        producer.join().unwrap();
    });
}
