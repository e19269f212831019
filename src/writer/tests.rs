//! The writer's unit tests: puts into a nearly full ring, cancel-safe waits, and puts and
//! gets that fit only apart.

use std::time::Duration;

use crate::{ChannelIo, ErrorKind, Options, WaitStrategy};

/// A `put` into a ring with just enough room writes at once (after at most the bounded
/// spin for a chunk of room), under both strategies, and every item arrives in order.
#[test]
fn put_fills_a_nearly_full_ring_to_the_last_slot() {
    for (k, strategy) in [WaitStrategy::default(), WaitStrategy::Sleep]
        .into_iter()
        .enumerate()
    {
        let name = format!("unit-nearly-full-{}-{k}", std::process::id());
        let opts = Options::new().capacity(512).wait_strategy(strategy);
        let chan = ChannelIo::<u64>::create(&name, opts).unwrap();
        let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
        let cap = chan.capacity() as u64;
        for i in 0..cap {
            // Each put fits (room ≥ 1), so none may wait for the reader.
            w.blocking_put(&[i]).unwrap();
        }
        assert_eq!(chan.len() as u64, cap);
        assert_eq!(w.try_put(&[cap]).unwrap(), 0, "full");
        let mut got = vec![0u64; cap as usize];
        r.blocking_get(&mut got).unwrap();
        assert!(got.iter().enumerate().all(|(i, v)| *v == i as u64));
        // A freed slot at a time: each put takes exactly the one slot there is.
        for i in cap..cap + 3 * cap {
            w.blocking_put(&[i]).unwrap();
            if chan.len() as u64 == cap {
                let mut one = [0u64];
                r.blocking_get(&mut one).unwrap();
                assert_eq!(one[0], i + 1 - cap);
            }
        }
    }
}

/// `wait_room` and `wait_items` change nothing, so dropping them is safe; a `put` loop
/// over `try_put` and `wait_room` can be stopped at any await knowing what went in.
#[tokio::test(flavor = "current_thread")]
async fn waits_for_room_and_items_change_nothing() {
    let name = format!("unit-wait-room-{}", std::process::id());
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    let waited = tokio::time::timeout(Duration::from_millis(20), r.wait_items(1)).await;
    assert!(waited.is_err(), "nothing to wait for yet");
    w.put(&[1; 500]).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(20), w.wait_room(100)).await;
    assert!(waited.is_err(), "the ring has room for 12, not 100");
    assert_eq!(w.wait_room(12).await.unwrap(), 12);
    assert_eq!(r.wait_items(500).await.unwrap(), 500);
    assert_eq!(chan.len(), 500, "nothing was put or removed");
    assert_eq!(
        w.wait_room(513).await.unwrap_err().kind(),
        ErrorKind::Oversized
    );
    assert_eq!(
        r.wait_items(513).await.unwrap_err().kind(),
        ErrorKind::Oversized
    );
    drop(w);
    let e = r.wait_items(501).await.unwrap_err();
    assert_eq!((e.kind(), e.remaining()), (ErrorKind::Closed, 500));
    ChannelIo::remove(&name).unwrap();
}

/// Puts and gets that each fit in the ring, but not together (400 + 300 > 512), go on:
/// a put streams what fits rather than wait for room for all of it, which a reader
/// waiting for 300 of the 200-odd items left could never make.
#[test]
fn puts_and_gets_that_fit_only_apart_do_not_deadlock() {
    let name = format!("unit-apart-{}", std::process::id());
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    // A deadlock times out (and fails) instead of hanging.
    w.set_timeout(Some(Duration::from_secs(20)));
    r.set_timeout(Some(Duration::from_secs(20)));
    let (puts, gets) = (400u64, 300u64);
    let rounds = 3 * gets;
    let writer = std::thread::spawn(move || {
        for i in 0..rounds {
            let batch: Vec<u64> = (i * puts..(i + 1) * puts).collect();
            w.blocking_put(&batch).unwrap();
        }
    });
    let mut next = 0u64;
    let mut got = vec![0u64; gets as usize];
    for _ in 0..rounds * puts / gets {
        r.blocking_get(&mut got).unwrap();
        for v in &got {
            assert_eq!(*v, next);
            next += 1;
        }
    }
    writer.join().unwrap();
    ChannelIo::remove(&name).unwrap();
}
