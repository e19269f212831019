//! The cost of a `put` + `get` pair on one thread, in a tight loop (no waiting, no
//! cross-core traffic): `cargo run --release -p shmchan-bench --example put_get_loop --
//! [BATCH]` (default 64; `ITERS` in the environment sets the iterations, default 5 000 000).
//! Instruction counts: `valgrind --tool=callgrind target/release/examples/put_get_loop BATCH`
//! at two values of `ITERS`; keep the code below as it is, so counts stay comparable.

use shmchan::{ChannelIo, Options};
fn main() {
    let name = format!("put-get-loop-{}", std::process::id());
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 16)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    let k: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let src: Vec<u64> = (0..k as u64).collect();
    let mut dst = vec![0u64; k];
    let t = std::time::Instant::now();
    let n: u64 = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    for _ in 0..n {
        w.blocking_put(std::hint::black_box(&src)).unwrap();
        r.blocking_get(std::hint::black_box(&mut dst)).unwrap();
    }
    println!(
        "{:.1} ns per put+get of {k}",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
