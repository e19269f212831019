//! A sensor feed between two processes: one command starts both.
//!
//! ```text
//! cargo run --release --example sensor_feed            # 100 million f32 samples
//! cargo run --release --example sensor_feed -- --items 1000000
//! ```
//!
//! The producer (this process, async on tokio) creates a channel of `f32`, re-executes itself
//! as the consumer (a second process, blocking API), and streams samples in batches of
//! varying sizes (1 to 65 536). The consumer reads fixed frames of 4096 — unrelated to the
//! batch sizes — checks every value, drains the last partial frame after the producer
//! closes, and prints the throughput.

use std::process::{Command, ExitCode};
use std::time::Instant;

use shmchan::{ChannelIo, ErrorKind, Options};

const FRAME: usize = 4096;
const MAX_BATCH: u64 = 65_536;

/// The value of sample `i`: exact in f32 (below 2^24), and different for neighbours.
fn sample(i: u64) -> f32 {
    (i % (1 << 24)) as f32
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut items: u64 = 100_000_000;
    let mut consumer_of = None;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--items" => {
                items = match args.get(i + 1).and_then(|v| v.parse().ok()) {
                    Some(n) => n,
                    None => return usage("--items takes a number"),
                };
                i += 1;
            }
            "--consumer" => {
                consumer_of = args.get(i + 1).cloned();
                i += 1;
            }
            "-h" | "--help" => {
                println!("usage: sensor_feed [--items N]   (default 100000000)");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other}")),
        }
        i += 1;
    }
    let result = match consumer_of {
        Some(name) => consume(&name, items),
        None => produce(items),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sensor_feed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("sensor_feed: {msg}\nusage: sensor_feed [--items N]");
    ExitCode::from(2)
}

/// The producer: creates the channel, starts the consumer process, streams `items` samples.
fn produce(items: u64) -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("sensor-feed-{}", std::process::id());
    let chan = ChannelIo::<f32>::create(&name, Options::new().capacity(1 << 20))?;
    println!(
        "producer: pid {}, channel '{name}', ring of {} f32 ({} KiB)",
        std::process::id(),
        chan.capacity(),
        chan.capacity() * 4 / 1024
    );
    let mut consumer = Command::new(std::env::current_exe()?)
        .args(["--consumer", &name, "--items", &items.to_string()])
        .spawn()?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let sent = rt.block_on(async {
        let mut w = chan.writer()?;
        let mut batch = Vec::with_capacity(MAX_BATCH as usize);
        let mut next = 0u64;
        let mut lcg = 0x2545_f491u64;
        while next < items {
            lcg = lcg
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let size = (1 + (lcg >> 33) % MAX_BATCH).min(items - next);
            batch.clear();
            batch.extend((next..next + size).map(sample));
            w.put(&batch).await?;
            next += size;
        }
        let stats = w.wait_stats();
        w.close();
        Ok::<_, Box<dyn std::error::Error>>((next, stats))
    });
    let (sent, stats) = match sent {
        Ok(v) => v,
        Err(e) => {
            let _ = consumer.kill();
            let _ = consumer.wait();
            return Err(e);
        }
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "producer: put {sent} samples in {secs:.3} s; slept {} times, rang {} times",
        stats.sleeps, stats.rings
    );
    let status = consumer.wait()?;
    if !status.success() {
        return Err(format!("consumer failed: {status}").into());
    }
    Ok(())
}

/// The consumer: reads frames of 4096, checks each sample, reports throughput.
fn consume(name: &str, items: u64) -> Result<(), Box<dyn std::error::Error>> {
    let chan = ChannelIo::<f32>::open(name)?;
    let mut r = chan.reader()?;
    let mut frame = vec![0f32; FRAME];
    let mut got = 0u64;
    let mut start = None;
    let check = |from: u64, values: &[f32]| -> Result<(), String> {
        for (k, v) in values.iter().enumerate() {
            let i = from + k as u64;
            if v.to_bits() != sample(i).to_bits() {
                return Err(format!("sample {i} is {v}, expected {}", sample(i)));
            }
        }
        Ok(())
    };
    loop {
        match r.blocking_get(&mut frame) {
            Ok(()) => {
                start.get_or_insert_with(Instant::now);
                check(got, &frame)?;
                got += FRAME as u64;
            }
            Err(e) if e.kind() == ErrorKind::Closed => {
                // The last partial frame is still in the channel: drain it.
                let remaining = e.remaining();
                let n = r.blocking_get_some(&mut frame)?;
                if n != remaining {
                    return Err(format!("{remaining} remained but {n} were read").into());
                }
                check(got, &frame[..n])?;
                got += n as u64;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64()).max(1e-9);
    if got != items {
        return Err(format!("received {got} samples, expected {items}").into());
    }
    let stats = r.wait_stats();
    println!(
        "consumer: pid {}, got and checked {got} samples in {secs:.3} s: {:.1} M items/s, {:.2} GB/s; slept {} times",
        std::process::id(),
        got as f64 / secs / 1e6,
        got as f64 * 4.0 / secs / 1e9,
        stats.sleeps
    );
    Ok(())
}
