//! Soak: stream many items through two processes, killing and restarting the reader at
//! random moments, and check every item.
//!
//! ```text
//! cargo run --release -p shmchan-peers --bin soak -- [--items N] [--restart-ms MIN MAX] [--seed S]
//! scripts/soak.sh            # 10^10 items
//! ```
//!
//! Item `i` has value `i`. The writer (this process) puts `0..N` in random batches of 1 to
//! 4096 and closes. A reader process is started, killed with SIGKILL after a random time,
//! and replaced, again and again. Each reader records, before it consumes a batch, how far
//! it has checked (a progress file). Its successor first reads the channel's `head` (the
//! first item no reader consumed) and checks that it is not beyond where the dead reader had
//! checked — no item was skipped — then that it receives exactly `head, head+1, …`: nothing
//! consumed is delivered again, nothing is reordered, no torn item appears. The last reader
//! drains to the writer's close and checks it ends at `N`. Prints the figures.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shmchan::{ChannelIo, ErrorKind, Options, WriterFront};
use shmchan_testkit::Rng;

fn arg<T: std::str::FromStr>(args: &[String], flag: &str, i: usize) -> Option<T> {
    let p = args.iter().position(|a| a == flag)?;
    args.get(p + 1 + i)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(name) = arg::<String>(&args, "--reader", 0) {
        let progress: String = arg(&args, "--progress", 0).ok_or("--progress PATH")?;
        let max_start: u64 = arg(&args, "--max-start", 0).unwrap_or(0);
        return reader(&name, &progress, max_start);
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
    let progress = std::env::temp_dir().join(format!("{name}.progress"));
    std::fs::write(&progress, 0u64.to_ne_bytes())?;
    let progress_path = progress.clone();
    let spawn = move |max_start: u64| -> std::io::Result<Child> {
        Command::new(&exe)
            .args(["--reader", &reader_name])
            .arg("--progress")
            .arg(&progress_path)
            .args(["--max-start", &max_start.to_string()])
            .stdout(Stdio::piped())
            .spawn()
    };
    let checked_so_far = move || -> u64 {
        std::fs::read(&progress)
            .ok()
            .and_then(|b| {
                b.get(..8)
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
            })
            .unwrap_or(0)
    };

    // The reader killer runs beside the writer.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = std::sync::Arc::clone(&stop);
    let krng = Rng(rng.next_u64() | 1);
    let first = spawn(0)?;
    let killer = std::thread::spawn(move || {
        kill_readers(first, &stop2, krng, (min_ms, max_ms), spawn, checked_so_far)
    });

    let start = Instant::now();
    let deaths_seen = write_all(&mut w, items, &mut rng)?;
    w.close();
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (last, kills) = killer.join().map_err(|_| "killer panicked")??;
    let out = last.wait_with_output()?;
    let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{name}.progress")));
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

/// A reader: resumes at the channel's head, checks every item, records its progress before
/// each consume, reports at the close.
fn reader(name: &str, progress: &str, max_start: u64) -> Result<(), Box<dyn std::error::Error>> {
    use std::os::unix::fs::FileExt;
    // Read before claiming: no other reader is alive (the previous one was killed and
    // waited for), so the head is where we must resume.
    let head = ChannelIo::inspect(name)?.head;
    if head > max_start {
        eprintln!("soak reader: resumes at {head}, but only up to {max_start} was checked");
        std::process::exit(4);
    }
    let progress = std::fs::OpenOptions::new().write(true).open(progress)?;
    let chan = ChannelIo::<u64>::open(name)?;
    let mut r = chan.reader()?;
    let mut expect = head;
    loop {
        let view = match r.blocking_peek_some() {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::Closed => break,
            Err(e) => return Err(e.into()),
        };
        for v in view.iter() {
            if *v != expect {
                eprintln!("soak reader: expected {expect}, got {v} (resumed at {head})");
                std::process::exit(3);
            }
            expect += 1;
        }
        // Checked up to here: recorded before the items are released to the writer.
        progress.write_at(&expect.to_ne_bytes(), 0)?;
        view.consume_all();
    }
    println!("ok {expect}");
    Ok(())
}

/// Waits until `child` exits or `timeout` passes, on a pidfd (which does not reap the child:
/// `try_wait` then tells which).
fn exits_within(child: &Child, timeout: Duration) -> Result<(), String> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).ok_or("no pid")?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| e.to_string())?;
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Puts items 0..`items` in random batches of 1 to 4096, resending after each reader death
/// what the dead reader's put did not take; returns how many deaths the puts saw.
fn write_all(
    w: &mut WriterFront<u64>,
    items: u64,
    rng: &mut Rng,
) -> Result<u64, Box<dyn std::error::Error>> {
    let mut deaths_seen = 0u64;
    let mut buf = vec![0u64; 4096];
    let mut next = 0u64;
    while next < items {
        let n = (1 + rng.below(4096)).min(items - next) as usize;
        for (i, v) in buf[..n].iter_mut().enumerate() {
            *v = next + i as u64;
        }
        let mut done = 0;
        while done < n {
            match w.blocking_put(&buf[done..n]) {
                Ok(()) => done = n,
                // The reader was killed while we waited: what it had not consumed stays in
                // the ring; the next put waits for its successor.
                Err(e) if e.kind() == ErrorKind::PeerGone => {
                    done += e.accepted();
                    deaths_seen += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        next += n as u64;
    }
    Ok(deaths_seen)
}

/// Kills the reader after a random time (`ms` between the bounds), starts its successor at
/// the progress the dead one recorded, and so on until `stop`; returns the last reader and
/// the number of kills.
fn kill_readers(
    first: Child,
    stop: &std::sync::atomic::AtomicBool,
    mut rng: Rng,
    (min_ms, max_ms): (u64, u64),
    spawn: impl Fn(u64) -> std::io::Result<Child>,
    checked_so_far: impl Fn() -> u64,
) -> Result<(Child, u64), String> {
    let mut current = first;
    let mut kills = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        let ms = min_ms + rng.below(max_ms - min_ms + 1);
        // The soak's own pacing: a reader lives for a random time, then is killed; the
        // wait ends early if it exits by itself.
        exits_within(&current, Duration::from_millis(ms))?;
        if let Ok(Some(status)) = current.try_wait() {
            if status.success() {
                break; // it read to the writer's close, which just happened
            }
            return Err(format!("a reader failed: {status}"));
        }
        if stop.load(std::sync::atomic::Ordering::Acquire) {
            break;
        }
        current.kill().map_err(|e| e.to_string())?; // SIGKILL
        let status = current.wait().map_err(|e| e.to_string())?;
        // Killed as intended, unless it had already exited: then it must have succeeded.
        use std::os::unix::process::ExitStatusExt;
        if status.signal() != Some(9) && !status.success() {
            return Err(format!("a reader failed before it was killed: {status}"));
        }
        kills += 1;
        current = spawn(checked_so_far()).map_err(|e| e.to_string())?;
    }
    Ok((current, kills))
}
