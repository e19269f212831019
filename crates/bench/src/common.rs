//! What every comparison shares: CPU pinning, the consumer process (how it is started and how
//! it reports), the consumer's check of every item, latency histograms, and the ping-pong
//! cases (the cache-line floor, and shmchan's ping-pong with its echo).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shmchan::{ChannelIo, Options};

/// The error of every case: its message is what `main` prints.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs this thread (and the threads it starts from now on) on `cpu` only.
pub fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu % rustix::thread::CpuSet::MAX_CPU.max(1));
    // Best effort: on a single CPU, or where affinity is refused, run unpinned.
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// Lets this thread (and the threads it starts) run on every CPU again.
pub fn unpin() {
    let mut set = rustix::thread::CpuSet::new();
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    for cpu in 0..n.min(rustix::thread::CpuSet::MAX_CPU) {
        set.set(cpu);
    }
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// A current-thread tokio runtime, for the async cases (one per process and case).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The median of `runs` by `key` (the upper one of an even count).
pub fn median<T: Copy>(mut runs: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    runs.sort_by(|x, y| key(x).total_cmp(&key(y)));
    runs[runs.len() / 2]
}

/// What the benchmarks move: item number `seq` has a value derived from `seq`, and the
/// consumer checks every word of every item.
pub trait Item: bytemuck::Pod + std::fmt::Debug + Send + 'static {
    /// Name on the consumer's command line.
    const KEY: &'static str;
    fn make(seq: u64) -> Self;
    fn is(&self, seq: u64) -> bool;
}

impl Item for u64 {
    const KEY: &'static str = "u64";
    fn make(seq: u64) -> u64 {
        seq
    }
    fn is(&self, seq: u64) -> bool {
        *self == seq
    }
}

/// The consumer's check: `vals` are items number `first`, `first + 1`, …
pub fn check<T: Item>(vals: &[T], first: u64) -> Result<(), String> {
    for (i, v) in vals.iter().enumerate() {
        if !v.is(first + i as u64) {
            return Err(format!("item {} is {v:?}", first + i as u64));
        }
    }
    Ok(())
}

/// Starts the consumer of a cross-process case: this binary again, as
/// `SUBCOMMAND --consume ARGS…`, with its stdout piped back for its report.
pub fn spawn_consumer(subcommand: &str, args: &[String], stdin: Stdio) -> Res<Child> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg(subcommand).arg("--consume").args(args);
    cmd.stdin(stdin).stdout(Stdio::piped());
    cmd.spawn()
        .map_err(|e| format!("starting the consumer: {e}").into())
}

/// Prints a consumer's report, the line [`collect`] reads: its seconds from its first item to
/// its last (or its CPU seconds, or 0), and the system calls its waiting made (or 0).
pub fn report(secs: f64, syscalls: u64) {
    println!("{secs} {syscalls}");
}

/// Waits for the consumer and reads its [`report`].
pub fn collect(child: Child) -> Res<(f64, u64)> {
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("the consumer failed: {text}").into());
    }
    // The report is the last line (a suite consumer says "ready" first).
    let mut it = text.lines().last().unwrap_or("").split_whitespace();
    let secs = it.next().and_then(|v| v.parse().ok());
    let calls = it.next().and_then(|v| v.parse().ok());
    secs.zip(calls)
        .ok_or_else(|| format!("the consumer said {text:?}").into())
}

/// A latency histogram in nanoseconds, 1 ns to 10 s, three significant digits.
pub fn histogram() -> Res<hdrhistogram::Histogram<u64>> {
    Ok(hdrhistogram::Histogram::new_with_bounds(
        1,
        10_000_000_000,
        3,
    )?)
}

/// Ping-pong round trips: `total()` of them, numbered from 1, of which the first tenth warm
/// up and the rest record half their time (the one-way latency).
pub struct Trips {
    pub hist: hdrhistogram::Histogram<u64>,
    warm: u64,
    iters: u64,
}

