//! Single items across two processes: `put(&[x])` / `get` of one u64 at a time.
//!
//! ```text
//! cargo run --release -p shmchan-bench --example single_items [-- --items N] [--fence] [--async]
//! ```
//!
//! `--fence` creates the channel with `Barrier::Fence` (a fence on every operation) instead
//! of the default, for comparison; `--async` uses the async `put`/`get` on a current-thread
//! tokio runtime in both processes instead of the blocking twins.
use std::process::Command;
use std::time::Instant;

use shmchan::{Barrier, ChannelIo, Options, ReaderFront, WriterFront};

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Reads `items` items, checking each; returns the seconds from the first to the last.
fn consume(r: &mut ReaderFront<u64>, items: u64, asynch: bool) -> Result<f64, String> {
    let check = |i: u64, x: u64| {
        if x == i {
            Ok(())
        } else {
            Err(format!("item {i} is {x}"))
        }
    };
    let mut x = [0u64];
    if asynch {
        runtime().map_err(|e| e.to_string())?.block_on(async {
            r.get(&mut x).await.map_err(|e| e.to_string())?;
            let start = Instant::now();
            for i in 1..items {
                if let Err(e) = r.get(&mut x).await {
                    return Err(e.to_string());
                }
                check(i, x[0])?;
            }
            Ok(start.elapsed().as_secs_f64())
        })
    } else {
        r.blocking_get(&mut x).map_err(|e| e.to_string())?;
        let start = Instant::now();
        for i in 1..items {
            r.blocking_get(&mut x).map_err(|e| e.to_string())?;
            check(i, x[0])?;
        }
        Ok(start.elapsed().as_secs_f64())
    }
}

fn produce(w: &mut WriterFront<u64>, items: u64, asynch: bool) -> Result<(), String> {
    if asynch {
        runtime().map_err(|e| e.to_string())?.block_on(async {
            for i in 0..items {
                w.put(&[i]).await.map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    } else {
        for i in 0..items {
            w.blocking_put(&[i]).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let items: u64 = args
        .iter()
        .position(|a| a == "--items")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000_000);
    let asynch = flag("--async");
    let only = std::env::var("ASYNC_ONLY").unwrap_or_default();
    if let Some(i) = args.iter().position(|a| a == "--consumer") {
        let chan = ChannelIo::<u64>::open(&args[i + 1])?;
        let mut r = chan.reader()?;
        let s = consume(&mut r, items, asynch && only != "writer")?;
        println!(
            "single u64 items across processes: {:.1} M items/s ({items} items, reader slept {} times, {} system calls)",
            items as f64 / s / 1e6,
            r.wait_stats().sleeps,
            r.wait_stats().syscalls()
        );
        return Ok(());
    }
    let name = format!("single-items-{}", std::process::id());
    let barrier = if flag("--fence") {
        Barrier::Fence
    } else {
        Barrier::Auto
    };
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 16).barrier(barrier))?;
    println!(
        "barrier: {:?}, {}",
        chan.barrier(),
        if asynch { "async" } else { "blocking" }
    );
    let mut w = chan.writer()?;
    let mut consumer = Command::new(std::env::current_exe()?);
    consumer.args(["--consumer", &name, "--items", &items.to_string()]);
    if asynch {
        consumer.arg("--async");
    }
    let mut child = consumer.spawn()?;
    produce(&mut w, items, asynch && only != "reader")?;
    println!(
        "writer slept {} times, rang {} times, {} system calls",
        w.wait_stats().sleeps,
        w.wait_stats().rings,
        w.wait_stats().syscalls()
    );
    w.close();
    child.wait()?;
    Ok(())
}
