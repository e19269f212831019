//! Sleeping: on the doorbell FIFO and the peer's pidfd (and a timer, for a peer that cannot
//! be watched), with `poll(2)` for the blocking twins or through tokio for async calls.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::task::Poll;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::Waiter;

/// A descriptor we wait on: plain until the first async wait registers it with tokio.
pub(super) enum Pollable {
    Plain(OwnedFd),
    Registered(AsyncFd<OwnedFd>),
    /// Only transiently, while moving between the two.
    Moved,
}

impl Pollable {
    pub(super) fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Pollable::Plain(fd) => Some(fd.as_fd()),
            Pollable::Registered(a) => Some(a.get_ref().as_fd()),
            Pollable::Moved => None,
        }
    }

    /// Registers the descriptor with the current tokio runtime (once).
    pub(super) fn registered(&mut self) -> io::Result<&AsyncFd<OwnedFd>> {
        if let Pollable::Plain(_) = self {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(io::Error::other(
                    "an async method was called outside a tokio runtime; use its blocking_ twin",
                ));
            }
            let Pollable::Plain(fd) = std::mem::replace(self, Pollable::Moved) else {
                unreachable!("matched Plain above")
            };
            // SAFETY: `fd` is an open descriptor that the AsyncFd takes ownership of; it
            // stays open, and refers to the same open file description, until the AsyncFd is
            // dropped, since nothing else owns it.
            match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
                Ok(a) => *self = Pollable::Registered(a),
                Err(e) => {
                    let (fd, err) = e.into_parts();
                    *self = Pollable::Plain(fd);
                    return Err(err);
                }
            }
        }
        match self {
            Pollable::Registered(a) => Ok(a),
            _ => Err(io::Error::other("doorbell descriptor lost")),
        }
    }
}

