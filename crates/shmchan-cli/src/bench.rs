//! `shmchan bench`: throughput of shmchan next to the alternatives, in one run.
//!
//! Cross-process cases start the consumer as a second process (this binary again, with the
//! hidden `--consume` argument), producer pinned to CPU 0 and consumer to CPU 1. Every case
//! moves `u64` items numbered 0, 1, 2, … and the consumer checks every one. The in-process
//! baselines (memcpy, the raw ring, rtrb, tokio's mpsc) run as two pinned threads (memcpy: one).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use shmchan::{Barrier, ChannelIo, GetError, Options, WaitStrategy};

use crate::Fail;

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// About a tenth of the items per case (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Only the transports whose names contain this text.
    #[arg(long)]
    only: Option<String>,
    /// Runs per throughput case; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Ring size of the shmchan cases, in bytes (rounded up to whole pages).
    #[arg(long, default_value_t = 1 << 20)]
    ring_bytes: usize,
    /// Internal: run as the consumer of a cross-process case ("TRANSPORT BATCH ITEMS TYPE [NAME]").
    #[arg(long, hide = true, num_args = 4..=5)]
    consume: Option<Vec<String>>,
}

/// `--ring-bytes`, for the shmchan throughput cases.
static RING_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1 << 20);

/// Batch sizes in items (8 bytes each); 8192 items is a 64 KiB message.
const BATCHES: [usize; 4] = [1, 64, 4096, 8192];

/// Batch sizes for the 64-byte records; 1024 records is a 64 KiB message.
const RECORD_BATCHES: [usize; 3] = [1, 64, 1024];

/// What the benchmarks move: item number `seq` has a value derived from `seq`, and the
/// consumer checks every word of every item.
trait Item: bytemuck::Pod + Send + 'static {
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

/// A 64-byte record (a cache line), as an application would send: eight words, each derived
/// from the sequence number.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
struct Rec64([u64; 8]);

// SAFETY: `Rec64` is `repr(transparent)` over `[u64; 8]`: no padding, and all-zero is a
// valid value.
unsafe impl bytemuck::Zeroable for Rec64 {}
// SAFETY: as above; any bit pattern is a valid `[u64; 8]`, it has no pointers, and it is
// `Copy + 'static`.
unsafe impl bytemuck::Pod for Rec64 {}

impl Item for Rec64 {
    const KEY: &'static str = "rec64";
    fn make(seq: u64) -> Rec64 {
        let mut r = [0u64; 8];
        for (k, w) in r.iter_mut().enumerate() {
            *w = seq.wrapping_mul(k as u64 + 1) ^ (k as u64);
        }
        Rec64(r)
    }
    fn is(&self, seq: u64) -> bool {
        self.0 == Rec64::make(seq).0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    ShmCopy,
    /// The same, on a channel created with `Barrier::Fence`: what the membarrier buys.
    ShmCopyFence,
    ShmCopyAsync,
    ShmZeroCopy,
    Pipe,
    Pipe1M,
    Unix,
    Memcpy,
    /// The handoff alone, for reference: two pinned threads, a plain 1 MiB ring of atomics with
    /// Release/Acquire indices, the same fill and check, no wakeups, no checks of the peer.
    RawRing,
    Rtrb,
    TokioMpsc,
}

impl Transport {
    const ALL: [Transport; 11] = [
        Transport::ShmCopy,
        Transport::ShmCopyFence,
        Transport::ShmCopyAsync,
        Transport::ShmZeroCopy,
        Transport::Pipe,
        Transport::Pipe1M,
        Transport::Unix,
        Transport::Memcpy,
        Transport::RawRing,
        Transport::Rtrb,
        Transport::TokioMpsc,
    ];

