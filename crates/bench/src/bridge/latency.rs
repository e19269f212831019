//! The latency cases of `shmchan-bench bridge`: one item every 200 µs, stamped with the
//! monotonic clock at the put, bridged and through raw zenoh, p50 and p99.

use std::time::Duration;

use shmchan::{ChannelIo, Options};
use shmchan_testkit::unique;

use super::{first_u64, now_ns, open_far, raw_pair, Bin, Bridges, Zconf};
use crate::common::Res;

/// Measures and prints the latency of one item every 200 µs, bridged and raw.
pub(super) fn latency(bin: &Bin<'_>, scale: u64) -> Res<()> {
    let n = 20_000 / scale as usize;
    let gap = Duration::from_micros(200);
    let (b50, b99) = bridged_latency(bin, n, gap)?;
    let (r50, r99) = raw_latency(n, gap)?;
    println!("latency, one item per 200 µs ({n} items, the first tenth skipped):");
    println!("  bridged                         p50 {b50:8.1} µs  p99 {b99:8.1} µs");
    println!("  raw zenoh (the bridge's config) p50 {r50:8.1} µs  p99 {r99:8.1} µs");
    println!(
        "  added by the bridge: p50 {:.1} µs, p99 {:.1} µs",
        b50 - r50,
        b99 - r99
    );
    Ok(())
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

/// One-way latency of `n` items put every `gap`, bridged: (p50, p99) in µs.
fn bridged_latency(bin: &Bin, n: usize, gap: Duration) -> Res<(f64, f64)> {
    let (local, far) = (unique("ll"), unique("lf"));
    let chan = ChannelIo::<u64>::create(&local, Options::new().capacity(1 << 12))?;
    let mut w = chan.writer()?;
    let b = Bridges::start(bin, &local, &far)?;
    let writer = std::thread::spawn(move || -> Result<(), shmchan::Error> {
        for _ in 0..n {
            w.blocking_put(&[now_ns()])?;
            // Pacing: one item per gap (not a wait for anything).
            std::thread::sleep(gap);
        }
        w.close();
        Ok(())
    });
    let mut r = open_far(&b, &far)?;
    let mut lat = Vec::with_capacity(n);
    let mut one = [0u64];
    while r.blocking_get(&mut one).is_ok() {
        lat.push(now_ns().saturating_sub(one[0]));
    }
    writer.join().map_err(|_| "writer panicked")??;
    drop(b);
    let _ = ChannelIo::remove(&local);
    let _ = ChannelIo::remove(&far);
    let skip = lat.len() / 10; // the first tenth: connections warming up
    let mut v = lat[skip..].to_vec();
    Ok((
        percentile(&mut v, 0.5) as f64 / 1e3,
        percentile(&mut v, 0.99) as f64 / 1e3,
    ))
}

/// The same through raw zenoh, one sample per item.
fn raw_latency(n: usize, gap: Duration) -> Res<(f64, f64)> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (_sessions, sub, publisher) = raw_pair("rawlat", Zconf::Bridge).await?;
        let producer = tokio::spawn(async move {
            for _ in 0..n {
                let _ = publisher.put(now_ns().to_le_bytes().to_vec()).await;
                tokio::time::sleep(gap).await; // pacing
            }
        });
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let s = sub.recv_async().await.map_err(|e| e.to_string())?;
            let t = first_u64(s.payload()).ok_or("raw zenoh: a sample without an item")?;
            lat.push(now_ns().saturating_sub(t));
        }
        let _ = producer.await;
        let skip = lat.len() / 10;
        let mut v = lat[skip..].to_vec();
        Ok((
            percentile(&mut v, 0.5) as f64 / 1e3,
            percentile(&mut v, 0.99) as f64 / 1e3,
        ))
    })
}
