//! In-process benchmarks (divan): the costs of one end's operations with the peer in the
//! same process, so that they can be measured without two processes' noise.
//!
//! ```text
//! cargo bench --bench inproc
//! ```
//!
//! - `put_get_same_thread`: put then get of a batch on one thread (no waiting, no cache-line
//!   transfer): the fixed cost of the two calls plus two copies.
//! - `reserve_peek_same_thread`: the same through the zero-copy API.
//! - `memcpy`: the copy alone, the floor of the two above.
//! - `two_threads_stream`: a producer thread and this thread streaming 1 M u64 in batches,
//!   the in-process throughput (compare `rtrb` in `shmchan-bench suite`).

use std::sync::atomic::{AtomicU64, Ordering};

use divan::{black_box, Bencher};
use shmchan::{ChannelIo, Options};

fn main() {
    divan::main();
}

fn channel(tag: &str) -> ChannelIo<u64> {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "divan-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 16)).expect("create")
}

const BATCHES: [usize; 4] = [1, 64, 4096, 8192];

#[divan::bench(args = BATCHES)]
fn put_get_same_thread(bencher: Bencher, batch: usize) {
    let chan = channel("pg");
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    let src: Vec<u64> = (0..batch as u64).collect();
    let mut dst = vec![0u64; batch];
    bencher
        .counter(divan::counter::ItemsCount::new(batch))
        .bench_local(|| {
            w.blocking_put(black_box(&src)).unwrap();
            r.blocking_get(black_box(&mut dst)).unwrap();
        });
}

#[divan::bench(args = BATCHES)]
fn reserve_peek_same_thread(bencher: Bencher, batch: usize) {
    let chan = channel("rp");
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    bencher
        .counter(divan::counter::ItemsCount::new(batch))
        .bench_local(|| {
            let mut s = w.blocking_reserve(batch).unwrap();
            for (i, x) in s.iter_mut().enumerate() {
                *x = i as u64;
            }
            s.commit_all();
            let v = r.blocking_peek(batch).unwrap();
            black_box(v.iter().fold(0u64, |a, b| a ^ b));
            v.consume_all();
        });
}

#[divan::bench(args = BATCHES)]
fn memcpy(bencher: Bencher, batch: usize) {
    let src: Vec<u64> = (0..batch as u64).collect();
    let mut dst = vec![0u64; batch];
    bencher
        .counter(divan::counter::ItemsCount::new(batch))
        .bench_local(|| dst.copy_from_slice(black_box(&src)));
}

#[divan::bench(args = [1, 64, 4096])]
fn two_threads_stream(bencher: Bencher, batch: usize) {
    const ITEMS: u64 = 1 << 20;
    bencher
        .counter(divan::counter::ItemsCount::new(ITEMS))
        .bench_local(|| {
            let chan = channel("tt");
            let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
            let producer = std::thread::spawn(move || {
                let buf: Vec<u64> = vec![7; batch];
                let mut sent = 0;
                while sent < ITEMS {
                    w.blocking_put(&buf).unwrap();
                    sent += batch as u64;
                }
            });
            let mut buf = vec![0u64; batch];
            let mut got = 0;
            while got < ITEMS {
                r.blocking_get(&mut buf).unwrap();
                got += batch as u64;
            }
            producer.join().unwrap();
        });
}