    fn name(self) -> &'static str {
        match self {
            Transport::ShmCopy => "shmchan put/get",
            Transport::ShmCopyFence => "shmchan put/get fence",
            Transport::ShmCopyAsync => "shmchan put/get async",
            Transport::ShmZeroCopy => "shmchan reserve/peek",
            Transport::Pipe => "pipe",
            Transport::Pipe1M => "pipe 1 MiB",
            Transport::Unix => "unix socket",
            Transport::Memcpy => "memcpy (1 thread)",
            Transport::RawRing => "raw ring (threads)",
            Transport::Rtrb => "rtrb (threads)",
            Transport::TokioMpsc => "tokio mpsc Vec (tasks)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Transport::ShmCopy => "shm-copy",
            Transport::ShmCopyFence => "shm-copy-fence",
            Transport::ShmCopyAsync => "shm-copy-async",
            Transport::ShmZeroCopy => "shm-zero-copy",
            Transport::Pipe => "pipe",
            Transport::Pipe1M => "pipe-1m",
            Transport::Unix => "unix",
            Transport::Memcpy => "memcpy",
            Transport::RawRing => "raw-ring",
            Transport::Rtrb => "rtrb",
            Transport::TokioMpsc => "tokio-mpsc",
        }
    }

    fn from_key(k: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.key() == k)
    }
}

/// Items per case: enough for roughly a quarter second at the rates seen here.
fn items_for(batch: usize, quick: bool) -> u64 {
    let n: u64 = match batch {
        // Long enough for steady streaming (start-up costs and a wait for the first item
        // otherwise weigh on the single-item rate and system-call count).
        1 => 20_000_000,
        2..=64 => 64_000_000,
        65..=512 => 128_000_000,
        _ => 256_000_000,
    };
    if quick {
        n / 10
    } else {
        n
    }
}

/// Lets this thread (and the threads it starts) run on every CPU again.
fn unpin() {
    let mut set = rustix::thread::CpuSet::new();
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    for cpu in 0..n.min(rustix::thread::CpuSet::MAX_CPU) {
        set.set(cpu);
    }
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu % rustix::thread::CpuSet::MAX_CPU.max(1));
    // Best effort: on a single CPU, or where affinity is refused, run unpinned.
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

#[derive(serde::Serialize)]
struct Row {
    transport: &'static str,
    batch_items: usize,
    items: u64,
    seconds: f64,
    items_per_sec: f64,
    gb_per_sec: f64,
    /// shmchan only: system calls of both ends' waiting (sleeps, rings, spin yields).
    syscalls_per_million: Option<f64>,
}

