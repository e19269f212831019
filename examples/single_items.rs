//! Single items across two processes: `put(&[x])` / `get` of one u64 at a time, blocking.
//!
//! ```text
//! cargo run --release --example single_items [-- --items N] [--fence]
//! ```
//!
//! `--fence` creates the channel with `Barrier::Fence` (a fence on every operation) instead
//! of the default, for comparison.
use std::process::Command;
use std::time::Instant;

use shmchan::{Barrier, ChannelIo, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let items: u64 = args
        .iter()
        .position(|a| a == "--items")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000_000);
    if let Some(i) = args.iter().position(|a| a == "--consumer") {
        let chan = ChannelIo::<u64>::open(&args[i + 1])?;
        let mut r = chan.reader()?;
        let mut x = [0u64];
        r.blocking_get(&mut x)?;
        let start = Instant::now();
        for i in 1..items {
            r.blocking_get(&mut x)?;
            if x[0] != i {
                return Err(format!("item {i} is {}", x[0]).into());
            }
        }
        let s = start.elapsed().as_secs_f64();
        println!(
            "single u64 items across processes: {:.1} M items/s ({items} items, reader slept {} times, {} system calls)",
            items as f64 / s / 1e6,
            r.wait_stats().sleeps,
            r.wait_stats().syscalls()
        );
        return Ok(());
    }
    let name = format!("single-items-{}", std::process::id());
    let barrier = if args.iter().any(|a| a == "--fence") {
        Barrier::Fence
    } else {
        Barrier::Auto
    };
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 16).barrier(barrier))?;
    println!("barrier: {:?}", chan.barrier());
    let mut w = chan.writer()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--consumer", &name, "--items", &items.to_string()])
        .spawn()?;
    for i in 0..items {
        w.blocking_put(&[i])?;
    }
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
