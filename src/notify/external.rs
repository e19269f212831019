//! Waiting in someone else's event loop: the eventcount's wait split into *prepare*, a sleep
//! on one descriptor that the caller does itself (asyncio's `add_reader`, mio, glib), and
//! *finish*.
//!
//! The descriptor is an epoll instance of this end's own, stable for the end's life. It
//! holds the doorbell FIFO, the peer's pidfd while one watches the peer, and a timerfd for
//! the timed re-check of a peer that no pidfd can watch: so it becomes readable exactly when
//! the built-in sleep (`sleep.rs`) would have woken.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll;
use rustix::event::{PollFd, PollFlags};

use super::sleep::{arm, drain, read_expirations};
use super::{Ended, Mode, Sleeping, Waiter};
use crate::eventcount;
use crate::segment::Segment;

/// The epoll instance an event loop waits on, and what is in it.
pub(super) struct External {
    epoll: OwnedFd,
    timer: OwnedFd,
    /// The generation (`Waiter::pidfd_gen`) of the pidfd in the set, if one is.
    pid_in_set: Option<u64>,
    /// The timer is armed (a timed sleep was prepared).
    timer_armed: bool,
}

/// What `prepare_wait` found: try again now, or wait for the end's
/// [`wait_fd`](crate::ReaderFront::wait_fd) first.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The condition holds, or the stream ended: try the call again now.
    Ready,
    /// Wait until the descriptor is readable, call `finish_wait`, then try again.
    Wait,
}

/// What [`Waiter::prepare`] found.
pub(crate) enum Prepared<R> {
    /// The condition holds (the announcement is retracted): no sleep.
    Ready(R),
    /// The caller must wait until the descriptor is readable, then call [`Waiter::finish`].
    Sleep,
    /// The wait is over without the condition: the peer died or the header contradicts
    /// itself.
    Ended(Ended),
}

impl External {
    fn new(bell: BorrowedFd<'_>) -> io::Result<External> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let timer = rustix::time::timerfd_create(
            rustix::time::TimerfdClockId::Monotonic,
            rustix::time::TimerfdFlags::NONBLOCK | rustix::time::TimerfdFlags::CLOEXEC,
        )?;
        // Level-triggered (the default): the set is readable while any member is, so a ring
        // that arrives before the caller polls is not lost.
        epoll::add(
            &epoll,
            bell,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )?;
        epoll::add(
            &epoll,
            &timer,
            epoll::EventData::new_u64(2),
            epoll::EventFlags::IN,
        )?;
        Ok(External {
            epoll,
            timer,
            pid_in_set: None,
            timer_armed: false,
        })
    }
}