pub(crate) fn bench(a: BenchArgs) -> Result<(), Fail> {
    if let Some(c) = &a.consume {
        return consume(c);
    }
    RING_BYTES.store(a.ring_bytes, std::sync::atomic::Ordering::Relaxed);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "shmchan bench: u64 items, every one checked by the consumer; {cpus} CPUs, producer on \
         CPU 0, consumer on CPU {}; median of {} runs per cell",
        1 % cpus,
        a.runs.max(1)
    );
    let mut rows = Vec::new();
    print!("{:<24}", "transport \\ batch");
    for b in BATCHES {
        print!("{:>22}", batch_label(b));
    }
    println!();
    for t in Transport::ALL {
        if a.only
            .as_deref()
            .is_some_and(|o| !t.name().contains(o) && !t.key().contains(o))
        {
            continue;
        }
        print!("{:<24}", t.name());
        let _ = std::io::stdout().flush();
        for b in BATCHES {
            let items = items_for(b, a.quick);
            let mut runs = (0..a.runs.max(1))
                .map(|_| run_case(t, b, items))
                .collect::<Result<Vec<_>, Fail>>()?;
            runs.sort_by(|x, y| x.0.total_cmp(&y.0));
            let (secs, syscalls) = runs[runs.len() / 2];
            let row = Row {
                transport: t.key(),
                batch_items: b,
                items,
                seconds: secs,
                items_per_sec: items as f64 / secs,
                gb_per_sec: items as f64 * 8.0 / secs / 1e9,
                syscalls_per_million: syscalls.map(|c| c as f64 * 1e6 / items as f64),
            };
            print!(
                "{:>22}",
                format!(
                    "{:.1}M/s {:.2}GB/s",
                    row.items_per_sec / 1e6,
                    row.gb_per_sec
                )
            );
            let _ = std::io::stdout().flush();
            rows.push(row);
        }
        println!();
    }
    // 64-byte records, cross-process transports only.
    let mut rec_rows = Vec::new();
    if a.only
        .as_deref()
        .is_none_or(|o| "records".contains(o) || "shmchan".contains(o))
    {
        println!("\n64-byte records (8 words each, all checked):");
        print!("{:<24}", "transport \\ batch");
        for b in RECORD_BATCHES {
            print!(
                "{:>22}",
                if b == 1024 {
                    "64 KiB msgs".to_string()
                } else {
                    format!("batch {b}")
                }
            );
        }
        println!();
        for t in [
            Transport::ShmCopy,
            Transport::ShmZeroCopy,
            Transport::Pipe1M,
            Transport::Unix,
        ] {
            print!("{:<24}", t.name());
            let _ = std::io::stdout().flush();
            for b in RECORD_BATCHES {
                // As many bytes as the u64 row with batches of the same byte size.
                let items = items_for(b * 8, a.quick) / 8;
                let mut runs = (0..a.runs.max(1))
                    .map(|_| cross_process::<Rec64>(t, b, items))
                    .collect::<Result<Vec<_>, Fail>>()?;
                runs.sort_by(|x, y| x.0.total_cmp(&y.0));
                let secs = runs[runs.len() / 2].0;
                let rate = items as f64 / secs;
                print!(
                    "{:>22}",
                    format!("{:.1}M/s {:.2}GB/s", rate / 1e6, rate * 64.0 / 1e9)
                );
                let _ = std::io::stdout().flush();
                rec_rows.push(serde_json::json!({
                    "transport": t.key(),
                    "batch_records": b,
                    "records": items,
                    "seconds": secs,
                    "records_per_sec": rate,
                    "gb_per_sec": rate * 64.0 / 1e9,
                }));
            }
            println!();
        }
    }
    for r in rows.iter().filter(|r| r.syscalls_per_million.is_some()) {
        if r.batch_items == 64 || r.batch_items == 1 {
            println!(
                "  {} batch {}: {:.1} system calls per million items (both ends' waiting)",
                r.transport,
                r.batch_items,
                r.syscalls_per_million.unwrap_or(0.0)
            );
        }
    }
    let mut lat = Vec::new();
    if a.only.as_deref().is_none_or(|o| "latency".contains(o)) {
        println!("\none-way latency, ping-pong of one u64 between two processes (ns):");
        println!("{:<36}{:>10}{:>10}{:>10}", "", "p50", "p99", "p99.9");
        for kind in [
            Lat::CacheLine,
            Lat::Spin,
            Lat::Default,
            Lat::Sleep,
            Lat::SleepFence,
        ] {
            let iters = kind.iterations(a.quick);
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
        let secs = if a.quick { 2 } else { 10 };
        let cpu = idle_waiter_cpu(secs)?;
        println!(
            "\nidle waiter (default strategy), {secs} s: {:.3} s of CPU = {:.2}% of a core",
            cpu,
            cpu * 100.0 / secs as f64
        );
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "throughput": rows,
            "records64": rec_rows,
            "latency": lat,
        }))
        .map_err(Fail::channel)?;
        std::fs::write(path, text)
            .map_err(|e| Fail::channel(format!("writing {}: {e}", path.display())))?;
    }
    Ok(())
}

fn batch_label(b: usize) -> String {
    if b == 8192 {
        "64 KiB msgs".to_string()
    } else {
        format!("batch {b}")
    }
}

/// Runs one case; returns the consumer's seconds from its first item to its last, and for
/// shmchan the system calls both ends' waiting made.
fn run_case(t: Transport, batch: usize, items: u64) -> Result<(f64, Option<u64>), Fail> {
    match t {
        Transport::Memcpy => Ok((memcpy(batch, items), None)),
        Transport::Rtrb => Ok((rtrb_case(batch, items)?, None)),
        Transport::RawRing => Ok((raw_ring_case(batch, items)?, None)),
        Transport::TokioMpsc => Ok((tokio_case(batch, items)?, None)),
        _ => cross_process::<u64>(t, batch, items),
    }
}

