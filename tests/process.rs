//! Cross-process tests: every test here runs its peers as real processes.
//!
//! This file is its own harness (`harness = false`, libtest-mimic): when started with
//! `SHMCHAN_TEST_ROLE` set, the binary plays that role (a writer, a reader, a holder...) in a
//! child process instead of running tests. Every child arms `alarm(2)` so it cannot outlive a
//! broken test, and the parent bounds every wait with a watchdog, so a bug fails a test
//! instead of hanging CI.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use shmchan::{
    Barrier, ChannelIo, ClaimError, End, GetError, OpenError, Options, PutError, WaitStrategy,
};
use wait_timeout::ChildExt;

type R = Result<(), Failed>;
type TestFn = fn() -> R;

const ROLE: &str = "SHMCHAN_TEST_ROLE";
/// Only a safety net for a parent that died: the parent's watchdogs bound every wait, and a
/// long stress child may run for minutes on a slow machine while it makes progress.
const CHILD_ALARM_SECS: u32 = 900;
/// How long a test waits for a child before calling it a hang: 60 s, or
/// `SHMCHAN_TEST_TIMEOUT` seconds (`scripts/control.sh` shortens it, since there the hang is
/// the expected outcome).
static TIMEOUT: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    Duration::from_secs(
        std::env::var("SHMCHAN_TEST_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
});

// ---------------------------------------------------------------------------------------
// Helpers

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// xorshift64*: reproducible batch sizes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A closure running on its own thread, awaited with a time limit.
struct Background<T> {
    rx: mpsc::Receiver<T>,
    what: String,
    /// The thread's kernel thread id (for [`until_asleep`]).
    tid: i32,
}

/// Starts `f` on a thread; [`Background::wait`] collects its result.
fn background<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Background<T> {
    let (tx, rx) = mpsc::channel();
    let (tid_tx, tid_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: gettid(2) has no preconditions.
        let _ = tid_tx.send(unsafe { libc::gettid() });
        let _ = tx.send(f());
    });
    Background {
        rx,
        what: what.to_string(),
        // The thread sends its id first thing; a thread that could not start leaves -1,
        // which no task has (`until_asleep` then times out and says so).
        tid: tid_rx.recv_timeout(*TIMEOUT).unwrap_or(-1),
    }
}

impl<T> Background<T> {
    /// Fails if the closure takes longer than `limit` (its thread is left blocked; the
    /// harness exits at the end anyway).
    fn wait(self, limit: Duration) -> Result<T, Failed> {
        self.rx.recv_timeout(limit).map_err(|_| {
            Failed::from(format!(
                "{}: still waiting after {limit:?} (hang)",
                self.what
            ))
        })
    }
}

/// Runs `f` on a thread and fails if it takes longer than `limit`.
fn watchdog<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failed> {
    background(what, f).wait(limit)
}

struct Peer {
    child: Child,
    role: String,
}

impl Peer {
    /// Starts this test binary as `role` with `env` pairs.
    fn spawn(role: &str, env: &[(&str, String)]) -> Peer {
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Peer {
            child: cmd.spawn().expect("spawn child"),
            role: role.to_string(),
        }
    }

