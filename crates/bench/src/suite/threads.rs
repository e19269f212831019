//! The suite's in-process baselines: memcpy on one thread, and the raw ring, rtrb and tokio's
//! mpsc between two threads (pinned to CPUs 0 and 1, or tokio's two workers).

use std::time::Instant;

use crate::common::{check, pin, unpin, Res};

/// The ceiling: one thread copying batches from one buffer to another.
pub(super) fn memcpy(batch: usize, items: u64) -> f64 {
    pin(0);
    let src: Vec<u64> = (0..batch as u64).collect();
    let mut dst = vec![0u64; batch];
    let rounds = items / batch as u64;
    let start = Instant::now();
    for _ in 0..rounds {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    start.elapsed().as_secs_f64()
}

/// Joins the two threads of a case; returns the consumer's seconds.
fn join(
    what: &str,
    producer: std::thread::JoinHandle<()>,
    consumer: std::thread::JoinHandle<Result<f64, String>>,
) -> Res<f64> {
    producer
        .join()
        .map_err(|_| format!("{what} producer panicked"))?;
    Ok(consumer
        .join()
        .map_err(|_| format!("{what} consumer panicked"))??)
}

/// The cross-core handoff of the same work with nothing else: a ring with only two indices,
/// between two pinned threads (no wakeups, no validation of the peer, no process boundary).
/// Where shmchan is slower, the gap is roughly the library's own cost; where it is faster,
/// its vector-wide `memcpy` beat this ring's word-by-word atomics.
pub(super) fn raw_ring_case(batch: usize, items: u64) -> Res<f64> {
    use std::sync::atomic::{AtomicU64, Ordering::*};
    use std::sync::Arc;
    const CAP: u64 = 1 << 17; // 1 MiB of u64, as the shmchan cases
    #[repr(align(128))]
    struct Index(AtomicU64);
    struct Ring {
        slots: Vec<AtomicU64>,
        head: Index,
        tail: Index,
    }
    // Every batch size used divides CAP, so a batch never wraps.
    if !CAP.is_multiple_of(batch as u64) {
        return Err("raw ring: the batch must divide 2^17".into());
    }
    let ring = Arc::new(Ring {
        slots: (0..CAP).map(|_| AtomicU64::new(0)).collect(),
        head: Index(AtomicU64::new(0)),
        tail: Index(AtomicU64::new(0)),
    });
    let r = Arc::clone(&ring);
    let producer = std::thread::spawn(move || {
        pin(0);
        let (mut next, mut head) = (0u64, 0u64);
        while next < items {
            while next + batch as u64 - head > CAP {
                std::hint::spin_loop();
                // Acquire: pairs with the consumer's Release of `head` after its reads.
                head = r.head.0.load(Acquire);
            }
            let base = (next % CAP) as usize;
            for (i, slot) in r.slots[base..base + batch].iter().enumerate() {
                // Relaxed: published by the Release store of `tail` below.
                slot.store(next + i as u64, Relaxed);
            }
            next += batch as u64;
            // Release: the slot stores above are visible to a consumer that Acquires this.
            r.tail.0.store(next, Release);
        }
    });
    let consumer = std::thread::spawn(move || {
        pin(1);
        let (mut next, mut tail) = (0u64, 0u64);
        let mut start = None;
        while next < items {
            while tail < next + batch as u64 {
                std::hint::spin_loop();
                // Acquire: pairs with the producer's Release of `tail`.
                tail = ring.tail.0.load(Acquire);
            }
            start.get_or_insert_with(Instant::now);
            let base = (next % CAP) as usize;
            for (i, slot) in ring.slots[base..base + batch].iter().enumerate() {
                // Relaxed: ordered after the Acquire load of `tail` that covered it.
                let v = slot.load(Relaxed);
                if v != next + i as u64 {
                    return Err(format!("item {} is {v}", next + i as u64));
                }
            }
            next += batch as u64;
            // Release: our reads of the slots happen before the producer reuses them.
            ring.head.0.store(next, Release);
        }
        Ok(start.map_or(0.0, |s: Instant| s.elapsed().as_secs_f64()))
    });
    join("raw ring", producer, consumer)
}

/// rtrb between two pinned threads, chunks of `batch`; both sides spin when blocked (rtrb has
/// no blocking API), which is its best case.
pub(super) fn rtrb_case(batch: usize, items: u64) -> Res<f64> {
    let (mut p, mut c) = rtrb::RingBuffer::<u64>::new(1 << 17);
    let producer = std::thread::spawn(move || {
        pin(0);
        let mut next = 0u64;
        while next < items {
            match p.write_chunk_uninit(batch) {
                Ok(chunk) => {
                    chunk.fill_from_iter(next..next + batch as u64);
                    next += batch as u64;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
    });
    let consumer = std::thread::spawn(move || {
        pin(1);
        let mut next = 0u64;
        let mut start = None;
        while next < items {
            match c.read_chunk(batch) {
                Ok(chunk) => {
                    start.get_or_insert_with(Instant::now);
                    let (a, b) = chunk.as_slices();
                    check(a, next)?;
                    check(b, next + a.len() as u64)?;
                    chunk.commit_all();
                    next += batch as u64;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
    });
    join("rtrb", producer, consumer)
}

/// tokio's bounded mpsc carrying `Vec<u64>` batches between tasks on two worker threads.
pub(super) fn tokio_case(batch: usize, items: u64) -> Res<f64> {
    // The workers inherit our affinity: give them both CPUs (an earlier case pinned us).
    unpin();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    rt.block_on(async move {
        // As many batches in flight as the shmchan ring holds items, at most 1024.
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Vec<u64>>(((1 << 17) / batch).clamp(1, 1024));
        let producer = tokio::spawn(async move {
            let mut next = 0u64;
            while next < items {
                let v: Vec<u64> = (next..next + batch as u64).collect();
                if tx.send(v).await.is_err() {
                    return;
                }
                next += batch as u64;
            }
        });
        let mut next = 0u64;
        let mut start = None;
        while let Some(v) = rx.recv().await {
            start.get_or_insert_with(Instant::now);
            check(&v, next)?;
            next += v.len() as u64;
        }
        let _ = producer.await;
        if next != items {
            return Err(format!("received {next} of {items}").into());
        }
        Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
    })
}