fn spawn_consumer(args: &[String], stdin: Stdio) -> Result<std::process::Child, Fail> {
    let exe = std::env::current_exe().map_err(|e| Fail::channel(e.to_string()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("bench").arg("--consume").args(args);
    cmd.stdin(stdin).stdout(Stdio::piped());
    cmd.spawn()
        .map_err(|e| Fail::channel(format!("starting the consumer: {e}")))
}

/// Waits for the consumer's "ready" line (it has claimed its end, or is about to read its
/// stdin), so the clock it starts at its first item does not include a ring the producer
/// filled before the consumer existed.
fn await_ready(child: &mut std::process::Child) -> Result<(), Fail> {
    let out = child
        .stdout
        .as_mut()
        .ok_or_else(|| Fail::channel("no consumer stdout"))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        match out.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => return Err(Fail::channel("the consumer ended before it was ready")),
        }
    }
    if line != b"ready\n" {
        return Err(Fail::channel(format!(
            "the consumer said {:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    Ok(())
}

/// The consumer's report: seconds from its first item to its last, and the system calls its
/// waiting made (shmchan cases; 0 otherwise).
fn collect(child: std::process::Child) -> Result<(f64, u64), Fail> {
    let out = child
        .wait_with_output()
        .map_err(|e| Fail::channel(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Fail::channel(format!("the consumer failed: {text}")));
    }
    let mut it = text.split_whitespace();
    let secs = it.next().and_then(|v| v.parse().ok());
    let calls = it.next().and_then(|v| v.parse().ok());
    secs.zip(calls)
        .ok_or_else(|| Fail::channel(format!("the consumer said {text:?}")))
}

fn cross_process<T: Item>(
    t: Transport,
    batch: usize,
    items: u64,
) -> Result<(f64, Option<u64>), Fail> {
    pin(0);
    let args = vec![
        t.key().to_string(),
        batch.to_string(),
        items.to_string(),
        T::KEY.to_string(),
    ];
    let fill = |buf: &mut [T], next: u64| {
        for (i, v) in buf.iter_mut().enumerate() {
            *v = T::make(next + i as u64);
        }
    };
    match t {
        Transport::ShmCopy
        | Transport::ShmCopyFence
        | Transport::ShmCopyAsync
        | Transport::ShmZeroCopy => {
            let name = format!("bench-{}-{}", std::process::id(), t.key());
            // A 1 MiB ring, whatever the item size.
            let cap = (RING_BYTES.load(std::sync::atomic::Ordering::Relaxed)
                / std::mem::size_of::<T>())
            .max(1);
            let barrier = if t == Transport::ShmCopyFence {
                Barrier::Fence
            } else {
                Barrier::Auto
            };
            let chan =
                ChannelIo::<T>::create(&name, Options::new().capacity(cap).barrier(barrier))?;
            // If the case fails midway, its channel (with an end of stream nobody read) is
            // removed rather than left in /dev/shm.
            struct RemoveOnError<'a>(&'a str, bool);
            impl Drop for RemoveOnError<'_> {
                fn drop(&mut self) {
                    if !self.1 {
                        let _ = ChannelIo::remove(self.0);
                    }
                }
            }
            let mut guard = RemoveOnError(&name, false);
            let mut w = chan.writer()?;
            let mut a = args.clone();
            a.push(name.clone());
            let mut child = spawn_consumer(&a, Stdio::null())?;
            await_ready(&mut child)?;
            let mut buf = vec![T::zeroed(); batch];
            let mut next = 0;
            match t {
                Transport::ShmCopy | Transport::ShmCopyFence => {
                    while next < items {
                        fill(&mut buf, next);
                        w.blocking_put(&buf)?;
                        next += batch as u64;
                    }
                }
                Transport::ShmCopyAsync => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| Fail::channel(e.to_string()))?;
                    rt.block_on(async {
                        while next < items {
                            fill(&mut buf, next);
                            w.put(&buf).await?;
                            next += batch as u64;
                        }
                        Ok::<_, Fail>(())
                    })?;
                }
                _ => {
                    while next < items {
                        let mut slots = w.blocking_reserve(batch)?;
                        fill(&mut slots, next);
                        slots.commit_all();
                        next += batch as u64;
                    }
                }
            }
            let ours = w.wait_stats().syscalls();
            w.close();
            let (secs, theirs) = collect(child)?;
            guard.1 = true;
            Ok((secs, Some(ours + theirs)))
        }
        Transport::Pipe | Transport::Pipe1M | Transport::Unix => {
            let (rd, wr): (OwnedFd, OwnedFd) = if t == Transport::Unix {
                let (a, b) = std::os::unix::net::UnixStream::pair()
                    .map_err(|e| Fail::channel(e.to_string()))?;
                (a.into(), b.into())
            } else {
                rustix::pipe::pipe().map_err(|e| Fail::channel(e.to_string()))?
            };
            if t == Transport::Pipe1M {
                rustix::pipe::fcntl_setpipe_size(wr.as_fd(), 1 << 20)
                    .map_err(|e| Fail::channel(format!("F_SETPIPE_SZ: {e}")))?;
            }
            let mut child = spawn_consumer(&args, Stdio::from(rd))?;
            await_ready(&mut child)?;
            let mut out = std::fs::File::from(wr);
            let mut buf = vec![T::zeroed(); batch];
            let mut next = 0;
            while next < items {
                fill(&mut buf, next);
                out.write_all(bytemuck::cast_slice(&buf))
                    .map_err(|e| Fail::channel(e.to_string()))?;
                next += batch as u64;
            }
            drop(out);
            Ok((collect(child)?.0, None))
        }
        _ => Err(Fail::channel("not a cross-process transport")),
    }
}

