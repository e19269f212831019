//! The suite's latency cases (ping-pong of one `u64` between two processes, under each wait
//! strategy, next to the cache-line floor) and the CPU time of an idle waiter.

use std::process::Stdio;
use std::time::Duration;

use shmchan::{Barrier, ChannelIo, Options, WaitStrategy};

use super::cross::spawn_consumer;
use crate::common::{self, collect, pin, report, Res, Trips};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lat {
    CacheLine,
    Spin,
    Default,
    Sleep,
    /// Sleep, on channels with `Barrier::Fence`: what the sleeper's membarrier costs.
    SleepFence,
}

impl Lat {
    fn name(self) -> &'static str {
        match self {
            Lat::CacheLine => "cache line (2 threads, the floor)",
            Lat::Spin => "shmchan, spin",
            Lat::Default => "shmchan, default (spin 50 us, sleep)",
            Lat::Sleep => "shmchan, sleep (doorbell every time)",
            Lat::SleepFence => "shmchan, sleep, fence channels",
        }
    }

    fn strategy(self) -> WaitStrategy {
        match self {
            Lat::Spin => common::spin(),
            Lat::Sleep | Lat::SleepFence => WaitStrategy::Sleep,
            _ => WaitStrategy::default(),
        }
    }

    /// The strategy's name on the echo's command line.
    fn strategy_key(self) -> &'static str {
        match self {
            Lat::Spin => "spin",
            Lat::Sleep | Lat::SleepFence => "sleep",
            _ => "default",
        }
    }

    fn iterations(self, quick: bool) -> u64 {
        let n = match self {
            Lat::Sleep | Lat::SleepFence => 20_000,
            _ => 200_000,
        };
        if quick {
            n / 10
        } else {
            n
        }
    }
}

#[derive(serde::Serialize)]
pub(super) struct LatRow {
    case: &'static str,
    iterations: u64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
}

/// Runs and prints the latency table and the idle waiter; returns the table's rows.
pub(super) fn table(quick: bool) -> Res<Vec<LatRow>> {
    let mut lat = Vec::new();
    println!("\none-way latency, ping-pong of one u64 between two processes (ns):");
    println!("{:<36}{:>10}{:>10}{:>10}", "", "p50", "p99", "p99.9");
    for kind in [
        Lat::CacheLine,
        Lat::Spin,
        Lat::Default,
        Lat::Sleep,
        Lat::SleepFence,
    ] {
        let iters = kind.iterations(quick);
        let h = latency(kind, iters)?;
        let q = |p: f64| h.value_at_quantile(p);
        println!(
            "{:<36}{:>10}{:>10}{:>10}",
            kind.name(),
            q(0.5),
            q(0.99),
            q(0.999)
        );
        lat.push(LatRow {
            case: kind.name(),
            iterations: iters,
            p50_ns: q(0.5),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
        });
    }
    let secs = if quick { 2 } else { 10 };
    let cpu = idle_waiter_cpu(secs)?;
    println!(
        "\nidle waiter (default strategy), {secs} s: {:.3} s of CPU = {:.2}% of a core",
        cpu,
        cpu * 100.0 / secs as f64
    );
    Ok(lat)
}

/// Round trips of one u64; records half of each round trip, after a warm-up.
fn latency(kind: Lat, iters: u64) -> Res<hdrhistogram::Histogram<u64>> {
    if kind == Lat::CacheLine {
        return common::cache_line(iters);
    }
    pin(0);
    let name = format!("bench-lat-{}", std::process::id());
    let barrier = if kind == Lat::SleepFence {
        Barrier::Fence
    } else {
        Barrier::Auto
    };
    let opts = Options::new()
        .capacity(512)
        .wait_strategy(kind.strategy())
        .barrier(barrier);
    let mut trips = Trips::new(iters)?;
    let args = [
        "echo".to_string(),
        kind.strategy_key().to_string(),
        trips.total().to_string(),
        name.clone(),
    ];
    common::shm_ping(&name, opts, &mut trips, || {
        spawn_consumer(&args, Stdio::null())
    })?;
    Ok(trips.hist)
}

/// The echo side of the latency cases, and the idle waiter.
pub(super) fn echo(a: &[String]) -> Res<()> {
    pin(1);
    let bad = || "--consume echo|idle STRATEGY ITERS NAME";
    let strategy = match a[1].as_str() {
        "spin" => Lat::Spin.strategy(),
        "sleep" => Lat::Sleep.strategy(),
        _ => WaitStrategy::default(),
    };
    let iters: u64 = a[2].parse().map_err(|_| bad())?;
    let name = a.get(3).ok_or_else(bad)?;
    let opts = Options::new().wait_strategy(strategy);
    if a[0] != "idle" {
        return common::shm_echo(name, opts, iters);
    }
    // Wait for one item that comes after ITERS seconds; report our CPU time.
    let chan = ChannelIo::<u64>::open_with(name, opts)?;
    let mut r = chan.reader()?;
    let mut x = [0u64];
    r.blocking_get(&mut x)?;
    // SAFETY: getrusage fills the struct we pass; all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let cpu = ru.ru_utime.tv_sec as f64
        + ru.ru_utime.tv_usec as f64 / 1e6
        + ru.ru_stime.tv_sec as f64
        + ru.ru_stime.tv_usec as f64 / 1e6;
    report(cpu, 0);
    Ok(())
}

/// CPU time a reader burns while it waits `secs` seconds for an item (default strategy).
fn idle_waiter_cpu(secs: u64) -> Res<f64> {
    let name = format!("bench-idle-{}", std::process::id());
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    let mut w = chan.writer()?;
    let child = spawn_consumer(
        &[
            "idle".to_string(),
            "default".to_string(),
            secs.to_string(),
            name,
        ],
        Stdio::null(),
    )?;
    // The test side of a benchmark may sleep: this is the idle period being measured.
    std::thread::sleep(Duration::from_secs(secs));
    w.blocking_put(&[1])?;
    w.close();
    Ok(collect(child)?.0)
}