impl Trips {
    pub fn new(iters: u64) -> Res<Trips> {
        Ok(Trips {
            hist: histogram()?,
            warm: iters / 10,
            iters,
        })
    }

    /// Round trips in all, the warm-up included.
    pub fn total(&self) -> u64 {
        self.iters + self.warm
    }

    /// Round trip `i` (from 1) started at `t0` and has just ended.
    pub fn record(&mut self, i: u64, t0: Instant) {
        if i > self.warm {
            let _ = self
                .hist
                .record((t0.elapsed().as_nanos() as u64 / 2).max(1));
        }
    }
}

/// The floor: a cache line bounced between two pinned threads (this one on CPU 0, the echo on
/// CPU 1), `iters` round trips after the warm-up.
pub fn cache_line(iters: u64) -> Res<hdrhistogram::Histogram<u64>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    #[repr(align(128))]
    struct Line(AtomicU64);
    let mut trips = Trips::new(iters)?;
    let total = trips.total();
    let (ping, pong) = (
        Arc::new(Line(AtomicU64::new(0))),
        Arc::new(Line(AtomicU64::new(0))),
    );
    let (p2, q2) = (Arc::clone(&ping), Arc::clone(&pong));
    let echo = std::thread::spawn(move || {
        pin(1);
        for i in 1..=total {
            // Acquire/Release: the pair orders nothing else; this is the hardware floor.
            while p2.0.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            q2.0.store(i, Ordering::Release);
        }
    });
    pin(0);
    for i in 1..=total {
        let t0 = Instant::now();
        // Release/Acquire, as on the echo's side: nothing else to order.
        ping.0.store(i, Ordering::Release);
        while pong.0.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        trips.record(i, t0);
    }
    echo.join().map_err(|_| "echo thread panicked")?;
    Ok(trips.hist)
}

/// The wait strategy of the spinning latency cases: spin (up to a second) before sleeping.
pub fn spin() -> shmchan::WaitStrategy {
    shmchan::WaitStrategy::SpinThenSleep(Duration::from_secs(1))
}

/// The timing side of a shmchan ping-pong: creates `NAME-ping` and `NAME-pong` with `opts`,
/// starts the echo process with `start_echo` (it runs [`shm_echo`]), then times
/// `trips.total()` round trips of one `u64`.
pub fn shm_ping(
    name: &str,
    opts: Options,
    trips: &mut Trips,
    start_echo: impl FnOnce() -> Res<Child>,
) -> Res<()> {
    let ping = ChannelIo::<u64>::create(&format!("{name}-ping"), opts.clone())?;
    let pong = ChannelIo::<u64>::create(&format!("{name}-pong"), opts)?;
    let (mut w, mut r) = (ping.writer()?, pong.reader()?);
    let child = start_echo()?;
    let mut x = [0u64];
    for i in 1..=trips.total() {
        let t0 = Instant::now();
        w.blocking_put(&[i])?;
        r.blocking_get(&mut x)?;
        if x[0] != i {
            return Err(format!("echo {i} came back as {}", x[0]).into());
        }
        trips.record(i, t0);
    }
    w.close();
    collect(child)?;
    Ok(())
}

/// The echo process of [`shm_ping`]: sends each of `total` items on `NAME-ping` back on
/// `NAME-pong`, then reports.
pub fn shm_echo(name: &str, opts: Options, total: u64) -> Res<()> {
    let ping = ChannelIo::<u64>::open_with(&format!("{name}-ping"), opts.clone())?;
    let pong = ChannelIo::<u64>::open_with(&format!("{name}-pong"), opts)?;
    let (mut r, mut w) = (ping.reader()?, pong.writer()?);
    let mut x = [0u64];
    for _ in 0..total {
        r.blocking_get(&mut x)?;
        w.blocking_put(&x)?;
    }
    report(0.0, 0);
    Ok(())
}