/// The consumer process: prints its seconds from first item to last.
fn consume(a: &[String]) -> Result<(), Fail> {
    pin(1);
    let bad = || Fail::usage("--consume TRANSPORT BATCH ITEMS [NAME]");
    if a[0] == "echo" || a[0] == "idle" {
        return echo(a);
    }
    let t = Transport::from_key(&a[0]).ok_or_else(bad)?;
    let batch: usize = a[1].parse().map_err(|_| bad())?;
    let items: u64 = a[2].parse().map_err(|_| bad())?;
    match a.get(3).map(String::as_str) {
        Some("rec64") => consume_items::<Rec64>(t, batch, items, a.get(4)),
        Some("u64") => consume_items::<u64>(t, batch, items, a.get(4)),
        _ => Err(bad()),
    }
}

fn consume_items<T: Item>(
    t: Transport,
    batch: usize,
    items: u64,
    name: Option<&String>,
) -> Result<(), Fail> {
    let bad = || Fail::usage("--consume TRANSPORT BATCH ITEMS TYPE [NAME]");
    let mut buf = vec![T::zeroed(); batch];
    let mut next = 0u64;
    let check = |vals: &[T], next: u64| -> Result<(), Fail> {
        for (i, v) in vals.iter().enumerate() {
            if !v.is(next + i as u64) {
                return Err(Fail::channel(format!("item {} is wrong", next + i as u64)));
            }
        }
        Ok(())
    };
    let mut start = None;
    let mut syscalls = 0;
    match t {
        Transport::ShmCopy
        | Transport::ShmCopyFence
        | Transport::ShmCopyAsync
        | Transport::ShmZeroCopy => {
            let chan = ChannelIo::<T>::open(name.ok_or_else(bad)?)?;
            let mut r = chan.reader()?;
            println!("ready");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Fail::channel(e.to_string()))?;
            match t {
                Transport::ShmCopy | Transport::ShmCopyFence => {
                    while next < items {
                        r.blocking_get(&mut buf)?;
                        start.get_or_insert_with(Instant::now);
                        check(&buf, next)?;
                        next += batch as u64;
                    }
                }
                Transport::ShmCopyAsync => rt.block_on(async {
                    while next < items {
                        r.get(&mut buf).await?;
                        start.get_or_insert_with(Instant::now);
                        check(&buf, next)?;
                        next += batch as u64;
                    }
                    Ok::<_, Fail>(())
                })?,
                _ => {
                    while next < items {
                        let view = r.blocking_peek(batch)?;
                        start.get_or_insert_with(Instant::now);
                        check(&view, next)?;
                        view.consume_all();
                        next += batch as u64;
                    }
                }
            }
            syscalls = r.wait_stats().syscalls();
            match r.blocking_get(&mut buf[..1]) {
                Err(GetError::Closed { .. }) => {}
                other => return Err(Fail::channel(format!("after the last item: {other:?}"))),
            }
        }
        _ => {
            let mut input = std::fs::File::from(
                std::io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| Fail::channel(e.to_string()))?,
            );
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
            let mut filled = 0;
            println!("ready");
            while next < items {
                let n = input
                    .read(&mut bytes[filled..])
                    .map_err(|e| Fail::channel(e.to_string()))?;
                if n == 0 {
                    return Err(Fail::channel("input ended early"));
                }
                start.get_or_insert_with(Instant::now);
                filled += n;
                let size = std::mem::size_of::<T>();
                let whole = filled / size;
                let vals: &[T] = bytemuck::cast_slice(&bytes[..whole * size]);
                check(vals, next)?;
                next += whole as u64;
                bytes.copy_within(whole * size..filled, 0);
                filled -= whole * size;
            }
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!("{secs} {syscalls}");
    Ok(())
}