    fn spawn_as_nobody(role: &str, env: &[(&str, String)]) -> Peer {
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.uid(65534).gid(65534);
        Peer {
            child: cmd.spawn().expect("spawn child"),
            role: role.to_string(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child's first stdout line (e.g. "ready").
    fn read_line(&mut self) -> Result<String, Failed> {
        let out = self.child.stdout.take().ok_or("stdout already taken")?;
        let role = self.role.clone();
        let (line, out) = watchdog(*TIMEOUT, &format!("{role}: first line"), move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            (line, r.into_inner())
        })?;
        self.child.stdout = Some(out);
        Ok(line.trim().to_string())
    }

    /// Waits for exit; returns (exit code, rest of stdout).
    fn finish(mut self) -> Result<(i32, String), Failed> {
        drop(self.child.stdin.take());
        let status = match self
            .child
            .wait_timeout(*TIMEOUT)
            .map_err(|e| e.to_string())?
        {
            Some(s) => s,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(
                    format!("{}: did not exit within {:?} (hang)", self.role, *TIMEOUT).into(),
                );
            }
        };
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let code = status.code().unwrap_or(-1);
        Ok((code, out.trim().to_string()))
    }

    /// Waits for a successful exit and returns stdout.
    fn success(self) -> Result<String, Failed> {
        let role = self.role.clone();
        let (code, out) = self.finish()?;
        if code != 0 {
            return Err(format!("{role} exited with {code}; stdout: {out}").into());
        }
        Ok(out)
    }

    /// Like [`success`](Self::success) for a long-running child that prints a progress line
    /// ("at N") now and then: it may run as long as it keeps making progress, and is called
    /// hung when no line came for [`TIMEOUT`]. A lost wakeup stops a child for good; a slow
    /// machine (a loaded CI VM, where one `membarrier(2)` can take milliseconds) only slows
    /// it. Progress lines are left out of the returned output.
    fn success_while_progressing(mut self) -> Result<String, Failed> {
        let out = self.child.stdout.take().ok_or("stdout already taken")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut kept = Vec::new();
        loop {
            match rx.recv_timeout(*TIMEOUT) {
                Ok(line) if line.starts_with("at ") => {}
                Ok(line) => kept.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: did not exit, no progress for {:?} (hang)",
                        self.role, *TIMEOUT
                    )
                    .into());
                }
            }
        }
        let role = self.role.clone();
        let (code, _) = self.finish()?;
        let out = kept.join("\n");
        if code != 0 {
            return Err(format!("{role} exited with {code}; stdout: {out}").into());
        }
        Ok(out)
    }

    fn kill9(&mut self) {
        // std's kill sends SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test that fails while a child still runs (a hang, an early `?`) must not leave it behind
/// (it would hold its channel's files until its alarm): kill it.
impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

fn check(cond: bool, what: impl Into<String>) -> R {
    if cond {
        Ok(())
    } else {
        Err(Failed::from(what.into()))
    }
}

/// The number on a child's "KEY N" output line (0 if absent).
fn stat(out: &str, key: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// First line of a child's output (after an optional "claimed"), and its sleep count.
fn report(out: &str) -> (&str, u64) {
    let first = out
        .lines()
        .find(|l| *l != "claimed" && !l.starts_with("at "))
        .unwrap_or("");
    let sleeps = out
        .lines()
        .find_map(|l| l.strip_prefix("sleeps "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (first, sleeps)
}

/// Reads a 32-bit word of a channel's header from its file (white-box: the test waits for a
/// side to announce its sleep instead of guessing with a fixed delay).
fn header_word(name: &str, offset: u64) -> u32 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(shmchan::channel_dir(name).join("ring")).expect("ring");
    let mut b = [0u8; 4];
    f.read_at(&mut b, offset).expect("read header");
    u32::from_ne_bytes(b)
}

/// Offsets of the waiting words: the reader waiting for data, the writer waiting for room.
const DATA_WAITING: u64 = shmchan::layout::DATA_WAITING as u64;
const ROOM_WAITING: u64 = shmchan::layout::ROOM_WAITING as u64;

/// Waits (bounded) until the side owning `word`, the thread `tid` of this process, sleeps on
/// its doorbell: it announced (the word is 1) and it is blocked in `poll`/`epoll_wait`.
///
/// The announcement alone is not enough: on a membarrier channel the waiter calls
/// `membarrier(2)` between announcing and re-checking, and on a loaded VM that call can take
/// milliseconds (an IPI to a vCPU the host has descheduled). A test that acted on the
/// announcement would then race the re-check, and the waiter might never sleep.
fn until_asleep(name: &str, word: u64, tid: i32) -> R {
    let start = std::time::Instant::now();
    while header_word(name, word) != 1 || !in_sleeping_syscall(std::process::id(), tid) {
        if start.elapsed() > *TIMEOUT {
            return Err(format!("{name}: the waiter never went to sleep").into());
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// Whether thread `tid` of process `pid` is blocked in one of the calls a waiting end sleeps
/// in (`/proc/PID/task/TID/syscall` names the system call a blocked task is in, and says
/// "running" for a running one).
fn in_sleeping_syscall(pid: u32, tid: i32) -> bool {
    const SLEEPS: &[libc::c_long] = &[
        #[cfg(target_arch = "x86_64")]
        libc::SYS_poll,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_epoll_wait,
        libc::SYS_ppoll,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
    ];
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<libc::c_long>().ok())
        .is_some_and(|nr| SLEEPS.contains(&nr))
}

fn gone(name: &str) -> bool {
    !shmchan::channel_dir(name).exists()
}

/// How a test end waits: the blocking twin, tokio (a runtime of its own), or an event loop
/// of the caller's (`prepare_wait`, poll(2) on `wait_fd`, `finish_wait`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Blocking,
    Tokio,
    EventLoop,
}

const ALL_VIAS: [Via; 3] = [Via::Blocking, Via::Tokio, Via::EventLoop];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// poll(2) on an end's wait descriptor until it is readable (no timeout: the test's
/// watchdog bounds it).
fn poll_readable(fd: std::os::fd::RawFd) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    while unsafe { libc::poll(&mut p, 1, -1) } < 0 {}
}

/// `get` through `via`.
fn get_with(r: &mut shmchan::ReaderFront<u64>, buf: &mut [u64], via: Via) -> Result<(), GetError> {
    match via {
        Via::Blocking => r.blocking_get(buf),
        Via::Tokio => runtime().block_on(r.get(buf)),
        Via::EventLoop => {
            use std::os::fd::AsRawFd;
            let fd = r.wait_fd()?.as_raw_fd();
            let mut filled = 0;
            while filled < buf.len() {
                // Whole if it fits the ring, else in pieces.
                let want = buf.len() - filled;
                if want <= r.capacity() {
                    if r.try_get(&mut buf[filled..])
                        .map_err(|e| add_filled(e, filled))?
                    {
                        return Ok(());
                    }
                } else {
                    filled += r
                        .try_get_some(&mut buf[filled..])
                        .map_err(|e| add_filled(e, filled))?;
                    continue;
                }
                let need = want.min(r.capacity());
                if r.prepare_wait(need).map_err(|e| add_filled(e, filled))?
                    == shmchan::Readiness::Wait
                {
                    poll_readable(fd);
                    r.finish_wait()?;
                }
            }
            Ok(())
        }
    }
}

fn add_filled(e: GetError, n: usize) -> GetError {
    match e {
        GetError::PeerGone {
            name,
            remaining,
            filled,
        } => GetError::PeerGone {
            name,
            remaining,
            filled: filled + n,
        },
        e => e,
    }
}

/// `put` through `via`.
fn put_with(w: &mut shmchan::WriterFront<u64>, items: &[u64], via: Via) -> Result<(), PutError> {
    match via {
        Via::Blocking => w.blocking_put(items),
        Via::Tokio => runtime().block_on(w.put(items)),
        Via::EventLoop => {
            use std::os::fd::AsRawFd;
            let fd = w.wait_fd()?.as_raw_fd();
            let mut done = 0;
            let counted = |e: PutError, done: usize| match e {
                PutError::PeerGone { name, .. } => PutError::PeerGone {
                    name,
                    accepted: done,
                },
                PutError::Closed { name, .. } => PutError::Closed {
                    name,
                    accepted: done,
                },
                e => e,
            };
            loop {
                done += w.try_put(&items[done..]).map_err(|e| counted(e, done))?;
                if done == items.len() {
                    return Ok(());
                }
                if w.prepare_wait(1).map_err(|e| counted(e, done))? == shmchan::Readiness::Wait {
                    poll_readable(fd);
                    w.finish_wait()?;
                }
            }
        }
    }
}

fn no_spin() -> Options {
    Options::new().wait_strategy(WaitStrategy::Sleep)
}

// ---------------------------------------------------------------------------------------
// Child roles

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"))
}
fn env_u64(k: &str) -> u64 {
    env(k)
        .parse()
        .unwrap_or_else(|_| panic!("{k} is not a number"))
}

fn role_main(role: &str) -> i32 {
    // SAFETY: alarm(2) only arms a timer; its default action ends this child if a test bug
    // would leave it waiting forever.
    unsafe { libc::alarm(CHILD_ALARM_SECS) };
    let r = match role {
        "stream_writer" => role_stream_writer(),
        "stream_reader" => role_stream_reader(),
        "hold_writer" => role_hold(End::Writer),
        "hold_reader" => role_hold(End::Reader),
        "open_report" => role_open_report(),
        "create_persist" => role_create_persist(),
        "abort_empty" => role_abort_empty(),
        "records_writer" => role_records_writer(),
        "fork_guard" => role_fork_guard(),
        "restart_writer" => role_restart_writer(),
        "pingpong" => role_pingpong(),
        "no_membarrier" => role_no_membarrier(),
        other => Err(format!("unknown role {other}")),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child {role}: {e}");
            3
        }
    }
}

fn child_options() -> Options {
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

fn child_chan() -> Result<ChannelIo<u64>, String> {
    ChannelIo::<u64>::create_or_open(&env("NAME"), child_options()).map_err(|e| e.to_string())
}

/// After a stream role claimed its end: says so if READY is set; ASYNC, and a runtime for it.
fn stream_role_start() -> Result<(bool, tokio::runtime::Runtime), String> {
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
struct Jitter {
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
        let mut x = self.rng.next();
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
fn role_stream_writer() -> Result<(), String> {
    let count = env_u64("COUNT");
    let maxb = env_u64("MAXB");
    let mut rng = Rng(env_u64("SEED") | 1);
    let chan = child_chan()?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    let (asynch, rt) = stream_role_start()?;
    let mut next = 0u64;
    let mut buf = Vec::new();
    let mut jitter = Jitter::from_env(rng.next() | 1, true);
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
fn role_stream_reader() -> Result<(), String> {
    let maxb = env_u64("MAXB");
    let mut rng = Rng(env_u64("SEED").wrapping_mul(7) | 1);
    let chan = child_chan()?;
    let mut r = chan.reader().map_err(|e| e.to_string())?;
    let (asynch, rt) = stream_role_start()?;
    let mut next = 0u64;
    let mut buf = vec![0u64; maxb as usize];
    let count = std::env::var("COUNT").map_or(0, |_| env_u64("COUNT"));
    let mut jitter = Jitter::from_env(rng.next() | 1, false);
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
                break match e {
                    GetError::Closed { .. } => "closed".to_string(),
                    GetError::Aborted { reason, .. } => format!("aborted:{reason}"),
                    GetError::PeerGone { .. } => "gone".to_string(),
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

/// One side of a ping-pong of COUNT rounds over two channels (NAME carries pings, NAME_B
/// pongs): the initiator puts `i` on NAME and waits for `i` on NAME_B; the responder echoes.
/// In phases of 256 rounds one side spins (the default strategy) and the other sleeps at
/// once (`WaitStrategy::Sleep`) after a random 0..DELAY steps of work, so the sleeper
/// announces its sleep at random moments around the spinner's publish: the lost-wakeup race,
/// tried once per round. Each side waits on the other, so one lost wakeup hangs both.
fn role_pingpong() -> Result<(), String> {
    let rounds = env_u64("COUNT");
    let delay = env_u64("DELAY");
    let initiator = env("SIDE") == "initiator";
    let mut rng = Rng(env_u64("SEED").wrapping_mul(if initiator { 3 } else { 5 }) | 1);
    let open = |n: &str| ChannelIo::<u64>::create_or_open(n, child_options());
    let (ping, pong) = (
        open(&env("NAME")).map_err(|e| e.to_string())?,
        open(&env("NAME_B")).map_err(|e| e.to_string())?,
    );
    let (mut w, mut r) = if initiator {
        (ping.writer(), pong.reader())
    } else {
        (pong.writer(), ping.reader())
    };
    let (w, r) = (
        w.as_mut().map_err(|e| e.to_string())?,
        r.as_mut().map_err(|e| e.to_string())?,
    );
    let mut got = [0u64];
    for i in 0..rounds {
        if i % 1024 == 0 {
            println!("at {i}"); // for the parent's progress watchdog
        }
        let sleeper = ((i / 256) % 2 == 0) == initiator;
        if i % 256 == 0 {
            r.set_wait_strategy(if sleeper {
                WaitStrategy::Sleep
            } else {
                WaitStrategy::default()
            });
        }
        if initiator {
            w.blocking_put(&[i]).map_err(|e| e.to_string())?;
        }
        if sleeper {
            let mut x = rng.next();
            for _ in 0..rng.below(delay) {
                x = std::hint::black_box(x.rotate_left(5) ^ 0x9e37_79b9_7f4a_7c15);
            }
            std::hint::black_box(x);
        }
        r.blocking_get(&mut got).map_err(|e| e.to_string())?;
        if got[0] != i {
            return Err(format!("round {i}: got {}", got[0]));
        }
        if !initiator {
            w.blocking_put(&[i]).map_err(|e| e.to_string())?;
        }
    }
    println!("rounds {rounds}");
    println!("sleeps {}", r.wait_stats().sleeps);
    println!("barriers {}", r.wait_stats().barriers);
    Ok(())
}

/// Claims an end; a writer puts PUT items. Prints "ready", then waits for stdin to close
/// (the parent kills it, or closes stdin to let it exit normally).
fn role_hold(end: End) -> Result<(), String> {
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
                Err(ClaimError::EndTaken { .. }) if std::env::var("REPORT_TAKEN").is_ok() => {
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

/// A record type as an application would define it.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Record {
    seq: u64,
    x: f32,
    y: f32,
}

/// Writes COUNT records in place (reserve, fill, commit) in chunks of random size.
fn role_records_writer() -> Result<(), String> {
    let count = env_u64("COUNT");
    let mut rng = Rng(env_u64("SEED") | 1);
    let chan = ChannelIo::<Record>::create_or_open(
        &env("NAME"),
        Options::new()
            .capacity(env_u64("CAP") as usize)
            .schema("record/v1"),
    )
    .map_err(|e| e.to_string())?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    let mut seq = 0u64;
    while seq < count {
        let n = (1 + rng.below(300)).min(count - seq) as usize;
        let mut slots = w.blocking_reserve(n).map_err(|e| e.to_string())?;
        for s in slots.iter_mut() {
            *s = Record {
                seq,
                x: seq as f32,
                y: -(seq as f32),
            };
            seq += 1;
        }
        slots.commit_all();
    }
    w.close();
    Ok(())
}

/// Claims the writer, forks (this child process is single-threaded, so the fork is safe);
/// the grandchild tries to claim through the inherited handle and drops everything; the
/// parent checks its end is untouched and keeps writing.
fn role_fork_guard() -> Result<(), String> {
    let name = env("NAME");
    let chan =
        ChannelIo::<u64>::create(&name, Options::new().capacity(512)).map_err(|e| e.to_string())?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    w.blocking_put(&[1, 2, 3]).map_err(|e| e.to_string())?;
    // SAFETY: this role's process has one thread, so the child may run any code.
    match unsafe { libc::fork() } {
        0 => {
            let code = match chan.reader() {
                Ok(_) => 10, // an inherited handle must not claim
                Err(_) => {
                    drop(w);
                    drop(chan);
                    0
                }
            };
            // SAFETY: ends the child without running the parent's exit handlers twice.
            unsafe { libc::_exit(code) }
        }
        -1 => return Err("fork failed".into()),
        child => {
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(child, &mut status, 0) };
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                return Err(format!("forked child failed: status {status:#x}"));
            }
        }
    }
    let info = ChannelIo::inspect(&name).map_err(|e| e.to_string())?;
    if !info.writer.held || info.writer_state != shmchan::WriterState::Open {
        return Err(format!("the child's drop touched our end: {info:?}"));
    }
    w.blocking_put(&[4]).map_err(|e| e.to_string())?;
    let mut r = chan.reader().map_err(|e| e.to_string())?;
    let mut got = [0u64; 4];
    r.blocking_get(&mut got).map_err(|e| e.to_string())?;
    if got != [1, 2, 3, 4] {
        return Err(format!("read {got:?}"));
    }
    println!("ok");
    Ok(())
}

/// A writer that appends after the last item its predecessors committed (item i has value
/// i) until TOTAL, in random batches, then closes.
fn role_restart_writer() -> Result<(), String> {
    let name = env("NAME");
    let total = env_u64("TOTAL");
    let mut rng = Rng(env_u64("SEED") | 1);
    // No other writer is alive (the previous one was killed and reaped): tail is final.
    let start = ChannelIo::inspect(&name).map_err(|e| e.to_string())?.tail;
    let chan = ChannelIo::<u64>::open(&name).map_err(|e| e.to_string())?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    println!("claimed");
    // ABORT_AFTER / HOLD: write that many items after our start, then abort instead of
    // closing, or hold (neither closing nor exiting) until killed.
    let stop = std::env::var("ABORT_AFTER").or_else(|_| std::env::var("HOLD"));
    let end = match stop.ok().and_then(|a| a.parse::<u64>().ok()) {
        Some(k) => (start + k).min(total),
        None => total,
    };
    let mut next = start;
    let mut buf = vec![0u64; 777];
    while next < end {
        let n = (1 + rng.below(777)).min(end - next) as usize;
        for (i, v) in buf[..n].iter_mut().enumerate() {
            *v = next + i as u64;
        }
        w.blocking_put(&buf[..n]).map_err(|e| e.to_string())?;
        next += n as u64;
    }
    if std::env::var("HOLD").is_ok() {
        // Wait to be killed (stdin stays open): this writer never ends the stream.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return Ok(());
    }
    if std::env::var("ABORT_AFTER").is_ok() {
        w.abort(&format!("stopped at {next}"));
    } else {
        w.close();
    }
    Ok(())
}

/// Creates NAME (u64, persistent) and exits.
fn role_create_persist() -> Result<(), String> {
    ChannelIo::<u64>::create(&env("NAME"), Options::new().persist(true))
        .map_err(|e| e.to_string())?;
    println!("created");
    Ok(())
}

/// Creates NAME, claims the writer and aborts at once, with no item, then exits.
fn role_abort_empty() -> Result<(), String> {
    let chan = child_chan()?;
    chan.writer()
        .map_err(|e| e.to_string())?
        .abort("no data today");
    println!("aborted");
    Ok(())
}

/// Opens NAME as u64 and prints the Debug of the error variant's name, or "ok".
/// Forbids membarrier(2) in this process (a seccomp filter answering EPERM, as a sandbox
/// would), then reports what opening and creating channels does.
fn role_no_membarrier() -> Result<(), String> {
    let filter = [
        // Load the system call number (offset 0 of struct seccomp_data).
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_membarrier as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with these arguments only changes this process's own privileges and
    // system call filter; `prog` points at `filter`, both alive for the call.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) == 0
    };
    if !ok {
        return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
    }
    // The channel made with membarrier by the parent: refused, with the typed error.
    match ChannelIo::<u64>::open(&env("NAME")) {
        Err(OpenError::MembarrierUnavailable { .. }) => println!("open membarrier: unavailable"),
        other => println!("open membarrier: {:?}", other.map(|c| c.barrier())),
    }
    // The fence channel made by the parent: usable; read what it holds.
    let chan = ChannelIo::<u64>::open(&env("NAME_B")).map_err(|e| e.to_string())?;
    let mut r = chan.reader().map_err(|e| e.to_string())?;
    let mut got = [0u64; 3];
    r.blocking_get(&mut got).map_err(|e| e.to_string())?;
    println!("fence channel: {got:?}");
    // Creating: Auto falls back to a fence; asking for membarrier is refused.
    let auto = ChannelIo::<u64>::create(&env("NAME_C"), Options::new());
    println!(
        "create auto: {:?}",
        auto.map(|c| c.barrier()).map_err(|e| e.to_string())
    );
    match ChannelIo::<u64>::create(&env("NAME_D"), Options::new().barrier(Barrier::Membarrier)) {
        Err(OpenError::MembarrierUnavailable { .. }) => println!("create membarrier: unavailable"),
        other => println!("create membarrier: {:?}", other.map(|c| c.barrier())),
    }
    Ok(())
}

fn role_open_report() -> Result<(), String> {
    match ChannelIo::<u64>::open(&env("NAME")) {
        Ok(_) => println!("ok"),
        Err(OpenError::PermissionDenied { .. }) => println!("PermissionDenied"),
        Err(e) => println!("other: {e}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tests

fn stream_env(
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

/// Whether this process can use membarrier channels. Where it cannot (a kernel before 4.16 or
/// with the registration bug, a sandbox), the tests that need them say so and stop — unless
/// `SHMCHAN_REQUIRE_MEMBARRIER` is set, as CI sets it, which turns that into a failure.
fn membarrier_available() -> Result<bool, Failed> {
    let name = unique("mbprobe");
    match ChannelIo::<u64>::create(&name, Options::new().barrier(Barrier::Membarrier)) {
        Ok(_) => Ok(true),
        Err(e @ OpenError::MembarrierUnavailable { .. }) => {
            if std::env::var_os("SHMCHAN_REQUIRE_MEMBARRIER").is_some() {
                return Err(format!("SHMCHAN_REQUIRE_MEMBARRIER is set: {e}").into());
            }
            eprintln!("skipped, membarrier channels unavailable here: {e}");
            Ok(false)
        }
        Err(e) => Err(e.to_string().into()),
    }
}

/// The lost-wakeup race, tried on every round of a cross-process ping-pong (see
/// `role_pingpong`): a lost wakeup hangs both sides and the watchdog fails the test.
///
/// This test finds the bug it guards against: `scripts/control.sh` (run by CI) builds the
/// crate with the sleeper's membarrier left out (`--cfg shmchan_control`) and
/// requires the membarrier variant to fail by hanging. With membarrier, a sleeper's re-check comes after the peer's CPU was made to
/// fence (microseconds later), so it rarely needs to sleep: the race is tried at each
/// announcement, not only at each sleep, and the sleep floor only shows the doorbell path
/// was taken. `no_spin_stress` provides the 10 000 sleeps per side.
///
/// `min_tries`: the least number of race attempts each side must make: announcements of a
/// sleep (`WaitStats::barriers`) with membarrier, sleeps with fences.
fn pingpong_race(barrier: &str, rounds: u64, min_tries: u64) -> R {
    if barrier == "membarrier" && !membarrier_available()? {
        return Ok(());
    }
    let (a, b) = (unique("ping"), unique("pong"));
    let e = |side: &str| {
        let mut e = stream_env(&a, rounds, 1, 512, 77);
        e.push(("NAME_B", b.clone()));
        e.push(("SIDE", side.into()));
        e.push(("DELAY", "150".into()));
        e.push(("BARRIER", barrier.into()));
        e
    };
    let responder = Peer::spawn("pingpong", &e("responder"));
    let initiator = Peer::spawn("pingpong", &e("initiator"));
    let (i_out, r_out) = (
        initiator.success_while_progressing()?,
        responder.success_while_progressing()?,
    );
    let (i_sleeps, r_sleeps) = (report(&i_out).1, report(&r_out).1);
    let (i_ann, r_ann) = (stat(&i_out, "barriers"), stat(&r_out, "barriers"));
    eprintln!(
        "ping-pong race ({barrier}): {i_sleeps} + {r_sleeps} sleeps, {i_ann} + {r_ann} \
         membarriers in {rounds} rounds"
    );
    let (i_tries, r_tries) = if barrier == "membarrier" {
        (i_ann, r_ann)
    } else {
        check(i_ann + r_ann == 0, "membarrier calls on a fence channel")?;
        (i_sleeps, r_sleeps)
    };
    check(
        i_tries >= min_tries && r_tries >= min_tries,
        format!("only {i_tries} + {r_tries} race attempts (want {min_tries} each)"),
    )?;
    check(gone(&a) && gone(&b), "finished channels left files behind")
}

/// A process that may not call membarrier(2) (seccomp) gets `MembarrierUnavailable` for a
/// membarrier channel, uses a fence channel normally, and creates fence channels by default.
fn membarrier_forbidden_by_seccomp() -> R {
    if !membarrier_available()? {
        return Ok(());
    }
    let (a, b, c, d) = (
        unique("mb"),
        unique("fence"),
        unique("auto"),
        unique("asked"),
    );
    let mb = ChannelIo::<u64>::create(&a, Options::new().barrier(Barrier::Membarrier))?;
    check(mb.barrier() == Barrier::Membarrier, "membarrier channel")?;
    let fence = ChannelIo::<u64>::create(&b, Options::new().barrier(Barrier::Fence))?;
    fence.writer()?.blocking_put(&[4, 5, 6])?;
    let out = Peer::spawn(
        "no_membarrier",
        &[
            ("NAME", a.clone()),
            ("NAME_B", b.clone()),
            ("NAME_C", c.clone()),
            ("NAME_D", d.clone()),
        ],
    )
    .success()?;
    let want = "open membarrier: unavailable\n\
                fence channel: [4, 5, 6]\n\
                create auto: Ok(Fence)\n\
                create membarrier: unavailable";
    check(out == want, format!("child said {out:?}"))?;
    drop((mb, fence));
    check(
        gone(&a) && gone(&b) && gone(&c) && gone(&d),
        "channels left behind",
    )
}

/// Reader process first, writer process second; different batch sizes on each side;
/// async reader, blocking writer.
fn reader_first_writer_second() -> R {
    let name = unique("rfirst");
    let mut e = stream_env(&name, 300_000, 700, 1024, 11);
    e.push(("ASYNC", "1".into()));
    e.push(("READY", "1".into()));
    let mut reader = Peer::spawn("stream_reader", &e);
    // The reader has claimed (and will sleep with no writer) before the writer exists.
    check(reader.read_line()? == "claimed", "reader did not claim")?;
    e.retain(|(k, _)| *k != "ASYNC" && *k != "READY");
    let writer = Peer::spawn("stream_writer", &e);
    check(
        report(&writer.success()?).0 == "wrote 300000",
        "writer output",
    )?;
    let out = reader.success()?;
    check(
        report(&out).0 == "read 300000 closed",
        format!("reader said {out:?}"),
    )?;
    check(gone(&name), "finished channel left files behind")
}

/// Writer process first, and it exits before the reader even starts: the items wait in the
/// channel (not removed at the writer's exit), and the channel goes once drained.
fn writer_exits_before_reader_starts() -> R {
    let name = unique("wfirst");
    let mut e = stream_env(&name, 3000, 97, 4096, 5);
    Peer::spawn("stream_writer", &e).success()?;
    check(
        !gone(&name),
        "channel with unread items was removed at the writer's exit",
    )?;
    e.push(("ASYNC", "1".into()));
    let out = Peer::spawn("stream_reader", &e).success()?;
    check(
        report(&out).0 == "read 3000 closed",
        format!("reader said {out:?}"),
    )?;
    check(gone(&name), "drained channel left files behind")
}

/// Both sides sleep on every wait (no spin) with a tiny ring and tiny batches: thousands of
/// doorbell round trips; a lost wakeup hangs and the watchdog fails the test. Run for both
/// barriers; `membarrier` must see at least 10 000 sleeps on each side (#4's bar for the
/// asymmetric protocol), counted as the sleeps the slow side's gate saw (see `Jitter`), so
/// the floor holds however slow `membarrier(2)` is; the watchdog is on progress, so a slow
/// run is not taken for a hang.
fn no_spin_stress(barrier: &str, count: u64, min_sleeps: u64) -> R {
    if barrier == "membarrier" && !membarrier_available()? {
        return Ok(());
    }
    // Which side starts first, how it waits, and how the second one waits: blocking and
    // tokio against each other both ways, then both in an event loop of their own
    // (`prepare_wait`, poll(2) on `wait_fd`, `finish_wait`).
    let configs = [
        (true, None, "ASYNC"),
        (false, None, "ASYNC"),
        (true, Some("EVENTLOOP"), "EVENTLOOP"),
    ];
    for (i, (reader_first, first_via, second_via)) in configs.into_iter().enumerate() {
        let name = unique("nospin");
        let mut e = stream_env(&name, count, 9, 512, 100 + i as u64);
        e.push(("NOSPIN", "1".into()));
        e.push(("READY", "1".into()));
        e.push(("BARRIER", barrier.into()));
        e.push(("JITTER", "10000".into()));
        e.push(("GATE", "2".into()));
        let (mut reader, mut writer);
        if let Some(via) = first_via {
            e.push((via, "1".into()));
        }
        // The first side has claimed before the second starts.
        if reader_first {
            reader = Peer::spawn("stream_reader", &e);
            check(reader.read_line()? == "claimed", "reader did not claim")?;
            e.push((second_via, "1".into()));
            writer = Peer::spawn("stream_writer", &e);
        } else {
            writer = Peer::spawn("stream_writer", &e);
            check(writer.read_line()? == "claimed", "writer did not claim")?;
            e.push((second_via, "1".into()));
            reader = Peer::spawn("stream_reader", &e);
        }
        let (w_out, r_out) = (
            writer.success_while_progressing()?,
            reader.success_while_progressing()?,
        );
        let (line, r_sleeps) = report(&r_out);
        let w_sleeps = report(&w_out).1;
        eprintln!(
            "no-spin stress ({barrier}, {:?} first, then {second_via}): reader slept {r_sleeps} \
             times, writer {w_sleeps} times",
            first_via.unwrap_or(if reader_first {
                "blocking reader"
            } else {
                "blocking writer"
            })
        );
        check(
            line == format!("read {count} closed"),
            format!("reader said {r_out:?}"),
        )?;
        // The point of the test is the doorbell path: make sure both sides took it. The
        // sleeps that the gates saw (see `Jitter`) do not depend on timing; the others do
        // (a slow membarrier(2) lets the re-check win), so the floor is on the gated ones.
        let (r_gated, w_gated) = (stat(&r_out, "gated"), stat(&w_out, "gated"));
        eprintln!("  of which the peer's gate saw: reader {w_gated}, writer {r_gated}");
        check(
            r_sleeps >= w_gated && w_sleeps >= r_gated,
            format!(
                "reader slept {r_sleeps} times, writer {w_sleeps}, fewer than the gates saw \
                 ({w_gated}, {r_gated})"
            ),
        )?;
        check(
            w_gated >= min_sleeps && r_gated >= min_sleeps,
            format!(
                "the gates saw only {w_gated} + {r_gated} sleeps (want {min_sleeps} each): \
                 the doorbell path was barely used"
            ),
        )?;
        // Every wake came from a doorbell, none from a timed re-check that could hide a
        // lost wakeup.
        let timed = stat(&r_out, "timed") + stat(&w_out, "timed");
        check(timed == 0, format!("{timed} timed sleeps"))?;
        check(gone(&name), "finished channel left files behind")?;
    }
    Ok(())
}

/// The writer aborts with a reason: the reader drains everything, then sees the reason.
fn abort_reaches_reader_after_drain() -> R {
    let name = unique("abort");
    let mut e = stream_env(&name, 5000, 300, 1024, 3);
    e.push(("ABORT", "sensor lost".into()));
    let writer = Peer::spawn("stream_writer", &e);
    let reader = Peer::spawn("stream_reader", &e);
    writer.success()?;
    let out = reader.success()?;
    check(
        report(&out).0 == "read 5000 aborted:sensor lost",
        format!("reader said {out:?}"),
    )
}

/// get into a buffer larger than what remains after close: Closed{remaining}, nothing
/// removed, the rest readable. And a get larger than the ring is filled progressively.
fn closed_get_removes_nothing() -> R {
    let name = unique("closedget");
    let mut e = stream_env(&name, 10, 10, 512, 1);
    e.push(("PUT", "10".into()));
    let mut holder = Peer::spawn("hold_writer", &e);
    check(holder.read_line()? == "ready", "holder not ready")?;
    let chan = ChannelIo::<u64>::open(&name)?;
    let mut r = chan.reader()?;
    let mut four = [0u64; 4];
    r.blocking_get(&mut four)?;
    check(four == [0, 1, 2, 3], format!("{four:?}"))?;
    holder.success()?; // closes stdin: the writer closes normally and exits
    let mut eight = [0u64; 8];
    match r.blocking_get(&mut eight) {
        Err(GetError::Closed {
            remaining: 6,
            filled: 0,
            ..
        }) => {}
        other => return Err(format!("expected Closed with 6 remaining, got {other:?}").into()),
    }
    let mut six = [0u64; 6];
    r.blocking_get(&mut six)?;
    check(six == [4, 5, 6, 7, 8, 9], format!("{six:?}"))?;
    // Larger than the ring (512), writer closed after 10: filled progressively, then Closed.
    let name2 = unique("bigget");
    let mut e2 = stream_env(&name2, 2000, 50, 512, 2);
    e2.push(("ASYNC", "1".into()));
    let chan2 = ChannelIo::<u64>::create_or_open(&name2, Options::new().capacity(512))?;
    let mut r2 = chan2.reader()?;
    let writer = Peer::spawn("stream_writer", &e2); // 2000 items through 512 slots

    let mut big = vec![0u64; 1500];
    r2.blocking_get(&mut big)?;
    check(
        big.iter().enumerate().all(|(i, v)| *v == i as u64),
        "big get out of order",
    )?;
    let mut bigger = vec![0u64; 1000];
    match r2.blocking_get(&mut bigger) {
        Err(GetError::Closed {
            remaining: 0,
            filled: 500,
            ..
        }) => {}
        other => return Err(format!("expected Closed with 500 filled, got {other:?}").into()),
    }
    writer.success()?;
    check(
        bigger[..500]
            .iter()
            .enumerate()
            .all(|(i, v)| *v == 1500 + i as u64),
        "progressive fill out of order",
    )
}

/// The reader (another process) closes while the writer waits for room: put fails with
/// Closed and says how many items it accepted.
fn reader_close_fails_waiting_put() -> R {
    let name = unique("rclose");
    let e = stream_env(&name, 0, 1, 512, 1);
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    let mut w = chan.writer()?;
    w.blocking_put(&[7; 500])?;
    let mut holder = Peer::spawn("hold_reader", &e);
    check(holder.read_line()? == "ready", "holder not ready")?;
    let put = background("put", move || {
        let r = w.blocking_put(&[1; 100]); // 12 fit, then it waits
        (r, w)
    });
    until_asleep(&name, ROOM_WAITING, put.tid)?;
    holder.success()?; // the reader drops: close
    let (res, mut w) = put.wait(*TIMEOUT)?;
    match res {
        Err(PutError::Closed { accepted: 12, .. }) => {}
        other => return Err(format!("expected Closed{{accepted: 12}}, got {other:?}").into()),
    }
    check(
        w.wait_stats().sleeps >= 1,
        "the put never slept: the wake path was not tested",
    )?;
    match w.blocking_put(&[1]) {
        Err(PutError::Closed { accepted: 0, .. }) => {}
        other => return Err(format!("expected Closed{{accepted: 0}}, got {other:?}").into()),
    }
    drop(w);
    drop(chan);
    check(gone(&name), "reader-closed channel left files behind")
}

/// A writer process that claimed and committed `0..put` (with `extra` in its environment),
/// and this process's reader of the same channel (no spinning).
fn held_writer_and_reader(
    name: &str,
    put: u64,
    extra: &[(&'static str, String)],
) -> Result<(Peer, ChannelIo<u64>, shmchan::ReaderFront<u64>), Failed> {
    let mut e = stream_env(name, 0, 1, 512, 1);
    e.push(("PUT", put.to_string()));
    e.extend(extra.iter().cloned());
    let mut holder = Peer::spawn("hold_writer", &e);
    check(holder.read_line()? == "ready", "holder not ready")?;
    let chan = ChannelIo::<u64>::open_with(name, no_spin())?;
    let r = chan.reader()?;
    Ok((holder, chan, r))
}

/// kill -9 of the writer while the reader waits: the reader drains, then gets PeerGone.
fn kill_writer_while_reader_waits() -> R {
    for via in ALL_VIAS {
        let name = unique("killw");
        let (mut holder, chan, mut r) = held_writer_and_reader(&name, 100, &[])?;
        let got = background("get", move || {
            let mut buf = vec![0u64; 150];
            let res = get_with(&mut r, &mut buf, via);
            let returned = std::time::Instant::now();
            let mut rest = vec![0u64; 100];
            let drained = r.blocking_get_some(&mut rest).map(|n| rest[..n].to_vec());
            // Drained: the next call reports the end (does not wait) ...
            let end = r.blocking_get_some(&mut rest);
            (res, returned, drained, end, r)
        });
        until_asleep(&name, DATA_WAITING, got.tid)?;
        let killed = std::time::Instant::now();
        holder.kill9();
        let (res, returned, drained, end, mut r) = got.wait(*TIMEOUT)?;
        let after = returned.saturating_duration_since(killed);
        eprintln!("kill -9 of the writer (via {via:?}): PeerGone {after:?} later");
        // Measured here in milliseconds (pidfd); the bound leaves room for a loaded CI.
        check(
            after < Duration::from_secs(2),
            format!("PeerGone took {after:?}"),
        )?;
        check(
            r.wait_stats().sleeps >= 1,
            "the get never slept: the pidfd path was not tested",
        )?;
        match res {
            Err(GetError::PeerGone { remaining: 100, .. }) => {}
            other => return Err(format!("expected PeerGone with 100 left, got {other:?}").into()),
        }
        check(
            drained.as_deref().ok() == Some(&(0..100).collect::<Vec<u64>>()[..]),
            format!("drain after PeerGone: {drained:?}"),
        )?;
        check(
            matches!(end, Err(GetError::PeerGone { remaining: 0, .. })),
            format!("after the drain: {end:?}"),
        )?;
        // ... and once reported with nothing left, the next get waits for a new writer (it
        // does not fail again). The dead writer's end is free at once; the new writer appends after
        // the last committed item and the same reader goes on.
        let next = background("get after restart", move || {
            let mut two = [0u64; 2];
            r.blocking_get(&mut two).map(|()| two)
        });
        until_asleep(&name, DATA_WAITING, next.tid)?;
        let mut w = chan.writer()?;
        w.blocking_put(&[100, 101])?;
        let two = next.wait(*TIMEOUT)?;
        check(
            matches!(two, Ok([100, 101])),
            format!("after restart: {two:?}"),
        )?;
    }
    Ok(())
}

/// kill -9 of the reader while the writer waits for room: put returns PeerGone; a new reader
/// resumes exactly at the first item the dead one had not consumed.
fn kill_reader_while_writer_waits() -> R {
    for via in ALL_VIAS {
        let name = unique("killr");
        let mut e = stream_env(&name, 0, 1, 512, 1);
        e.push(("GET", "100".into())); // the holder consumes 0..100 first
        let chan = ChannelIo::<u64>::create(&name, no_spin().capacity(512))?;
        let mut w = chan.writer()?;
        let mut holder = Peer::spawn("hold_reader", &e);
        let put = background("put", move || {
            let items: Vec<u64> = (0..700).collect();
            let r = put_with(&mut w, &items, via);
            (r, std::time::Instant::now(), w.wait_stats().sleeps)
        });
        check(holder.read_line()? == "ready", "holder not ready")?;
        // 100 consumed, 512 in the ring: the writer waits for room.
        let start = std::time::Instant::now();
        while chan.len() < 512 && start.elapsed() < *TIMEOUT {
            std::thread::yield_now();
        }
        until_asleep(&name, ROOM_WAITING, put.tid)?;
        let killed = std::time::Instant::now();
        holder.kill9();
        let (res, returned, sleeps) = put.wait(*TIMEOUT)?;
        let after = returned.saturating_duration_since(killed);
        eprintln!("kill -9 of the reader (via {via:?}): PeerGone {after:?} later");
        check(
            after < Duration::from_secs(2),
            format!("PeerGone took {after:?}"),
        )?;
        match res {
            Err(PutError::PeerGone { accepted: 612, .. }) => {}
            other => {
                return Err(format!("expected PeerGone{{accepted: 612}}, got {other:?}").into())
            }
        }
        check(
            sleeps >= 1,
            "the put never slept: the pidfd path was not tested",
        )?;
        let mut r = chan.reader()?;
        let mut buf = vec![0u64; 512];
        r.blocking_get(&mut buf)?;
        check(
            buf.iter().enumerate().all(|(i, v)| *v == 100 + i as u64),
            format!("resumed at {} instead of 100", buf[0]),
        )?;
    }
    Ok(())
}

/// An end held by a live process is refused with its pid; freed when the holder exits.
fn end_taken_across_processes() -> R {
    let name = unique("taken");
    let e = stream_env(&name, 0, 1, 512, 1);
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    let mut holder = Peer::spawn("hold_writer", &e);
    check(holder.read_line()? == "ready", "holder not ready")?;
    let pid = holder.pid();
    match chan.writer() {
        Err(ClaimError::EndTaken {
            end: End::Writer,
            pid: Some(p),
            ..
        }) if p == pid => {}
        other => return Err(format!("expected EndTaken by {pid}, got {other:?}").into()),
    }
    let msg = chan.writer().unwrap_err().to_string();
    check(msg.contains(&pid.to_string()) && msg.contains(&name), msg)?;
    holder.kill9();
    // Its writer was killed, not closed: the end is free for a new writer.
    let w = chan.writer();
    check(w.is_ok(), format!("end not freed after kill -9: {w:?}"))?;
    // That writer closes with no reader ever come: the channel waits for one; remove it.
    drop((w, chan));
    check(!gone(&name), "undelivered end of stream was removed")?;
    ChannelIo::remove(&name)?;
    Ok(())
}

/// Every open error, each with its typed variant.
fn open_errors() -> R {
    let bad = ChannelIo::<u8>::create("no/slash", Options::new());
    check(
        matches!(bad, Err(OpenError::InvalidName { .. })),
        format!("{bad:?}"),
    )?;
    check(
        matches!(
            ChannelIo::<u8>::open(""),
            Err(OpenError::InvalidName { .. })
        ),
        "empty name",
    )?;
    let name = unique("errs");
    let zero = ChannelIo::<u8>::create(&name, Options::new().capacity(0));
    check(
        matches!(zero, Err(OpenError::InvalidCapacity { .. })),
        format!("{zero:?}"),
    )?;
    let huge = ChannelIo::<u64>::create(&name, Options::new().capacity(usize::MAX / 2));
    check(
        matches!(huge, Err(OpenError::InvalidCapacity { .. })),
        format!("{huge:?}"),
    )?;
    let zst = ChannelIo::<()>::create(&name, Options::new());
    check(
        matches!(zst, Err(OpenError::UnsupportedElement { .. })),
        format!("{zst:?}"),
    )?;
    let long = ChannelIo::<u8>::create(&name, Options::new().schema("x".repeat(49)));
    check(
        matches!(long, Err(OpenError::InvalidSchema { .. })),
        format!("{long:?}"),
    )?;
    check(gone(&name), "failed creates left files")?;

    let missing = ChannelIo::<u8>::open(&name);
    check(
        matches!(missing, Err(OpenError::NotFound { .. })),
        format!("{missing:?}"),
    )?;
    let chan = ChannelIo::<f32>::create(&name, Options::new().schema("imu/v2"))?;
    let exists = ChannelIo::<f32>::create(&name, Options::new());
    check(
        matches!(exists, Err(OpenError::AlreadyExists { .. })),
        format!("{exists:?}"),
    )?;
    match ChannelIo::<f64>::open_with(&name, Options::new().schema("imu/v2")) {
        Err(
            e @ OpenError::ElementMismatch {
                expected_size: 8,
                found_size: 4,
                ..
            },
        ) => {
            let m = e.to_string();
            check(m.contains("f64") && m.contains("4 bytes"), m)?;
        }
        other => return Err(format!("expected ElementMismatch, got {other:?}").into()),
    }
    // Same size and alignment, another primitive: told apart by the recorded kind.
    match ChannelIo::<u32>::open_with(&name, Options::new().schema("imu/v2")) {
        Err(
            e @ OpenError::ElementMismatch {
                found_type: Some("f32"),
                ..
            },
        ) => check(e.to_string().contains("f32 elements"), e.to_string())?,
        other => return Err(format!("expected ElementMismatch(f32), got {other:?}").into()),
    }
    // An application type of the same layout is not a primitive: allowed (its tag decides).
    let raw = ChannelIo::<[u8; 4]>::open_with(&name, Options::new().schema("imu/v2"));
    check(
        matches!(raw, Err(OpenError::ElementMismatch { .. })),
        "align 1 vs 4 must differ",
    )?;
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Sample(f32);
    let rec = ChannelIo::<Sample>::open_with(&name, Options::new().schema("imu/v2"));
    check(rec.is_ok(), format!("record type over f32: {rec:?}"))?;
    drop(rec);
    match ChannelIo::<f32>::open_with(&name, Options::new().schema("imu/v1")) {
        Err(OpenError::SchemaMismatch {
            expected, found, ..
        }) => check(
            expected.as_deref() == Some("imu/v1") && found.as_deref() == Some("imu/v2"),
            "schema values",
        )?,
        other => return Err(format!("expected SchemaMismatch, got {other:?}").into()),
    }
    check(
        matches!(
            ChannelIo::<f32>::open(&name),
            Err(OpenError::SchemaMismatch { .. })
        ),
        "untagged open of a tagged channel",
    )?;
    drop(chan);
    check(gone(&name), "unused channel not removed")?;
    Ok(())
}

/// Plants files under a channel's name: too small, foreign, zeroed, other version, a plain
/// file instead of the directory, a header describing more bytes than the file has.
fn planted_segments() -> R {
    let plant = |bytes: &[u8]| -> Result<String, Failed> {
        let name = unique("plant");
        let dir = shmchan::channel_dir(&name);
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("ring"), bytes).map_err(|e| e.to_string())?;
        Ok(name)
    };
    let expect = |name: &str, ok: &dyn Fn(&OpenError) -> bool| -> R {
        let res = ChannelIo::<u64>::open(name);
        let r = match &res {
            Err(e) if ok(e) => Ok(()),
            other => Err(Failed::from(format!("{name}: unexpected {other:?}"))),
        };
        ChannelIo::remove(name).map_err(|e| e.to_string())?;
        r
    };
    let n = plant(b"tiny")?;
    expect(&n, &|e| matches!(e, OpenError::TooSmall { size: 4, .. }))?;
    let n = plant(&[0xAB; 8192])?;
    expect(&n, &|e| matches!(e, OpenError::Foreign { .. }))?;
    let n = plant(&[0; 8192])?;
    expect(&n, &|e| matches!(e, OpenError::NotInitialized { .. }))?;
    let n = plant(&[])?;
    expect(&n, &|e| matches!(e, OpenError::NotInitialized { .. }))?;

    // A real header, edited.
    let real = unique("real");
    drop(ChannelIo::<u64>::create(
        &real,
        Options::new().capacity(512).persist(true),
    )?);
    let good =
        std::fs::read(shmchan::channel_dir(&real).join("ring")).map_err(|e| e.to_string())?;
    ChannelIo::remove(&real)?;
    let mut v = good.clone();
    v[8..12].copy_from_slice(&99u32.to_ne_bytes());
    let n = plant(&v)?;
    expect(&n, &|e| {
        matches!(e, OpenError::VersionMismatch { found: 99, .. })
    })?;
    let mut v = good.clone();
    v[24..32].copy_from_slice(&(1u64 << 50).to_ne_bytes()); // capacity
    let n = plant(&v)?;
    expect(
        &n,
        &|e| matches!(e, OpenError::Corrupted(c) if c.field == "data_len"),
    )?;
    let mut v = good.clone();
    v[112..116].copy_from_slice(&9u32.to_ne_bytes()); // elem_kind f32 on 8-byte elements
    let n = plant(&v)?;
    expect(
        &n,
        &|e| matches!(e, OpenError::Corrupted(c) if c.field == "elem_kind"),
    )?;
    let n = plant(&good[..good.len() - 4096])?; // truncated before open
    expect(
        &n,
        &|e| matches!(e, OpenError::Corrupted(c) if c.field == "size"),
    )?;

    // A plain file where the directory should be.
    let name = unique("plainfile");
    std::fs::write(shmchan::channel_dir(&name), b"junk").map_err(|e| e.to_string())?;
    let res = ChannelIo::<u64>::open(&name);
    let create = ChannelIo::<u64>::create(&name, Options::new());
    ChannelIo::remove(&name)?;
    check(
        matches!(res, Err(OpenError::Foreign { .. })),
        format!("{res:?}"),
    )?;
    check(
        matches!(create, Err(OpenError::AlreadyExists { .. })),
        format!("{create:?}"),
    )
}

/// Corrupt indices written into a live segment give Corrupted errors, not crashes.
fn corrupt_indices_are_errors() -> R {
    let name = unique("corrupt");
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    w.blocking_put(&[1; 512])?;
    // Scribble on the mapped header through the file: head far beyond tail.
    let path = shmchan::channel_dir(&name).join("ring");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| e.to_string())?;
    use std::os::unix::fs::FileExt;
    f.write_at(&u64::MAX.to_ne_bytes(), shmchan::layout::HEAD as u64)
        .map_err(|e| e.to_string())?; // head
    match w.blocking_put(&[1]) {
        Err(PutError::Corrupted(c)) if c.field == "head" => {}
        other => return Err(format!("expected Corrupted(head), got {other:?}").into()),
    }
    f.write_at(&(1u64 << 40).to_ne_bytes(), shmchan::layout::TAIL as u64)
        .map_err(|e| e.to_string())?; // tail
    let mut buf = [0u64; 1024];
    match r.blocking_get(&mut buf) {
        Err(GetError::Corrupted(c)) if c.field == "tail" => {}
        other => return Err(format!("expected Corrupted(tail), got {other:?}").into()),
    }
    drop((w, r, chan));
    ChannelIo::remove(&name).ok();
    Ok(())
}

/// A channel created 0600 by one user cannot be opened by another: PermissionDenied.
fn permission_denied_for_other_user() -> R {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Without root we cannot become another user; check a mode that refuses us instead.
        let name = unique("perm");
        let chan = ChannelIo::<u64>::create(&name, Options::new().mode(0o000))?;
        let res = ChannelIo::<u64>::open(&name);
        drop(chan);
        ChannelIo::remove(&name).ok();
        return check(
            matches!(res, Err(OpenError::PermissionDenied { .. })),
            format!("{res:?}"),
        );
    }
    let name = unique("perm");
    let chan = ChannelIo::<u64>::create(&name, Options::new())?;
    let e = vec![("NAME", name.clone())];
    let out = Peer::spawn_as_nobody("open_report", &e).success()?;
    drop(chan);
    check(out == "PermissionDenied", format!("other user got {out:?}"))?;
    // Widened on purpose, the other user can open it.
    let name = unique("perm-wide");
    let chan = ChannelIo::<u64>::create(&name, Options::new().mode(0o666))?;
    let e = vec![("NAME", name.clone())];
    let out = Peer::spawn_as_nobody("open_report", &e).success()?;
    drop(chan);
    check(
        out == "ok",
        format!("other user with mode 0666 got {out:?}"),
    )
}

/// True if the shared-memory file system has a size limit a ring can exceed.
fn shm_is_limited() -> bool {
    rustix::fs::statvfs(shmchan::base_dir()).is_ok_and(|st| {
        let want = (st.f_blocks * st.f_frsize).saturating_mul(2);
        want > 0 && want <= shmchan::MAX_DATA_LEN
    })
}

/// A ring larger than the shared-memory file system fails at create with NoSpace, leaving
/// nothing behind.
fn no_space_at_create() -> R {
    let base = shmchan::base_dir();
    let st = rustix::fs::statvfs(&base).map_err(|e| e.to_string())?;
    let total = st.f_blocks * st.f_frsize;
    let want = total.saturating_mul(2);
    if !shm_is_limited() {
        return Err(
            "the shared-memory file system has no usable limit (test should be ignored)".into(),
        );
    }
    let name = unique("nospace");
    match ChannelIo::<u8>::create(&name, Options::new().capacity(want as usize)) {
        Err(e @ OpenError::NoSpace { .. }) => {
            check(e.to_string().contains("--shm-size"), e.to_string())?;
        }
        other => return Err(format!("expected NoSpace for {want} bytes, got {other:?}").into()),
    }
    let leftovers: Vec<_> = std::fs::read_dir(&base)
        .map_err(|e| e.to_string())?
        .filter_map(|d| d.ok())
        .filter(|d| d.file_name().to_string_lossy().contains(&name))
        .collect();
    check(leftovers.is_empty(), format!("left behind: {leftovers:?}"))
}

/// create_or_open from many processes at once: exactly one channel, all of them open it.
fn create_or_open_race() -> R {
    let name = unique("race");
    let mut e = stream_env(&name, 0, 1, 512, 1);
    e.push(("REPORT_TAKEN", "1".into()));
    let mut holders: Vec<Peer> = (0..6).map(|_| Peer::spawn("hold_reader", &e)).collect();
    // Exactly one of them gets the reader end; the others report EndTaken. All opened it.
    let mut ready = 0;
    let mut taken = 0;
    for h in holders.iter_mut() {
        match h.read_line()?.as_str() {
            "ready" => ready += 1,
            "taken" => taken += 1,
            other => return Err(format!("a racer said {other:?}").into()),
        }
    }
    for h in holders {
        h.success()?;
    }
    check(
        ready == 1 && taken == 5,
        format!("{ready} readers, {taken} refused"),
    )
}

/// The fronts and ChannelIo move into tokio tasks and threads; futures are Send.
fn fronts_are_send() -> R {
    fn assert_send<S: Send>(_: &S) {}
    let name = unique("send");
    let chan = ChannelIo::<u32>::create(&name, Options::new().capacity(1024))?;
    let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    assert_send(&chan);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sum = watchdog(*TIMEOUT, "tasks", move || {
        rt.block_on(async move {
            let p = tokio::spawn(async move {
                for i in 0..10_000u32 {
                    w.put(&[i]).await?;
                }
                Ok::<_, PutError>(())
            });
            let c = tokio::spawn(async move {
                let mut s = 0u64;
                let mut buf = [0u32; 100];
                loop {
                    match r.get_some(&mut buf).await {
                        Ok(n) => s += buf[..n].iter().map(|&x| x as u64).sum::<u64>(),
                        Err(GetError::Closed { .. }) => return Ok::<_, GetError>(s),
                        Err(e) => return Err(e),
                    }
                }
            });
            p.await.unwrap().unwrap();
            c.await.unwrap()
        })
    })??;
    check(sum == (0..10_000u64).sum::<u64>(), format!("sum {sum}"))
}

/// A created-and-dropped channel, and one whose reader closed, leave no files; a persistent
/// one stays until removed.
fn cleanup_rules() -> R {
    let a = unique("unused");
    drop(ChannelIo::<u8>::create(&a, Options::new())?);
    check(gone(&a), "unused channel left files")?;
    let b = unique("persist");
    drop(ChannelIo::<u8>::create(&b, Options::new().persist(true))?);
    check(!gone(&b), "persistent channel removed")?;
    {
        let chan = ChannelIo::<u8>::open(&b)?;
        let mut w = chan.writer()?;
        w.blocking_put(b"x")?;
        let r = chan.reader()?;
        r.close();
    }
    check(!gone(&b), "persistent channel removed after use")?;
    ChannelIo::remove(&b)?;
    check(gone(&b), "remove left files")?;
    let c = unique("rclosed");
    {
        let chan = ChannelIo::<u8>::create(&c, Options::new())?;
        let mut w = chan.writer()?;
        w.blocking_put(b"unread")?;
        drop(chan.reader()?); // reader closes: discards the rest
    }
    check(gone(&c), "reader-closed channel left files")?;
    check(
        !Path::new(&shmchan::base_dir())
            .read_dir()
            .map_err(|e| e.to_string())?
            .filter_map(|d| d.ok())
            .any(|d| {
                let f = d.file_name().to_string_lossy().into_owned();
                f.starts_with(".shmchan-tmp.")
                    && [&a, &b, &c].iter().any(|n| f.contains(n.as_str()))
            }),
        "temporary directories left behind",
    )
}

/// A writer that closes (here: aborts) with no item and exits before any reader came: the
/// channel stays, and the reader later gets the end of stream with the reason.
fn writer_abort_before_reader_came() -> R {
    let name = unique("abortempty");
    let e = stream_env(&name, 0, 1, 512, 1);
    check(
        Peer::spawn("abort_empty", &e).success()? == "aborted",
        "child",
    )?;
    check(
        !gone(&name),
        "a channel whose abort was never delivered was removed",
    )?;
    let chan = ChannelIo::<u64>::open(&name)?;
    let mut r = chan.reader()?;
    match r.blocking_get_some(&mut [0u64; 4]) {
        Err(GetError::Aborted {
            reason,
            remaining: 0,
            ..
        }) if reason == "no data today" => {}
        other => return Err(format!("expected Aborted, got {other:?}").into()),
    }
    drop((r, chan));
    check(gone(&name), "delivered channel left files behind")
}

/// A same-user process scribbles the writer's record in the header, then the writer really
/// dies: the reader that waits must still learn of it within seconds, never sleep forever.
/// Three scribbles: the claim count zeroed before the reader sleeps (it would read as "never
/// claimed", a wait with no death watch), the same after it sleeps, and the pid set to 1
/// with the start time zeroed (it would watch init's pidfd, which never fires).
fn scribbled_peer_record_cannot_hang_the_survivor() -> R {
    use std::os::unix::fs::FileExt;
    let claims = (shmchan::layout::ENDS + 16) as u64;
    let (pid, start) = (
        shmchan::layout::ENDS as u64,
        (shmchan::layout::ENDS + 8) as u64,
    );
    /// Bytes written at header offsets.
    type Writes<'a> = &'a [(u64, &'a [u8])];
    let scribbles: [(&str, bool, Writes); 3] = [
        ("claims zeroed first", true, &[(claims, &[0; 8])]),
        ("claims zeroed while asleep", false, &[(claims, &[0; 8])]),
        (
            "pid 1, no start time",
            true,
            &[(pid, &1u32.to_ne_bytes()), (start, &[0; 8])],
        ),
    ];
    for (what, before, writes) in scribbles {
        let name = unique("scribble");
        let (mut holder, _chan, mut r) = held_writer_and_reader(&name, 0, &[])?;
        let ring = std::fs::OpenOptions::new()
            .write(true)
            .open(shmchan::channel_dir(&name).join("ring"))?;
        let scribble = || -> R {
            for (off, bytes) in writes {
                ring.write_at(bytes, *off)?;
            }
            Ok(())
        };
        if before {
            scribble()?;
        }
        let got = background("get", move || {
            let res = r.blocking_get(&mut [0u64; 1]);
            (res, std::time::Instant::now())
        });
        until_asleep(&name, DATA_WAITING, got.tid)?;
        if !before {
            scribble()?;
        }
        let killed = std::time::Instant::now();
        holder.kill9();
        let (res, when) = got.wait(*TIMEOUT)?;
        let after = when.saturating_duration_since(killed);
        eprintln!("scribbled writer record ({what}): {res:?} {after:?} after kill -9");
        check(
            matches!(res, Err(GetError::PeerGone { .. } | GetError::Corrupted(_))),
            format!("{what}: expected PeerGone or Corrupted, got {res:?}"),
        )?;
        check(
            after < Duration::from_secs(5),
            format!("{what}: the death was found {after:?} after the kill"),
        )?;
    }
    Ok(())
}

/// A peer whose recorded pid cannot be watched (as from another pid namespace): its death is
/// still found, by re-checking its lock, within about a second.
fn unwatchable_peer_death_is_found() -> R {
    for via in ALL_VIAS {
        let name = unique("unwatch");
        let fake = [("FAKE_PID", "2147483000".to_string())];
        let (mut holder, _chan, mut r) = held_writer_and_reader(&name, 3, &fake)?;
        let got = background("get", move || {
            let mut buf = [0u64; 10];
            let res = get_with(&mut r, &mut buf, via);
            (res, std::time::Instant::now(), r.wait_stats())
        });
        until_asleep(&name, DATA_WAITING, got.tid)?;
        std::thread::sleep(Duration::from_millis(100)); // let a few re-checks pass
        let killed = std::time::Instant::now();
        holder.kill9();
        let (res, when, stats) = got.wait(*TIMEOUT)?;
        check(
            matches!(res, Err(GetError::PeerGone { remaining: 3, .. })),
            format!("expected PeerGone with 3 left, got {res:?}"),
        )?;
        let after = when.saturating_duration_since(killed);
        eprintln!(
            "unwatchable peer (via {via:?}): death found {after:?} after kill -9, {} timed sleeps",
            stats.timed_sleeps
        );
        // The re-check backs off to 1 s at most; a pidfd would have needed no timed sleep.
        check(
            after < Duration::from_secs(3),
            format!("found after {after:?}"),
        )?;
        check(
            stats.timed_sleeps >= 3,
            format!("{} timed sleeps", stats.timed_sleeps),
        )?;
    }
    Ok(())
}

/// Records written in place by another process are read in place (peek/consume) in chunks
/// of other sizes, every field checked.
fn zero_copy_records_across_processes() -> R {
    let name = unique("records");
    let e = stream_env(&name, 100_000, 1, 1000, 9);
    let chan = ChannelIo::<Record>::create_or_open(
        &name,
        Options::new().capacity(1000).schema("record/v1"),
    )?;
    let mut r = chan.reader()?;
    let writer = Peer::spawn("records_writer", &e);
    let (next, r) = watchdog(*TIMEOUT, "peek loop", move || {
        let mut next = 0u64;
        let mut rng = Rng(77);
        loop {
            let want = 1 + rng.below(500) as usize;
            let view = match r.blocking_peek(want) {
                Ok(v) => v,
                Err(GetError::Closed { remaining, .. }) => match r.blocking_peek(remaining) {
                    Ok(v) => v,
                    Err(e) => return Err(e.to_string()),
                },
                Err(e) => return Err(e.to_string()),
            };
            if view.is_empty() {
                return Ok((next, r));
            }
            for rec in view.iter() {
                if *rec
                    != (Record {
                        seq: next,
                        x: next as f32,
                        y: -(next as f32),
                    })
                {
                    return Err(format!("record {next} is {rec:?}"));
                }
                next += 1;
            }
            view.consume_all();
        }
    })??;
    writer.success()?;
    drop(r);
    check(next == 100_000, format!("read {next} records"))
}

/// Channels of another user are refused unless accepted; symlinks are never followed.
fn foreign_owner_and_symlinks() -> R {
    let target = unique("symtarget");
    let chan = ChannelIo::<u64>::create(&target, Options::new())?;
    let link = unique("symlink");
    std::os::unix::fs::symlink(shmchan::channel_dir(&target), shmchan::channel_dir(&link))
        .map_err(|e| e.to_string())?;
    let res = ChannelIo::<u64>::open(&link);
    std::fs::remove_file(shmchan::channel_dir(&link)).map_err(|e| e.to_string())?;
    drop(chan);
    check(
        matches!(res, Err(OpenError::Foreign { .. })),
        format!("symlink: {res:?}"),
    )?;

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(()); // cannot act as another user
    }
    let name = unique("foreign");
    let e = vec![("NAME", name.clone())];
    check(
        Peer::spawn_as_nobody("create_persist", &e).success()? == "created",
        "child",
    )?;
    let res = ChannelIo::<u64>::open(&name);
    let accepted = ChannelIo::<u64>::open_with(&name, Options::new().accept_other_owner(true));
    ChannelIo::remove(&name)?;
    check(
        matches!(
            res,
            Err(OpenError::ForeignOwner {
                owner: 65534,
                uid: 0,
                ..
            })
        ),
        format!("another user's channel: {res:?}"),
    )?;
    check(accepted.is_ok(), format!("accepted: {accepted:?}"))
}

/// A handle inherited across fork is inert: it cannot claim, and dropping it neither closes
/// the parent's end nor releases its lock nor removes the channel.
fn fork_child_leaves_the_parents_ends_alone() -> R {
    let name = unique("fork");
    let out = Peer::spawn("fork_guard", &[("NAME", name.clone())]).success()?;
    check(out == "ok", format!("fork role said {out:?}"))?;
    check(gone(&name), "finished channel left behind")
}

/// Removing a channel and creating another under its name: dropping the old handle later
/// must not touch the new channel.
fn old_handle_drop_spares_a_recreated_channel() -> R {
    let name = unique("recreate");
    let old = ChannelIo::<u64>::create(&name, Options::new())?;
    let old_reader = old.reader()?; // makes the old channel "finished" when it closes
    ChannelIo::remove(&name)?;
    let new = ChannelIo::<u64>::create(&name, Options::new())?;
    let mut w = new.writer()?;
    w.blocking_put(&[5, 6, 7])?;
    drop(old_reader);
    drop(old);
    let again = ChannelIo::<u64>::open(&name)?;
    check(
        again.len() == 3,
        format!("re-created channel has {} items", again.len()),
    )?;
    drop((w, again, new));
    ChannelIo::remove(&name)?;
    Ok(())
}

/// An end closed by its holder cannot be claimed again: ClaimError::Closed names who closed.
fn closed_ends_cannot_be_reclaimed() -> R {
    let name = unique("reclaim");
    let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    chan.writer()?.close();
    match chan.writer() {
        Err(ClaimError::Closed {
            by: End::Writer, ..
        }) => {}
        other => return Err(format!("writer after writer close: {other:?}").into()),
    }
    chan.reader()?.close();
    match (chan.reader(), chan.writer()) {
        (
            Err(ClaimError::Closed {
                by: End::Reader, ..
            }),
            Err(ClaimError::Closed {
                by: End::Reader, ..
            }),
        ) => {}
        other => return Err(format!("after reader close: {other:?}").into()),
    }
    drop(chan);
    check(gone(&name), "finished channel left behind")
}

/// get/get_some/peek are cancel safe: a timed-out get removed nothing.
fn cancelled_get_removes_nothing() -> R {
    let name = unique("cancel");
    let chan = ChannelIo::<u32>::create(&name, Options::new())?;
    let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    w.blocking_put(&[1, 2, 3])?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut five = [0u32; 5];
    let res = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), r.get(&mut five)).await
    });
    check(res.is_err(), "get of 5 with 3 available did not wait")?;
    let peeked = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), r.peek(4))
            .await
            .is_err()
    });
    check(peeked, "peek of 4 with 3 available did not wait")?;
    let mut all = [0u32; 8];
    let n = r.blocking_get_some(&mut all)?;
    check(
        n == 3 && all[..3] == [1, 2, 3],
        format!("after cancel: {:?}", &all[..n]),
    )
}

/// An abort reason longer than REASON_MAX is cut at a character boundary.
fn long_abort_reason_is_cut_cleanly() -> R {
    let name = unique("reason");
    let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    let (w, mut r) = (chan.writer()?, chan.reader()?);
    let reason = "é".repeat(200); // 400 bytes
    w.abort(&reason);
    match r.blocking_get_some(&mut [0u8; 1]) {
        Err(GetError::Aborted { reason: got, .. }) => check(
            got.len() <= shmchan::REASON_MAX && got.len() >= 250 && reason.starts_with(&got),
            format!("{} bytes: {got:?}", got.len()),
        ),
        other => Err(format!("expected Aborted, got {other:?}").into()),
    }
}

/// Tampered channel files: a bell that is not a FIFO, a symlinked ring, a ring of another
/// owner — all refused as foreign, never followed or opened as something else.
fn tampered_files_are_foreign() -> R {
    let tamper = |f: &dyn Fn(&Path) -> std::io::Result<()>| -> Result<OpenError, Failed> {
        let name = unique("tamper");
        drop(ChannelIo::<u64>::create(
            &name,
            Options::new().persist(true),
        )?);
        f(&shmchan::channel_dir(&name)).map_err(|e| e.to_string())?;
        let res = ChannelIo::<u64>::open(&name);
        ChannelIo::remove(&name)?;
        res.err()
            .ok_or_else(|| Failed::from("tampered channel opened"))
    };
    let e = tamper(&|d| {
        std::fs::remove_file(d.join("data.bell"))?;
        std::fs::write(d.join("data.bell"), b"")
    })?;
    check(
        matches!(e, OpenError::Foreign { .. }),
        format!("regular-file bell: {e:?}"),
    )?;
    let e = tamper(&|d| {
        std::fs::remove_file(d.join("room.bell"))?;
        std::os::unix::fs::symlink("/dev/null", d.join("room.bell"))
    })?;
    check(
        matches!(e, OpenError::Foreign { .. }),
        format!("symlinked bell: {e:?}"),
    )?;
    let e = tamper(&|d| {
        std::fs::rename(d.join("ring"), d.join("ring.real"))?;
        std::os::unix::fs::symlink(d.join("ring.real"), d.join("ring"))
    })?;
    check(
        matches!(e, OpenError::Foreign { .. }),
        format!("symlinked ring: {e:?}"),
    )?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let e = tamper(&|d| std::os::unix::fs::chown(d.join("ring"), Some(65534), None))?;
        check(
            matches!(e, OpenError::Foreign { .. }),
            format!("ring of another owner: {e:?}"),
        )?;
    }
    Ok(())
}

/// Writers killed with SIGKILL at random points and restarted, while one reader reads on;
/// the last one aborts at a random point: every item arrives once, in order; each death is
/// reported once (PeerGone), after which the reader waits for the restarted writer; the
/// abort comes after exactly the items committed before it.
fn writer_restarts_at_random_points() -> R {
    let name = unique("wrestart");
    let total = 3_000_000u64;
    let chan = ChannelIo::<u64>::create(&name, no_spin().capacity(4096))?;
    let mut r = chan.reader()?;
    let reader = background("reader", move || -> Result<(u64, u64, bool), String> {
        let mut expect = 0u64;
        let mut deaths = 0u64;
        let mut buf = vec![0u64; 1000];
        loop {
            match r.blocking_get_some(&mut buf) {
                Ok(n) => {
                    for v in &buf[..n] {
                        if *v != expect {
                            return Err(format!("expected {expect}, got {v}"));
                        }
                        expect += 1;
                    }
                }
                Err(GetError::PeerGone { remaining: 0, .. }) => deaths += 1,
                // Items of the dead writer still to read: read them, then it is reported.
                Err(GetError::PeerGone { .. }) => {}
                Err(GetError::Aborted {
                    remaining: 0,
                    reason,
                    ..
                }) if reason == format!("stopped at {expect}") => {
                    return Ok((expect, deaths, true))
                }
                Err(GetError::Closed { remaining: 0, .. }) => return Ok((expect, deaths, false)),
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    let mut rng = Rng(0xabcdef);
    let mut kills = 0;
    for round in 0..8u64 {
        let mut env = vec![
            ("NAME", name.clone()),
            ("TOTAL", total.to_string()),
            ("SEED", (round + 1).to_string()),
        ];
        if round == 7 {
            // The last one writes a random stretch more, then aborts.
            env.push(("ABORT_AFTER", (1 + rng.below(100_000)).to_string()));
            Peer::spawn("restart_writer", &env).success()?;
            break;
        }
        // It writes a random stretch and holds: killed while writing or while holding
        // (round 0: surely while holding, with the reader asleep, so at least one death
        // is seen with nothing left to read).
        env.push(("HOLD", (1 + rng.below(400_000)).to_string()));
        let mut w = Peer::spawn("restart_writer", &env);
        check(w.read_line()? == "claimed", "writer did not claim")?;
        if round == 0 {
            until_asleep(&name, DATA_WAITING, reader.tid)?;
        } else {
            std::thread::sleep(Duration::from_millis(rng.below(15)));
        }
        w.kill9();
        kills += 1;
    }
    let (got, deaths, aborted) = reader.wait(*TIMEOUT)?.map_err(Failed::from)?;
    eprintln!(
        "writer restarts: {kills} writers killed, {deaths} deaths reported, {got} items in \
         order, ended by {}",
        if aborted { "the abort" } else { "a close" }
    );
    // Ended by the abort, after exactly the items before it (its reason names the count,
    // checked by the reader).
    check(
        aborted,
        format!("ended by a close after {got} items, not by the abort"),
    )?;
    check(
        deaths >= 1 && deaths <= kills,
        format!("{deaths} deaths reported for {kills} kills"),
    )?;
    drop(chan);
    check(gone(&name), "finished channel left behind")
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        std::process::exit(role_main(&role));
    }
    let args = Arguments::from_args();
    let tests: Vec<(&str, TestFn)> = vec![
        ("reader_first_writer_second", reader_first_writer_second),
        (
            "writer_exits_before_reader_starts",
            writer_exits_before_reader_starts,
        ),
        ("no_spin_stress_membarrier", || {
            // A debug build is slower, so each side sleeps more often per item.
            let items = if cfg!(debug_assertions) {
                500_000
            } else {
                2_000_000
            };
            no_spin_stress("membarrier", items, 10_000)
        }),
        ("no_spin_stress_fence", || {
            no_spin_stress("fence", 200_000, 1000)
        }),
        ("pingpong_race_membarrier", || {
            pingpong_race("membarrier", 200_000, 5_000)
        }),
        ("pingpong_race_fence", || {
            pingpong_race("fence", 20_000, 1_000)
        }),
        (
            "membarrier_forbidden_by_seccomp",
            membarrier_forbidden_by_seccomp,
        ),
        (
            "abort_reaches_reader_after_drain",
            abort_reaches_reader_after_drain,
        ),
        ("closed_get_removes_nothing", closed_get_removes_nothing),
        (
            "reader_close_fails_waiting_put",
            reader_close_fails_waiting_put,
        ),
        (
            "kill_writer_while_reader_waits",
            kill_writer_while_reader_waits,
        ),
        (
            "kill_reader_while_writer_waits",
            kill_reader_while_writer_waits,
        ),
        ("end_taken_across_processes", end_taken_across_processes),
        ("open_errors", open_errors),
        ("planted_segments", planted_segments),
        ("corrupt_indices_are_errors", corrupt_indices_are_errors),
        (
            "permission_denied_for_other_user",
            permission_denied_for_other_user,
        ),
        ("no_space_at_create", no_space_at_create),
        ("create_or_open_race", create_or_open_race),
        ("fronts_are_send", fronts_are_send),
        ("cleanup_rules", cleanup_rules),
        (
            "writer_abort_before_reader_came",
            writer_abort_before_reader_came,
        ),
        (
            "scribbled_peer_record_cannot_hang_the_survivor",
            scribbled_peer_record_cannot_hang_the_survivor,
        ),
        (
            "unwatchable_peer_death_is_found",
            unwatchable_peer_death_is_found,
        ),
        ("foreign_owner_and_symlinks", foreign_owner_and_symlinks),
        (
            "zero_copy_records_across_processes",
            zero_copy_records_across_processes,
        ),
        (
            "fork_child_leaves_the_parents_ends_alone",
            fork_child_leaves_the_parents_ends_alone,
        ),
        (
            "old_handle_drop_spares_a_recreated_channel",
            old_handle_drop_spares_a_recreated_channel,
        ),
        (
            "closed_ends_cannot_be_reclaimed",
            closed_ends_cannot_be_reclaimed,
        ),
        (
            "cancelled_get_removes_nothing",
            cancelled_get_removes_nothing,
        ),
        (
            "long_abort_reason_is_cut_cleanly",
            long_abort_reason_is_cut_cleanly,
        ),
        ("tampered_files_are_foreign", tampered_files_are_foreign),
        (
            "writer_restarts_at_random_points",
            writer_restarts_at_random_points,
        ),
    ];
    let limited = shm_is_limited();
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            // Needs a shared-memory file system with a size limit to exceed.
            let ignored = name == "no_space_at_create" && !limited;
            Trial::test(name, f).with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
