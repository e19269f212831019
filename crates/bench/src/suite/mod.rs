//! `shmchan-bench suite`: throughput of shmchan next to the alternatives, in one run.
//!
//! Cross-process cases start the consumer as a second process (this binary again, as
//! `suite --consume …`), producer pinned to CPU 0 and consumer to CPU 1. Every case moves
//! `u64` items numbered 0, 1, 2, … and the consumer checks every one. The in-process
//! baselines (memcpy, the raw ring, rtrb, tokio's mpsc) run as two pinned threads (memcpy:
//! one).
//!
//! Modules: [`cross`] the cross-process cases (producer and consumer), [`threads`] the
//! in-process baselines, [`latency`] the ping-pong and idle-waiter cases; this one the tables.

mod cross;
mod latency;
mod threads;

use std::io::Write;

use clap::Args;

use crate::common::{median, Item, Res};

#[derive(Args, Debug)]
pub struct SuiteArgs {
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
    /// Internal: run as the consumer of a cross-process case: `TRANSPORT BATCH ITEMS TYPE [NAME]`.
    #[arg(long, hide = true, num_args = 4..=5)]
    consume: Option<Vec<String>>,
}

impl SuiteArgs {
    /// Whether `--only` lets through a row named `name` (or keyed `key`).
    fn wants(&self, name: &str, key: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| name.contains(o) || key.contains(o))
    }

    /// Whether `--only` lets through a whole section: its text is part of one of `words`.
    fn wants_section(&self, words: &[&str]) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| words.iter().any(|w| w.contains(o)))
    }

    fn runs(&self) -> usize {
        self.runs.max(1)
    }
}

/// Batch sizes in items (8 bytes each); 8192 items is a 64 KiB message.
const BATCHES: [usize; 4] = [1, 64, 4096, 8192];

/// Batch sizes for the 64-byte records; 1024 records is a 64 KiB message.
const RECORD_BATCHES: [usize; 3] = [1, 64, 1024];

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

    /// A shmchan channel (as opposed to a byte stream, or an in-process case).
    fn is_shmchan(self) -> bool {
        matches!(
            self,
            Transport::ShmCopy
                | Transport::ShmCopyFence
                | Transport::ShmCopyAsync
                | Transport::ShmZeroCopy
        )
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

pub fn run(a: SuiteArgs) -> Res<()> {
    if let Some(c) = &a.consume {
        return cross::consume(c);
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "shmchan-bench suite: u64 items, every one checked by the consumer; {cpus} CPUs, \
         producer on CPU 0, consumer on CPU {}; median of {} runs per cell",
        1 % cpus,
        a.runs()
    );
    let rows = throughput(&a)?;
    let rec_rows = records(&a)?;
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
    let lat = if a.wants_section(&["latency"]) {
        latency::table(a.quick)?
    } else {
        Vec::new()
    };
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "throughput": rows,
            "records64": rec_rows,
            "latency": lat,
        }))?;
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The column heads of a table of batch sizes; `msg` is the batch that makes a 64 KiB message.
fn print_head(batches: &[usize], msg: usize) {
    print!("{:<24}", "transport \\ batch");
    for &b in batches {
        if b == msg {
            print!("{:>22}", "64 KiB msgs");
        } else {
            print!("{:>22}", format!("batch {b}"));
        }
    }
    println!();
}

/// Prints one cell of a table at once (a long case shows its progress).
fn print_cell(items_per_sec: f64, gb_per_sec: f64) {
    print!(
        "{:>22}",
        format!("{:.1}M/s {:.2}GB/s", items_per_sec / 1e6, gb_per_sec)
    );
    let _ = std::io::stdout().flush();
}

/// Prints a row's name at once.
fn print_name(name: &str) {
    print!("{name:<24}");
    let _ = std::io::stdout().flush();
}

/// The main table: `u64` items, every transport, every batch size.
fn throughput(a: &SuiteArgs) -> Res<Vec<Row>> {
    let mut rows = Vec::new();
    print_head(&BATCHES, 8192);
    for t in Transport::ALL {
        if !a.wants(t.name(), t.key()) {
            continue;
        }
        print_name(t.name());
        for b in BATCHES {
            let items = items_for(b, a.quick);
            let runs = (0..a.runs())
                .map(|_| run_case(t, b, items, a.ring_bytes))
                .collect::<Res<Vec<_>>>()?;
            let (secs, syscalls) = median(runs, |r| r.0);
            let row = Row {
                transport: t.key(),
                batch_items: b,
                items,
                seconds: secs,
                items_per_sec: items as f64 / secs,
                gb_per_sec: items as f64 * 8.0 / secs / 1e9,
                syscalls_per_million: syscalls.map(|c| c as f64 * 1e6 / items as f64),
            };
            print_cell(row.items_per_sec, row.gb_per_sec);
            rows.push(row);
        }
        println!();
    }
    Ok(rows)
}

/// 64-byte records, cross-process transports only.
fn records(a: &SuiteArgs) -> Res<Vec<serde_json::Value>> {
    let mut rec_rows = Vec::new();
    if !a.wants_section(&["records", "shmchan"]) {
        return Ok(rec_rows);
    }
    println!("\n64-byte records (8 words each, all checked):");
    print_head(&RECORD_BATCHES, 1024);
    for t in [
        Transport::ShmCopy,
        Transport::ShmZeroCopy,
        Transport::Pipe1M,
        Transport::Unix,
    ] {
        print_name(t.name());
        for b in RECORD_BATCHES {
            // As many bytes as the u64 row with batches of the same byte size.
            let items = items_for(b * 8, a.quick) / 8;
            let runs = (0..a.runs())
                .map(|_| cross::cross_process::<Rec64>(t, b, items, a.ring_bytes))
                .collect::<Res<Vec<_>>>()?;
            let secs = median(runs, |r| r.0).0;
            let rate = items as f64 / secs;
            print_cell(rate, rate * 64.0 / 1e9);
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
    Ok(rec_rows)
}

/// Runs one case; returns the consumer's seconds from its first item to its last, and for
/// shmchan the system calls both ends' waiting made.
fn run_case(t: Transport, batch: usize, items: u64, ring_bytes: usize) -> Res<(f64, Option<u64>)> {
    match t {
        Transport::Memcpy => Ok((threads::memcpy(batch, items), None)),
        Transport::Rtrb => Ok((threads::rtrb_case(batch, items)?, None)),
        Transport::RawRing => Ok((threads::raw_ring_case(batch, items)?, None)),
        Transport::TokioMpsc => Ok((threads::tokio_case(batch, items)?, None)),
        _ => cross::cross_process::<u64>(t, batch, items, ring_bytes),
    }
}