/// The ceiling: one thread copying batches from one buffer to another.
fn memcpy(batch: usize, items: u64) -> f64 {
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

/// rtrb between two pinned threads, chunks of `batch`; both sides spin when blocked (rtrb has
/// no blocking API), which is its best case.
/// The cross-core handoff of the same work with nothing else: a ring with only two indices,
/// between two pinned threads (no wakeups, no validation of the peer, no process boundary).
/// Where shmchan is slower, the gap is roughly the library's own cost; where it is faster,
/// its vector-wide `memcpy` beat this ring's word-by-word atomics.
fn raw_ring_case(batch: usize, items: u64) -> Result<f64, Fail> {
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
    if CAP % batch as u64 != 0 {
        return Err(Fail::usage("raw ring: the batch must divide 2^17"));
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
    producer
        .join()
        .map_err(|_| Fail::channel("raw ring producer panicked"))?;
    consumer
        .join()
        .map_err(|_| Fail::channel("raw ring consumer panicked"))?
        .map_err(Fail::channel)
}

fn rtrb_case(batch: usize, items: u64) -> Result<f64, Fail> {
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
                    for (i, v) in a.iter().chain(b).enumerate() {
                        if *v != next + i as u64 {
                            return Err(format!("item {} is {v}", next + i as u64));
                        }
                    }
                    chunk.commit_all();
                    next += batch as u64;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
    });
    producer
        .join()
        .map_err(|_| Fail::channel("rtrb producer panicked"))?;
    consumer
        .join()
        .map_err(|_| Fail::channel("rtrb consumer panicked"))?
        .map_err(Fail::channel)
}

/// tokio's bounded mpsc carrying `Vec<u64>` batches between tasks on two worker threads.
fn tokio_case(batch: usize, items: u64) -> Result<f64, Fail> {
    // The workers inherit our affinity: give them both CPUs (an earlier case pinned us).
    unpin();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .map_err(|e| Fail::channel(e.to_string()))?;
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
            for (i, x) in v.iter().enumerate() {
                if *x != next + i as u64 {
                    return Err(Fail::channel(format!("item {} is {x}", next + i as u64)));
                }
            }
            next += v.len() as u64;
        }
        let _ = producer.await;
        if next != items {
            return Err(Fail::channel(format!("received {next} of {items}")));
        }
        Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
    })
}

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
            Lat::Spin => WaitStrategy::SpinThenSleep(Duration::from_secs(1)),
            Lat::Sleep | Lat::SleepFence => WaitStrategy::Sleep,
            _ => WaitStrategy::default(),
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
struct LatRow {
    case: &'static str,
    iterations: u64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
}

