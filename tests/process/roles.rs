//! The child roles several subjects share: a streaming writer and reader (with the jitter
//! that makes each side sleep), and a holder of one end.

use std::io::Read;
use std::time::Duration;

use shmchan::{Barrier, ChannelIo, End, ErrorKind, Options, WaitStrategy};
use shmchan_testkit::Rng;

use crate::harness::{env, env_u64};
use crate::waiting::{get_with, in_sleeping_syscall, put_with, Via};

/// The environment of a stream role: channel NAME, COUNT items in batches of up to MAXB,
/// capacity CAP, and SEED for the batch sizes.
pub fn stream_env(
    name: &str,
    count: u64,
    maxb: u64,
    cap: u64,
    seed: u64,
) -> Vec<(&'static str, String)> {
    vec![
        ("NAME", name.to_string()),
        ("COUNT", count.to_string()),
        ("MAXB", maxb.to_string()),
        ("CAP", cap.to_string()),
        ("SEED", seed.to_string()),
    ]
}

/// The options a child opens its channel with: CAP, NOSPIN (sleep at once) and BARRIER.
pub fn child_options() -> Options {
    let mut o = Options::new().capacity(env_u64("CAP") as usize);
    if std::env::var("NOSPIN").is_ok() {
        o = o.wait_strategy(WaitStrategy::Sleep);
    }
    match std::env::var("BARRIER").as_deref() {
        Ok("fence") => o = o.barrier(Barrier::Fence),
        Ok("membarrier") => o = o.barrier(Barrier::Membarrier),
        _ => {}
    }
    o
}

/// The u64 channel NAME, created or opened with [`child_options`].
pub fn child_chan() -> Result<ChannelIo<u64>, String> {
    ChannelIo::<u64>::create_or_open(&env("NAME"), child_options()).map_err(|e| e.to_string())
}

