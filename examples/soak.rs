//! Soak: stream many items through two processes, killing and restarting the reader at
//! random moments, and check every item.
//!
//! ```text
//! cargo run --release --example soak -- [--items N] [--restart-ms MIN MAX] [--seed S]
//! scripts/soak.sh            # 10^10 items
//! ```
//!
//! Item `i` has value `i`. The writer (this process) puts `0..N` in random batches of 1 to
//! 4096 and closes. A reader process is started, killed with SIGKILL after a random time,
//! and replaced, again and again; each reader first reads the channel's `head` (the first
//! item no reader consumed), then checks that it receives exactly `head, head+1, …` — so
//! nothing committed is lost, nothing consumed is delivered again, nothing is reordered, and
//! no torn item appears. The last reader drains to the writer's close and checks it ends at
//! `N`. Prints the figures.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shmchan::{ChannelIo, GetError, Options};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn arg<T: std::str::FromStr>(args: &[String], flag: &str, i: usize) -> Option<T> {
    let p = args.iter().position(|a| a == flag)?;
    args.get(p + 1 + i)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(name) = arg::<String>(&args, "--reader", 0) {
        return reader(&name);
    }
    let items: u64 = arg(&args, "--items", 0).unwrap_or(1_000_000_000);
    let min_ms: u64 = arg(&args, "--restart-ms", 0).unwrap_or(50);
    let max_ms: u64 = arg(&args, "--restart-ms", 1).unwrap_or(2000);
    let mut rng = Rng(arg(&args, "--seed", 0).unwrap_or(0x5eed) | 1);
    let name = format!("soak-{}", std::process::id());
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 20))?;
    let mut w = chan.writer()?;
    let exe = std::env::current_exe()?;
    let reader_name = name.clone();
    let spawn = move || -> std::io::Result<Child> {
        Command::new(&exe)
            .args(["--reader", &reader_name])
            .stdout(Stdio::piped())
            .spawn()
    };

    // The reader killer runs beside the writer.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = std::sync::Arc::clone(&stop);
    let mut krng = Rng(rng.next() | 1);
    let first = spawn()?;
    let killer = std::thread::spawn(move || -> Result<(Child, u64), String> {
        let mut current = first;
        let mut kills = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Acquire) {
            let ms = min_ms + krng.next() % (max_ms - min_ms + 1);
            // The soak's own pacing: a reader lives for a random time, then is killed.
            std::thread::sleep(Duration::from_millis(ms));
            if stop2.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            if let Ok(Some(status)) = current.try_wait() {
                if status.success() {
                    break; // it read to the writer's close, which just happened
                }
                return Err(format!("a reader failed: {status}"));
            }
            current.kill().map_err(|e| e.to_string())?; // SIGKILL
            current.wait().map_err(|e| e.to_string())?;
            kills += 1;
            current = spawn().map_err(|e| e.to_string())?;
        }
        Ok((current, kills))
    });

    let start = Instant::now();
    let mut deaths_seen = 0u64;
    let mut buf = vec![0u64; 4096];
    let mut next = 0u64;
    while next < items {
        let n = (1 + rng.next() % 4096).min(items - next) as usize;
        for (i, v) in buf[..n].iter_mut().enumerate() {
            *v = next + i as u64;
        }
        let mut done = 0;
        while done < n {
            match w.blocking_put(&buf[done..n]) {
                Ok(()) => done = n,
                // The reader was killed while we waited: what it had not consumed stays in
                // the ring; the next put waits for its successor.
                Err(shmchan::PutError::PeerGone { accepted, .. }) => {
                    done += accepted;
                    deaths_seen += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        next += n as u64;
    }
    w.close();
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (last, kills) = killer.join().map_err(|_| "killer panicked")??;
    let out = last.wait_with_output()?;
    let secs = start.elapsed().as_secs_f64();
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || report.trim() != format!("ok {items}") {
        return Err(format!("the last reader said {report:?} ({})", out.status).into());
    }
    println!(
        "soak: {items} items through two processes in {secs:.1} s ({:.0} M items/s), \
         {kills} readers killed with SIGKILL and restarted ({deaths_seen} of the deaths \
         reported to the waiting writer as PeerGone), every item checked: no loss, no \
         duplicate, no reordering",
        items as f64 / secs / 1e6
    );
    Ok(())
}

/// A reader: resumes at the channel's head, checks every item, reports at the close.
fn reader(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Read before claiming: no other reader is alive (the previous one was killed and
    // waited for), so the head is where we must resume.
    let head = ChannelIo::inspect(name)?.head;
    let chan = ChannelIo::<u64>::open(name)?;
    let mut r = chan.reader()?;
    let mut expect = head;
    loop {
        let view = match r.blocking_peek_some() {
            Ok(v) => v,
            Err(GetError::Closed { .. }) => break,
            Err(e) => return Err(e.into()),
        };
        for v in view.iter() {
            if *v != expect {
                eprintln!("soak reader: expected {expect}, got {v} (resumed at {head})");
                std::process::exit(3);
            }
            expect += 1;
        }
        view.consume_all();
    }
    println!("ok {expect}");
    Ok(())
}