fn histogram() -> Result<hdrhistogram::Histogram<u64>, Fail> {
    hdrhistogram::Histogram::new_with_bounds(1, 10_000_000_000, 3).map_err(Fail::channel)
}

/// Round trips of one u64; records half of each round trip, after a warm-up.
fn latency(kind: Lat, iters: u64) -> Result<hdrhistogram::Histogram<u64>, Fail> {
    let mut h = histogram()?;
    let warm = iters / 10;
    if kind == Lat::CacheLine {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        #[repr(align(128))]
        struct Line(AtomicU64);
        let (ping, pong) = (
            Arc::new(Line(AtomicU64::new(0))),
            Arc::new(Line(AtomicU64::new(0))),
        );
        let (p2, q2) = (Arc::clone(&ping), Arc::clone(&pong));
        let echo = std::thread::spawn(move || {
            pin(1);
            for i in 1..=iters + warm {
                // Acquire/Release: the pair orders nothing else; this is the hardware floor.
                while p2.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                q2.0.store(i, Ordering::Release);
            }
        });
        pin(0);
        for i in 1..=iters + warm {
            let t0 = Instant::now();
            ping.0.store(i, Ordering::Release);
            while pong.0.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            if i > warm {
                let _ = h.record((t0.elapsed().as_nanos() as u64 / 2).max(1));
            }
        }
        echo.join()
            .map_err(|_| Fail::channel("echo thread panicked"))?;
        return Ok(h);
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
    let ping = ChannelIo::<u64>::create(&format!("{name}-ping"), opts.clone())?;
    let pong = ChannelIo::<u64>::create(&format!("{name}-pong"), opts)?;
    let (mut w, mut r) = (ping.writer()?, pong.reader()?);
    let strategy = match kind {
        Lat::Spin => "spin",
        Lat::Sleep | Lat::SleepFence => "sleep",
        _ => "default",
    };
    let child = spawn_consumer(
        &[
            "echo".to_string(),
            strategy.to_string(),
            (iters + warm).to_string(),
            name,
        ],
        Stdio::null(),
    )?;
    let mut x = [0u64];
    for i in 1..=iters + warm {
        let t0 = Instant::now();
        w.blocking_put(&[i])?;
        r.blocking_get(&mut x)?;
        if x[0] != i {
            return Err(Fail::channel(format!("echo {i} came back as {}", x[0])));
        }
        if i > warm {
            let _ = h.record((t0.elapsed().as_nanos() as u64 / 2).max(1));
        }
    }
    w.close();
    collect(child)?;
    Ok(h)
}

/// The echo side of the latency cases, and the idle waiter.
fn echo(a: &[String]) -> Result<(), Fail> {
    pin(1);
    let bad = || Fail::usage("--consume echo|idle STRATEGY ITERS NAME");
    let strategy = match a[1].as_str() {
        "spin" => Lat::Spin.strategy(),
        "sleep" => Lat::Sleep.strategy(),
        _ => WaitStrategy::default(),
    };
    let iters: u64 = a[2].parse().map_err(|_| bad())?;
    let name = a.get(3).ok_or_else(bad)?;
    let opts = Options::new().wait_strategy(strategy);
    if a[0] == "idle" {
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
        println!("{cpu} 0");
        return Ok(());
    }
    let ping = ChannelIo::<u64>::open_with(&format!("{name}-ping"), opts.clone())?;
    let pong = ChannelIo::<u64>::open_with(&format!("{name}-pong"), opts)?;
    let (mut r, mut w) = (ping.reader()?, pong.writer()?);
    let mut x = [0u64];
    for _ in 0..iters {
        r.blocking_get(&mut x)?;
        w.blocking_put(&x)?;
    }
    println!("0 0");
    Ok(())
}

/// CPU time a reader burns while it waits `secs` seconds for an item (default strategy).
fn idle_waiter_cpu(secs: u64) -> Result<f64, Fail> {
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