impl Waiter {
    /// The descriptor to wait on (created on first use, then the same for this end's life).
    pub(crate) fn wait_fd(&mut self) -> io::Result<BorrowedFd<'_>> {
        let ext = self.external()?;
        Ok(ext.epoll.as_fd())
    }

    fn external(&mut self) -> io::Result<&mut External> {
        if self.ext.is_none() {
            let bell = self
                .bell
                .fd()
                .ok_or_else(|| io::Error::other("doorbell descriptor lost"))?;
            self.ext = Some(External::new(bell)?);
        }
        self.ext
            .as_mut()
            .ok_or_else(|| io::Error::other("event-loop descriptor lost"))
    }

    /// The first half of a wait that the caller's event loop sleeps through: announce,
    /// barrier, re-check `check`; then what the peer's lock says. On [`Prepared::Sleep`] the
    /// announcement stands and the epoll set watches everything that ends the sleep.
    ///
    /// The end's [`set_timeout`](crate::ReaderFront::set_timeout) does not apply: the
    /// caller's loop keeps its own deadline.
    pub(crate) fn prepare<R>(
        &mut self,
        seg: &Segment,
        mut check: impl FnMut() -> Option<R>,
    ) -> io::Result<Prepared<R>> {
        self.external()?;
        self.deadline = None;
        let waiting = seg.header().waiting_word(self.end);
        let mut sleeping = Sleeping {
            waiter: self,
            seg,
            mode: Mode::Blocking,
        };
        if let Some(r) = eventcount::prepare(waiting, &mut sleeping, &mut check)? {
            return Ok(Prepared::Ready(r));
        }
        // Blocking mode: the pidfd, if any, is left plain (the caller's loop, not tokio,
        // watches it).
        let timeout = match self.before_sleeping(seg, Mode::Blocking)? {
            Ok(timeout) => timeout,
            Err(end) => {
                eventcount::retract(waiting);
                // As the skeleton does: the peer may have published just before it went.
                return Ok(match check() {
                    Some(r) => Prepared::Ready(r),
                    None => Prepared::Ended(end),
                });
            }
        };
        self.sync_pidfd()?;
        if let Some(t) = timeout {
            self.arm_timer(t)?;
        }
        self.stats.sleeps += 1;
        Ok(Prepared::Sleep)
    }

    /// Puts the pidfd that watches the peer now (if any) into the epoll set.
    fn sync_pidfd(&mut self) -> io::Result<()> {
        let current = self.pidfd.as_ref().and_then(|p| p.fd());
        let generation = self.pidfd_gen;
        let Some(ext) = self.ext.as_mut() else {
            return Ok(());
        };
        let Some(fd) = current else {
            // No pidfd now: the one that was in the set was closed, which removed it (no
            // other descriptor shares its open file description).
            ext.pid_in_set = None;
            return Ok(());
        };
        if ext.pid_in_set == Some(generation) {
            return Ok(());
        }
        let data = epoll::EventData::new_u64(1);
        match epoll::add(&ext.epoll, fd, data, epoll::EventFlags::IN) {
            Ok(()) => {}
            // A descriptor of that number is in the set: a closed pidfd whose number was
            // reused before we saw it go cannot be (closing removed it), so it is this one.
            Err(rustix::io::Errno::EXIST) => {
                epoll::modify(&ext.epoll, fd, data, epoll::EventFlags::IN)?
            }
            Err(e) => return Err(e.into()),
        }
        ext.pid_in_set = Some(generation);
        self.stats.other_syscalls += 1;
        Ok(())
    }

    fn arm_timer(&mut self, after: Duration) -> io::Result<()> {
        if let Some(ext) = self.ext.as_mut() {
            // A zero duration would disarm: make it the shortest wait instead.
            arm(ext.timer.as_fd(), after.max(Duration::from_nanos(1)))?;
            ext.timer_armed = true;
            self.stats.other_syscalls += 1;
        }
        Ok(())
    }

    /// The second half, after the descriptor was readable (or the caller gave up waiting):
    /// empties the doorbell, notes a peer whose pidfd fired, disarms the timer. The caller
    /// then checks its condition again (and prepares again if it still does not hold).
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        let Some(ext) = self.ext.as_mut() else {
            return Ok(());
        };
        if let Some(bell) = self.bell.fd() {
            match drain(bell, &mut self.stats.other_syscalls) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
        if ext.timer_armed {
            match read_expirations(ext.timer.as_fd()) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            arm(ext.timer.as_fd(), Duration::ZERO)?;
            ext.timer_armed = false;
            self.stats.other_syscalls += 2;
        }
        let exited = match self.pidfd.as_ref().and_then(|p| p.fd()) {
            Some(fd) if ext.pid_in_set == Some(self.pidfd_gen) => {
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                let zero = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                self.stats.other_syscalls += 1;
                rustix::event::poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0)
            }
            _ => false,
        };
        if exited {
            // As after the built-in sleep: if the lock still shows this holder next time, it
            // outlived the process (`dead` keeps us from watching it again).
            self.dead = self.watched.take();
            self.pidfd = None;
            ext.pid_in_set = None;
            self.recheck = super::RECHECK_FIRST;
        }
        Ok(())
    }
}
