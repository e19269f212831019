//! How a test's end waits (blocking, tokio, or an event loop of the caller's), and how a test
//! sees that a waiting end is asleep.

use shmchan::{Options, WaitStrategy};

use crate::harness::{R, TIMEOUT};

/// Reads a 32-bit word of a channel's header from its file (white-box: the test waits for a
/// side to announce its sleep instead of guessing with a fixed delay).
pub fn header_word(name: &str, offset: u64) -> u32 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(shmchan::channel_dir(name).join("ring")).expect("ring");
    let mut b = [0u8; 4];
    f.read_at(&mut b, offset).expect("read header");
    u32::from_ne_bytes(b)
}

/// Offsets of the waiting words: the reader waiting for data, the writer waiting for room.
pub const DATA_WAITING: u64 = shmchan::layout::DATA_WAITING as u64;
pub const ROOM_WAITING: u64 = shmchan::layout::ROOM_WAITING as u64;

/// Waits (bounded) until the side owning `word`, the thread `tid` of this process, sleeps on
/// its doorbell: it announced (the word is 1) and it is blocked in `poll`/`epoll_wait`.
///
/// The announcement alone is not enough: on a membarrier channel the waiter calls
/// `membarrier(2)` between announcing and re-checking, and on a loaded VM that call can take
/// milliseconds (an IPI to a vCPU the host has descheduled). A test that acted on the
/// announcement would then race the re-check, and the waiter might never sleep.
pub fn until_asleep(name: &str, word: u64, tid: i32) -> R {
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
pub fn in_sleeping_syscall(pid: u32, tid: i32) -> bool {
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

/// How a test end waits: the blocking twin, tokio (a runtime of its own), or an event loop
/// of the caller's (`prepare_wait`, poll(2) on `wait_fd`, `finish_wait`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Via {
    Blocking,
    Tokio,
    EventLoop,
}

/// Every [`Via`], for a test that runs once with each.
pub const ALL_VIAS: [Via; 3] = [Via::Blocking, Via::Tokio, Via::EventLoop];

/// A current-thread tokio runtime.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// poll(2) on an end's wait descriptor until it is readable (no timeout: the test's
/// watchdog bounds it).
pub fn poll_readable(fd: std::os::fd::RawFd) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    while unsafe { libc::poll(&mut p, 1, -1) } < 0 {}
}

/// `get` through `via`.
pub fn get_with(
    r: &mut shmchan::ReaderFront<u64>,
    buf: &mut [u64],
    via: Via,
) -> Result<(), shmchan::Error> {
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
                        .map_err(|e| e.with_progress(filled))?
                    {
                        return Ok(());
                    }
                } else {
                    filled += r
                        .try_get_some(&mut buf[filled..])
                        .map_err(|e| e.with_progress(filled))?;
                    continue;
                }
                let need = want.min(r.capacity());
                if r.prepare_wait(need).map_err(|e| e.with_progress(filled))?
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

/// `put` through `via`.
pub fn put_with(
    w: &mut shmchan::WriterFront<u64>,
    items: &[u64],
    via: Via,
) -> Result<(), shmchan::Error> {
    match via {
        Via::Blocking => w.blocking_put(items),
        Via::Tokio => runtime().block_on(w.put(items)),
        Via::EventLoop => {
            use std::os::fd::AsRawFd;
            let fd = w.wait_fd()?.as_raw_fd();
            let mut done = 0;
            loop {
                done += w
                    .try_put(&items[done..])
                    .map_err(|e| e.with_progress(done))?;
                if done == items.len() {
                    return Ok(());
                }
                if w.prepare_wait(1).map_err(|e| e.with_progress(done))? == shmchan::Readiness::Wait
                {
                    poll_readable(fd);
                    w.finish_wait()?;
                }
            }
        }
    }
}

/// Options whose ends sleep at once instead of spinning first.
pub fn no_spin() -> Options {
    Options::new().wait_strategy(WaitStrategy::Sleep)
}
