//! The same-run A/B program of `scripts/ab.sh`: one cross-process stream through shmchan,
//! built against two versions of the library and run alternately, so that a change is
//! judged against the commit before it on the same machine in the same minutes.
//!
//! It uses only the public API that every version since the first release has (`create`,
//! `open`, `writer`, `reader`, `blocking_put`, `blocking_get`, `put`, `get`, `close`), and
//! depends on nothing but `shmchan`, `libc` and `tokio`, so that `scripts/ab.sh` can build it
//! outside the workspace against an old commit's library.
//!
//! `cross_rate MODE BATCH ITEMS`, MODE `blocking` or `async`: the producer (this process,
//! CPU 0) puts ITEMS `u64`s in batches of BATCH; the consumer (a child process, CPU 1) gets
//! them in batches of BATCH (ITEMS rounded down to whole batches), checks the first and last item of every batch, and prints the
//! rate from its first item to its last in millions of items per second.

use std::process::{Command, Stdio};
use std::time::Instant;

use shmchan::{ChannelIo, Options};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn pin(cpu: usize) {
    // SAFETY: `set` is a zeroed, properly sized cpu_set_t that CPU_SET writes into; a
    // refused affinity only leaves the thread unpinned.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn arg(n: usize) -> Res<String> {
    std::env::args()
        .nth(n)
        .ok_or_else(|| "usage: cross_rate blocking|async BATCH ITEMS".into())
}

fn main() -> Res<()> {
    let (mode, batch, items) = (arg(1)?, arg(2)?.parse::<usize>()?, arg(3)?.parse::<u64>()?);
    if batch == 0 || items < batch as u64 {
        return Err("BATCH must be at least 1 and at most ITEMS".into());
    }
    let items = items - items % batch as u64; // whole batches only
    if let Ok(name) = std::env::var("CROSS_RATE_CONSUME") {
        pin(1);
        let mbps = consume(&name, &mode, batch, items)?;
        println!("{mbps:.2}");
        return Ok(());
    }
    pin(0);
    let name = format!("ab-{}", std::process::id());
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 16))?;
    let child = Command::new(std::env::current_exe()?)
        .args(std::env::args().skip(1))
        .env("CROSS_RATE_CONSUME", &name)
        .stdout(Stdio::piped())
        .spawn()?;
    let produced = produce(&chan, &mode, batch, items);
    let out = child.wait_with_output()?;
    drop(chan); // not persistent: the last handle removes the channel
    produced?;
    if !out.status.success() {
        return Err(format!("the consumer failed: {}", out.status).into());
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

fn produce(chan: &ChannelIo<u64>, mode: &str, batch: usize, items: u64) -> Res<()> {
    let mut w = chan.writer()?;
    let mut buf = vec![0u64; batch];
    let mut next = 0u64;
    let mut fill = |buf: &mut [u64]| {
        for v in buf.iter_mut() {
            *v = next;
            next += 1;
        }
    };
    if mode == "async" {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            for _ in 0..items / batch as u64 {
                fill(&mut buf);
                w.put(&buf).await?;
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
    } else {
        for _ in 0..items / batch as u64 {
            fill(&mut buf);
            w.blocking_put(&buf)?;
        }
    }
    w.close();
    Ok(())
}

fn consume(name: &str, mode: &str, batch: usize, items: u64) -> Res<f64> {
    let chan = ChannelIo::<u64>::open(name)?;
    let mut r = chan.reader()?;
    let mut buf = vec![0u64; batch];
    let mut start = None;
    let mut check = |buf: &[u64], k: u64| -> Res<()> {
        start.get_or_insert_with(Instant::now);
        let first = k * batch as u64;
        if buf[0] != first || buf[batch - 1] != first + batch as u64 - 1 {
            return Err(format!("batch {k}: got {} … {}", buf[0], buf[batch - 1]).into());
        }
        Ok(())
    };
    if mode == "async" {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            for k in 0..items / batch as u64 {
                r.get(&mut buf).await?;
                check(&buf, k)?;
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
    } else {
        for k in 0..items / batch as u64 {
            r.blocking_get(&mut buf)?;
            check(&buf, k)?;
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(items as f64 / secs / 1e6)
}
