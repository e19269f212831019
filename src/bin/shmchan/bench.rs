//! `shmchan bench`: throughput of shmchan next to the alternatives, in one run.
//!
//! Cross-process cases start the consumer as a second process (this binary again, with the
//! hidden `--consume` argument), producer pinned to CPU 0 and consumer to CPU 1. Every case
//! moves `u64` items numbered 0, 1, 2, … and the consumer checks every one. The in-process
//! baselines (memcpy, rtrb, tokio's mpsc) run as two pinned threads (memcpy: one).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Args;
use shmchan::{ChannelIo, GetError, Options};

use crate::Fail;

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// About a tenth of the items per case (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Only the transports whose names contain this text.
    #[arg(long)]
    only: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Internal: run as the consumer of a cross-process case ("TRANSPORT BATCH ITEMS [NAME]").
    #[arg(long, hide = true, num_args = 3..=4)]
    consume: Option<Vec<String>>,
}

/// Batch sizes in items (8 bytes each); 8192 items is a 64 KiB message.
const BATCHES: [usize; 4] = [1, 64, 4096, 8192];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    ShmCopy,
    ShmCopyAsync,
    ShmZeroCopy,
    Pipe,
    Pipe1M,
    Unix,
    Memcpy,
    Rtrb,
    TokioMpsc,
}

impl Transport {
    const ALL: [Transport; 9] = [
        Transport::ShmCopy,
        Transport::ShmCopyAsync,
        Transport::ShmZeroCopy,
        Transport::Pipe,
        Transport::Pipe1M,
        Transport::Unix,
        Transport::Memcpy,
        Transport::Rtrb,
        Transport::TokioMpsc,
    ];

    fn name(self) -> &'static str {
        match self {
            Transport::ShmCopy => "shmchan put/get",
            Transport::ShmCopyAsync => "shmchan put/get async",
            Transport::ShmZeroCopy => "shmchan reserve/peek",
            Transport::Pipe => "pipe",
            Transport::Pipe1M => "pipe 1 MiB",
            Transport::Unix => "unix socket",
            Transport::Memcpy => "memcpy (1 thread)",
            Transport::Rtrb => "rtrb (threads)",
            Transport::TokioMpsc => "tokio mpsc Vec (tasks)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Transport::ShmCopy => "shm-copy",
            Transport::ShmCopyAsync => "shm-copy-async",
            Transport::ShmZeroCopy => "shm-zero-copy",
            Transport::Pipe => "pipe",
            Transport::Pipe1M => "pipe-1m",
            Transport::Unix => "unix",
            Transport::Memcpy => "memcpy",
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
        1 => 4_000_000,
        64 => 64_000_000,
        _ => 256_000_000,
    };
    if quick {
        n / 10
    } else {
        n
    }
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
}

pub(crate) fn bench(a: BenchArgs) -> Result<(), Fail> {
    if let Some(c) = &a.consume {
        return consume(c);
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "shmchan bench: u64 items, every one checked by the consumer; {cpus} CPUs, producer on \
         CPU 0, consumer on CPU {}",
        1 % cpus
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
            let secs = run_case(t, b, items)?;
            let row = Row {
                transport: t.key(),
                batch_items: b,
                items,
                seconds: secs,
                items_per_sec: items as f64 / secs,
                gb_per_sec: items as f64 * 8.0 / secs / 1e9,
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
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&rows).map_err(Fail::channel)?;
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

/// Runs one case; returns the consumer's seconds from its first item to its last.
fn run_case(t: Transport, batch: usize, items: u64) -> Result<f64, Fail> {
    match t {
        Transport::Memcpy => Ok(memcpy(batch, items)),
        Transport::Rtrb => rtrb_case(batch, items),
        Transport::TokioMpsc => tokio_case(batch, items),
        _ => cross_process(t, batch, items),
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

fn collect(child: std::process::Child) -> Result<f64, Fail> {
    let out = child
        .wait_with_output()
        .map_err(|e| Fail::channel(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Fail::channel(format!("the consumer failed: {text}")));
    }
    text.trim()
        .parse()
        .map_err(|_| Fail::channel(format!("the consumer said {text:?}")))
}

fn cross_process(t: Transport, batch: usize, items: u64) -> Result<f64, Fail> {
    pin(0);
    let args = vec![t.key().to_string(), batch.to_string(), items.to_string()];
    let fill = |buf: &mut [u64], next: u64| {
        for (i, v) in buf.iter_mut().enumerate() {
            *v = next + i as u64;
        }
    };
    match t {
        Transport::ShmCopy | Transport::ShmCopyAsync | Transport::ShmZeroCopy => {
            let name = format!("bench-{}-{}", std::process::id(), t.key());
            let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 17))?;
            let mut w = chan.writer()?;
            let mut a = args.clone();
            a.push(name);
            let child = spawn_consumer(&a, Stdio::null())?;
            let mut buf = vec![0u64; batch];
            let mut next = 0;
            match t {
                Transport::ShmCopy => {
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
            w.close();
            collect(child)
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
            let child = spawn_consumer(&args, Stdio::from(rd))?;
            let mut out = std::fs::File::from(wr);
            let mut buf = vec![0u64; batch];
            let mut next = 0;
            while next < items {
                fill(&mut buf, next);
                out.write_all(bytemuck::cast_slice(&buf))
                    .map_err(|e| Fail::channel(e.to_string()))?;
                next += batch as u64;
            }
            drop(out);
            collect(child)
        }
        _ => Err(Fail::channel("not a cross-process transport")),
    }
}

/// The consumer process: prints its seconds from first item to last.
fn consume(a: &[String]) -> Result<(), Fail> {
    pin(1);
    let bad = || Fail::usage("--consume TRANSPORT BATCH ITEMS [NAME]");
    let t = Transport::from_key(&a[0]).ok_or_else(bad)?;
    let batch: usize = a[1].parse().map_err(|_| bad())?;
    let items: u64 = a[2].parse().map_err(|_| bad())?;
    let mut buf = vec![0u64; batch];
    let mut next = 0u64;
    let check = |vals: &[u64], next: u64| -> Result<(), Fail> {
        for (i, v) in vals.iter().enumerate() {
            if *v != next + i as u64 {
                return Err(Fail::channel(format!("item {} is {v}", next + i as u64)));
            }
        }
        Ok(())
    };
    let mut start = None;
    match t {
        Transport::ShmCopy | Transport::ShmCopyAsync | Transport::ShmZeroCopy => {
            let chan = ChannelIo::<u64>::open(a.get(3).ok_or_else(bad)?)?;
            let mut r = chan.reader()?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Fail::channel(e.to_string()))?;
            match t {
                Transport::ShmCopy => {
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
            while next < items {
                let n = input
                    .read(&mut bytes[filled..])
                    .map_err(|e| Fail::channel(e.to_string()))?;
                if n == 0 {
                    return Err(Fail::channel("input ended early"));
                }
                start.get_or_insert_with(Instant::now);
                filled += n;
                let whole = filled / 8;
                let vals: &[u64] = bytemuck::cast_slice(&bytes[..whole * 8]);
                check(vals, next)?;
                next += whole as u64;
                bytes.copy_within(whole * 8..filled, 0);
                filled -= whole * 8;
            }
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!("{secs}");
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