/// After a stream role claimed its end: says so if READY is set; ASYNC, and a runtime for it.
pub fn stream_role_start() -> Result<(bool, tokio::runtime::Runtime), String> {
    if std::env::var("READY").is_ok() {
        println!("claimed");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok((std::env::var("ASYNC").is_ok(), rt))
}

/// With JITTER set, the two sides take turns to be the slow one, in phases of 4096 items
/// of the writer's position (`tail`; the writer is slow in odd phases, the reader in even
/// ones): the slow side computes for a random 0..JITTER steps before each batch, so the fast
/// side finds the ring full (or empty) and sleeps on nearly every call. (Work, not a sleep:
/// nothing here waits on time.)
///
/// Whether the fast side then really sleeps depends on timing: on a membarrier channel its
/// re-check comes after a `membarrier(2)`, which a loaded VM can stretch to milliseconds, and
/// by then the slow side has often published. With GATE=k set, the slow side also holds
/// every k-th batch until the peer's thread is blocked in its doorbell's `poll`/`epoll_wait`,
/// so those batches wake a real sleeper whatever the timing. The phase is read from `tail`,
/// which only the writer moves, so the two cannot both hold: a writer holding means an odd
/// phase, in which the reader is fast (and a reader whose phase ended while it held lets go).
/// The fast peer must then come to sleep: the reader on an empty ring, the writer (while it
/// has items left) on a full one.
pub struct Jitter {
    rng: Rng,
    max: u64,
    writer: bool,
    gate: u64,
    batches: u64,
    name: String,
    peer: Option<u32>,
    /// The position of the last batch (a progress line each 65 536 items).
    reported: u64,
    /// Gates that saw the peer asleep (each one a distinct sleep of the peer's, which the
    /// batch after the gate ends).
    gated: u64,
}

impl Jitter {
    fn from_env(seed: u64, writer: bool) -> Jitter {
        let var = |k: &str| std::env::var(k).map_or(0, |_| env_u64(k));
        Jitter {
            rng: Rng(seed),
            max: var("JITTER"),
            writer,
            gate: var("GATE"),
            batches: 0,
            name: env("NAME"),
            peer: None,
            reported: 0,
            gated: 0,
        }
    }

    /// Whether this side is the slow one while the writer's position is `tail`.
    fn slow(&self, tail: u64) -> bool {
        self.max != 0 && ((tail / 4096) % 2 == 1) == self.writer
    }

    /// Called before each batch; `tail` reads the writer's position (the items committed),
    /// and `count` is how many the writer puts in all.
    fn before_batch(&mut self, tail: impl Fn() -> u64, count: u64) {
        let position = tail();
        if position >> 16 != self.reported >> 16 {
            println!("at {position}"); // for the parent's progress watchdog
        }
        self.reported = position;
        if !self.slow(position) {
            return;
        }
        let mut x = self.rng.next_u64();
        for _ in 0..self.rng.below(self.max) {
            x = std::hint::black_box(x.rotate_left(5) ^ 0x9e37_79b9_7f4a_7c15);
        }
        std::hint::black_box(x);
        self.batches += 1;
        if self.gate == 0 || self.batches % self.gate != 0 {
            return;
        }
        if self.peer.is_none() {
            let info = ChannelIo::inspect(&self.name).ok();
            let end = info.map(|i| if self.writer { i.reader } else { i.writer });
            self.peer = end.and_then(|e| e.pid);
        }
        let Some(pid) = self.peer else { return };
        let start = std::time::Instant::now();
        // Bounded: a peer that never sleeps (a bug) is caught by the parent's sleep floor.
        while start.elapsed() < Duration::from_secs(5) {
            let t = tail();
            if !self.slow(t) || t >= count {
                return; // the phase ended, or the writer has nothing left to put
            }
            if in_sleeping_syscall(pid, pid as i32) {
                self.gated += 1;
                return;
            }
            std::thread::yield_now();
        }
    }
}

/// Puts 0..COUNT in random batches (1..=MAXB), then closes (or aborts with ABORT).
pub fn role_stream_writer() -> Result<(), String> {
    let count = env_u64("COUNT");
    let maxb = env_u64("MAXB");
    let mut rng = Rng(env_u64("SEED") | 1);
    let chan = child_chan()?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    let (asynch, rt) = stream_role_start()?;
    let mut next = 0u64;
    let mut buf = Vec::new();
    let mut jitter = Jitter::from_env(rng.next_u64() | 1, true);
    while next < count {
        jitter.before_batch(|| next, u64::MAX);
        let b = (1 + rng.below(maxb)).min(count - next);
        buf.clear();
        buf.extend(next..next + b);
        if std::env::var("EVENTLOOP").is_ok() {
            put_with(&mut w, &buf, Via::EventLoop).map_err(|e| e.to_string())?;
        } else if asynch {
            rt.block_on(w.put(&buf)).map_err(|e| e.to_string())?;
        } else {
            w.blocking_put(&buf).map_err(|e| e.to_string())?;
        }
        next += b;
    }
    let sleeps = w.wait_stats().sleeps;
    let timed = w.wait_stats().timed_sleeps;
    match std::env::var("ABORT") {
        Ok(reason) => w.abort(&reason),
        Err(_) => w.close(),
    }
    println!("wrote {count}");
    println!("sleeps {sleeps}");
    println!("gated {}", jitter.gated);
    println!("timed {timed}");
    Ok(())
}

/// Reads with random get sizes (1..=MAXB), checking item i == i, until the stream ends;
/// prints "read N <end>" where <end> names the error that ended it.
pub fn role_stream_reader() -> Result<(), String> {
    let maxb = env_u64("MAXB");
    let mut rng = Rng(env_u64("SEED").wrapping_mul(7) | 1);
    let chan = child_chan()?;
    let mut r = chan.reader().map_err(|e| e.to_string())?;
    let (asynch, rt) = stream_role_start()?;
    let mut next = 0u64;
    let mut buf = vec![0u64; maxb as usize];
    let count = std::env::var("COUNT").map_or(0, |_| env_u64("COUNT"));
    let mut jitter = Jitter::from_env(rng.next_u64() | 1, false);
    let end = loop {
        jitter.before_batch(|| next + chan.len() as u64, count);
        let b = 1 + rng.below(maxb) as usize;
        let to = &mut buf[..b];
        let res = if std::env::var("EVENTLOOP").is_ok() {
            get_with(&mut r, to, Via::EventLoop)
        } else if asynch {
            rt.block_on(r.get(to))
        } else {
            r.blocking_get(to)
        };
        match res {
            Ok(()) => {
                for (i, v) in to.iter().enumerate() {
                    if *v != next + i as u64 {
                        return Err(format!("item {} is {v}", next + i as u64));
                    }
                }
                next += b as u64;
            }
            Err(e) if e.is_end_of_stream() => {
                // Nothing was removed: drain the rest with get_some.
                let mut rest = e.remaining() as u64;
                while rest > 0 {
                    let k = r.blocking_get_some(&mut buf).map_err(|e| e.to_string())?;
                    for (i, v) in buf[..k].iter().enumerate() {
                        if *v != next + i as u64 {
                            return Err(format!("item {} is {v}", next + i as u64));
                        }
                    }
                    next += k as u64;
                    rest -= k as u64;
                }
                break match e.kind() {
                    ErrorKind::Closed => "closed".to_string(),
                    ErrorKind::Aborted => format!("aborted:{}", e.reason().unwrap_or_default()),
                    ErrorKind::PeerGone => "gone".to_string(),
                    _ => unreachable!(),
                };
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    println!("read {next} {end}");
    println!("sleeps {}", r.wait_stats().sleeps);
    println!("gated {}", jitter.gated);
    println!("timed {}", r.wait_stats().timed_sleeps);
    Ok(())
}

/// Claims an end; a writer puts PUT items. Prints "ready", then waits for stdin to close
/// (the parent kills it, or closes stdin to let it exit normally).
pub fn role_hold(end: End) -> Result<(), String> {
    let chan = child_chan()?;
    let put = std::env::var("PUT")
        .ok()
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0);
    let _w;
    let _r;
    match end {
        End::Writer => {
            let mut w = chan.writer().map_err(|e| e.to_string())?;
            w.blocking_put(&(0..put).collect::<Vec<u64>>())
                .map_err(|e| e.to_string())?;
            _w = Some(w);
        }
        End::Reader => {
            let mut r = match chan.reader() {
                Ok(r) => r,
                Err(e)
                    if e.kind() == ErrorKind::EndTaken && std::env::var("REPORT_TAKEN").is_ok() =>
                {
                    println!("taken");
                    return Ok(());
                }
                Err(e) => return Err(e.to_string()),
            };
            let get: usize = std::env::var("GET")
                .ok()
                .and_then(|g| g.parse().ok())
                .unwrap_or(0);
            let mut buf = vec![0u64; get];
            r.blocking_get(&mut buf).map_err(|e| e.to_string())?;
            if buf.iter().enumerate().any(|(i, v)| *v != i as u64) {
                return Err("holder read out of order".into());
            }
            _r = Some(r);
        }
    }
    if let Ok(fake) = std::env::var("FAKE_PID") {
        // Pretend to live in another pid namespace: record a pid nobody can watch.
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(shmchan::channel_dir(&env("NAME")).join("ring"))
            .map_err(|e| e.to_string())?;
        let off = (shmchan::layout::ENDS
            + if end == End::Writer {
                0
            } else {
                shmchan::layout::END_RECORD_SIZE
            }) as u64;
        let pid: u32 = fake.parse().map_err(|_| "FAKE_PID")?;
        f.write_at(&pid.to_ne_bytes(), off)
            .map_err(|e| e.to_string())?;
    }
    println!("ready");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}