/// Reads a doorbell FIFO (or a timerfd) until it is empty, or at most 64 KiB so a peer that
/// keeps writing cannot hold us here. Returns `WouldBlock` once empty, as tokio's `try_io`
/// wants to see before it clears readiness; `Ok` if it stopped early (readiness stays set,
/// and the next wait drains the rest).
pub(super) fn drain(fd: BorrowedFd<'_>, reads: &mut u64) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        *reads += 1;
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Err(io::ErrorKind::WouldBlock.into()),
            Ok(_) => continue,
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Waiter {
    /// Sleeps in poll(2) until the doorbell rings, the peer's pidfd fires, or `timeout`.
    pub(super) fn sleep_blocking(&mut self, timeout: Option<Duration>) -> io::Result<Woke> {
        let bell = self
            .bell
            .fd()
            .ok_or_else(|| io::Error::other("doorbell descriptor lost"))?;
        let pid = self.pidfd.as_ref().and_then(Pollable::fd);
        let mut fds = Vec::with_capacity(2);
        fds.push(PollFd::new(&bell, PollFlags::IN));
        if let Some(p) = &pid {
            fds.push(PollFd::new(p, PollFlags::IN));
        }
        let ts = timeout.map(|t| rustix::time::Timespec {
            tv_sec: t.as_secs() as i64,
            tv_nsec: t.subsec_nanos() as i64,
        });
        loop {
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let rang = !fds[0].revents().is_empty();
        let died = fds.get(1).is_some_and(|p| !p.revents().is_empty());
        if rang {
            match drain(bell, &mut self.stats.other_syscalls) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            return Ok(Woke::Rang);
        }
        Ok(if died {
            Woke::PeerExited
        } else {
            Woke::TimedOut
        })
    }

    /// Registers the descriptors of an async sleep with tokio, and arms the timer for
    /// `timeout` if there is one.
    fn register_async(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.bell.registered()?;
        if let Some(p) = self.pidfd.as_mut() {
            // Normally registered by `watch` already (which falls back to the timed re-check
            // when registration fails); a runtime change can still fail here.
            if p.registered().is_err() {
                self.pidfd = None;
                self.watched = None;
            }
        }
        if let Some(t) = timeout {
            let timer = match &mut self.timer {
                Some(timer) => timer,
                None => self
                    .timer
                    .insert(Pollable::Plain(rustix::time::timerfd_create(
                        rustix::time::TimerfdClockId::Monotonic,
                        rustix::time::TimerfdFlags::NONBLOCK | rustix::time::TimerfdFlags::CLOEXEC,
                    )?)),
            };
            arm(timer.registered()?.get_ref().as_fd(), t)?;
            self.stats.other_syscalls += 1;
        }
        Ok(())
    }

    /// Awaits the doorbell, the peer's pidfd, or `timeout`, through tokio.
    pub(super) async fn sleep_async(&mut self, timeout: Option<Duration>) -> io::Result<Woke> {
        self.register_async(timeout)?;
        let bell = match &self.bell {
            Pollable::Registered(a) => a,
            _ => return Err(io::Error::other("doorbell not registered")),
        };
        let pid = match &self.pidfd {
            Some(Pollable::Registered(a)) => Some(a),
            _ => None,
        };
        let timer = match (&self.timer, timeout) {
            (Some(Pollable::Registered(a)), Some(_)) => Some(a),
            _ => None,
        };
        let reads = &mut self.stats.other_syscalls;
        let woke = poll_fn(|cx| {
            if let Poll::Ready(guard) = bell.poll_read_ready(cx) {
                let mut guard = guard?;
                // Drain until WouldBlock: try_io then clears tokio's readiness, but only if
                // no new edge arrived since the guard was made (so a ring that races with
                // the drain is not lost).
                return match guard.try_io(|a| drain(a.get_ref().as_fd(), reads)) {
                    Ok(Err(e)) if e.kind() != io::ErrorKind::WouldBlock => Poll::Ready(Err(e)),
                    _ => Poll::Ready(Ok(Woke::Rang)),
                };
            }
            if let Some(p) = pid {
                if let Poll::Ready(guard) = p.poll_read_ready(cx) {
                    // A pidfd stays readable once its process exited; we do not clear it.
                    guard?.retain_ready();
                    return Poll::Ready(Ok(Woke::PeerExited));
                }
            }
            if let Some(t) = timer {
                // Readiness left over from an earlier expiry is cleared by a read that finds
                // no expiration; then poll again, which registers our waker.
                while let Poll::Ready(guard) = t.poll_read_ready(cx) {
                    *reads += 1;
                    match guard?.try_io(|a| read_expirations(a.get_ref().as_fd())) {
                        Ok(Ok(_)) => return Poll::Ready(Ok(Woke::TimedOut)),
                        Ok(Err(e)) => return Poll::Ready(Err(e)),
                        Err(_would_block) => continue,
                    }
                }
            }
            Poll::Pending
        })
        .await;
        if let (Some(t), Some(_)) = (&self.timer, timeout) {
            if let Some(fd) = t.fd() {
                // Disarm, so a later expiry does not wake a future sleep for nothing.
                arm(fd, Duration::ZERO)?;
                self.stats.other_syscalls += 1;
            }
        }
        woke
    }
}

/// Arms a timerfd to expire once after `after` (zero disarms it).
pub(crate) fn arm(fd: BorrowedFd<'_>, after: Duration) -> io::Result<()> {
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let spec = rustix::time::Itimerspec {
        it_interval: zero,
        it_value: rustix::time::Timespec {
            tv_sec: after.as_secs() as i64,
            tv_nsec: after.subsec_nanos() as i64,
        },
    };
    rustix::time::timerfd_settime(fd, rustix::time::TimerfdTimerFlags::empty(), &spec)?;
    Ok(())
}

/// Reads a timerfd's expiration count; `WouldBlock` if it has not expired.
pub(super) fn read_expirations(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(_) => return Ok(u64::from_ne_bytes(buf)),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why a sleep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Woke {
    Rang,
    PeerExited,
    TimedOut,
}
