//! Waking a sleeping peer: an eventcount per direction, with a named FIFO as its doorbell.
//!
//! # The protocol
//!
//! Each direction has a *waiting word* in the header (`data_waiting`: the reader may sleep
//! until items arrive; `room_waiting`: the writer may sleep until room frees up) and a
//! doorbell FIFO (`data.bell`, `room.bell`) that the sleeper polls.
//!
//! ```text
//! waiter                                  notifier
//! ------                                  --------
//! check condition          -> done?       publish (tail/head store, Release)
//! waiting.store(1)                        fence(SeqCst)
//! fence(SeqCst)                           if waiting.load() != 0
//! check condition again    -> done?           && waiting.swap(0) != 0 { ring the doorbell }
//! sleep on the doorbell (and the peer's pidfd)
//! drain the doorbell, loop
//! ```
//!
//! The two fences make this Dekker's pattern: of the waiter's `store(waiting)` → `load(index)`
//! and the notifier's `store(index)` → `load(waiting)`, at least one side's load sees the other
//! side's store. So either the waiter's second check sees the new index (and it does not
//! sleep), or the notifier sees `waiting == 1` and rings (and the sleep returns at once, since
//! the FIFO byte stays until drained, even if it was written before the waiter began to poll).
//! The interleaving this prevents — the waiter checks (empty), the notifier publishes and
//! reads `waiting == 0`, the waiter sets `waiting = 1` and sleeps forever — needs both loads
//! to miss both stores, which the fences forbid.
//!
//! The fast path — the peer is not sleeping — costs the notifier (on a `Barrier::Fence`
//! channel) one fence and one load of a line that stays shared in its cache: no system call.
//! On a channel created with
//! [`Barrier::Membarrier`](crate::Barrier::Membarrier) (the default where the kernel allows
//! it) the notifier's fence is only a compiler fence, and the waiter instead calls
//! `membarrier(2)` between its announcement and its second check, which forces the fence on
//! the notifier's CPU just when it matters; see `barrier`. The two halves are in `eventcount`
//! (model-checked by `tests/loom.rs`). A spurious byte in a FIFO (a notifier
//! rang for a waiter whose second check succeeded) costs one extra loop on a later wait.
//!
//! # Why FIFOs
//!
//! A doorbell must be reachable by name by unrelated processes started in either order, and
//! awaitable by tokio without a thread per waiter. A named FIFO opened `O_RDWR | O_NONBLOCK`
//! never blocks on open, never raises SIGPIPE, and is an ordinary pollable descriptor:
//! `poll(2)` for the blocking twins, [`AsyncFd`] for async.
//!
//! # Peer death
//!
//! While sleeping, the waiter also polls a pidfd of the peer's process, so a peer killed with
//! SIGKILL wakes it. The pidfd is only a hint: the truth is the peer end's OFD lock, which the
//! kernel drops when the holder dies (see `liveness`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::eventcount::{self, Sleeper, Waited};
use crate::header::End;
use crate::liveness::{peer_status, PeerStatus};
use crate::segment::{self, Segment};

mod external;
mod sleep;
mod strategy;

pub(crate) use external::Prepared;
pub use external::Readiness;
pub(crate) use sleep::arm as arm_timer;

use sleep::{Pollable, Woke};
pub(crate) use strategy::{run_blocking, FastThenSlow, Mode};
pub use strategy::{WaitStats, WaitStrategy};

/// The writer's pause between two reads of `head` while it waits for room. Each read pulls
/// the line of `head` into the writer's cache, and the reader's next store to `head` must take
/// it back: a writer polling as fast as it can makes every one of a busy reader's stores
/// miss, and slows the very reader it waits for (single items: from ~100 M/s to ~10 M/s when
/// the reader was the slower side). Eight pause instructions (~0.1–0.5 µs, by CPU model) let
/// the reader free a few cache lines' worth between polls; a writer waiting for room is a
/// throughput situation, where that delay costs nothing. The reader, whose wait is the
/// latency path, polls `tail` with one pause.
#[inline]
pub(crate) fn pause_between_polls() {
    for _ in 0..8 {
        std::hint::spin_loop();
    }
}

/// Rings a doorbell: one byte into the FIFO. A full FIFO (EAGAIN) is already readable, so
/// the byte is not needed.
pub(crate) fn ring(bell: BorrowedFd<'_>) {
    loop {
        match rustix::io::write(bell, &[1u8]) {
            Err(Errno::INTR) => continue,
            _ => return,
        }
    }
}

/// How a wait ended: `Ready` with what the condition returned, or `Ended` by one of
/// [`Ended`]'s reasons (the condition still not holding).
pub(crate) type Wake<R> = Waited<R, Ended>;

/// A peer-end holder, as recorded in the header: its claim number and pid.
type Holder = (u64, u32);

/// How long a spin goes before it starts yielding the CPU now and then.
const SPIN_BEFORE_YIELD: Duration = Duration::from_micros(20);
/// Least time between two yields of one spin: enough for a peer that shares our core to run
/// (a yield hands it the CPU at once), few enough that a spin costs at most a handful of
/// system calls (a yield every 64 checks made ~12 per 50 µs wait, the bulk of all system
/// calls in single-item streaming).
const YIELD_EVERY: Duration = Duration::from_micros(10);

/// First and last re-check interval while the peer cannot be watched with a pidfd.
const RECHECK_FIRST: Duration = Duration::from_millis(1);
const RECHECK_MAX: Duration = Duration::from_secs(1);

/// One end's waiting machinery: its own doorbell, the peer's doorbell, and the peer watch.
pub(crate) struct Waiter {
    /// The end that waits here.
    end: End,
    bell: Pollable,
    peer_bell: OwnedFd,
    /// The holder `pidfd` watches, if any.
    watched: Option<Holder>,
    pidfd: Option<Pollable>,
    /// Counts the pidfds opened: tells the event-loop set (`external`) whether the pidfd in
    /// it is the current one (a holder can be watched again through a new pidfd).
    pidfd_gen: u64,
    /// A holder whose pidfd fired while its end stayed locked (the lock outlives it, e.g.
    /// held by a child it forked): never watched again, so its pidfd cannot spin us.
    dead: Option<Holder>,
    /// Interval of the next timed re-check of an unwatchable peer.
    recheck: Duration,
    /// Timer for timed re-checks in async mode (created on first need).
    timer: Option<Pollable>,
    /// The epoll set of waits in the caller's event loop (created on first need).
    ext: Option<external::External>,
    /// The claim count of a peer holder whose death a wait already reported: reported once,
    /// after which waits wait for a new holder.
    reported_gone: Option<u64>,
    /// What this process has seen of the peer end, kept in our own memory so that a peer
    /// who scribbles the header cannot make us forget it: the highest claim count, and
    /// whether a holder ever held the end's lock.
    peer_claims_seen: u64,
    peer_seen: bool,
    /// The longest a wait may last ([`set_timeout`](crate::ReaderFront::set_timeout)), and
    /// the deadline of the wait under way.
    pub(crate) timeout: Option<Duration>,
    deadline: Option<Instant>,
    /// The channel uses the asymmetric barrier (`barrier`): no fence when notifying,
    /// `membarrier(2)` after announcing a sleep.
    asymmetric: bool,
    pub(crate) strategy: WaitStrategy,
    pub(crate) stats: WaitStats,
}

/// What ends a wait other than its condition.
pub(crate) enum Ended {
    /// The peer's process died (or left without closing). `holder` identifies the dead
    /// holder (its claim count): pass it to [`Waiter::reported`] once the caller has told
    /// its own caller (and has nothing left to hand out), so that later waits wait for a
    /// new holder instead.
    PeerGone { holder: u64 },
    /// The deadline set with `set_timeout` passed.
    TimedOut,
    /// The header's record of the peer end contradicts what this end saw before (see
    /// [`Waiter::contradiction`]).
    Corrupt(String),
}

impl Waiter {
    /// Takes descriptors for both doorbells of `seg` for `end`.
    pub(crate) fn new(seg: &Segment, end: End, strategy: WaitStrategy) -> io::Result<Waiter> {
        let (own, peer) = match end {
            End::Reader => (segment::DATA_BELL, segment::ROOM_BELL),
            End::Writer => (segment::ROOM_BELL, segment::DATA_BELL),
        };
        Ok(Waiter {
            end,
            bell: Pollable::Plain(seg.bell(own)?),
            peer_bell: seg.bell(peer)?,
            watched: None,
            pidfd: None,
            pidfd_gen: 0,
            dead: None,
            recheck: RECHECK_FIRST,
            timer: None,
            ext: None,
            reported_gone: None,
            peer_claims_seen: 0,
            peer_seen: false,
            timeout: None,
            deadline: None,
            asymmetric: seg.membarrier,
            strategy,
            stats: WaitStats::default(),
        })
    }

    /// Records that the death of peer holder `holder` has been reported to the user: from
    /// now on, waits treat that holder as absent and wait for a new one (a restarted
    /// process, which rings us when it claims).
    pub(crate) fn reported(&mut self, holder: u64) {
        self.reported_gone = Some(holder);
    }

    /// A descriptor of the peer's doorbell that outlives this waiter (None if it cannot be
    /// duplicated), to ring after the end is released.
    pub(crate) fn peer_bell(&self) -> Option<OwnedFd> {
        self.peer_bell.try_clone().ok()
    }

    /// Lets go of the descriptors registered with tokio without deregistering them, in a
    /// process that inherited this waiter through fork. A deregistration is an
    /// `epoll_ctl(EPOLL_CTL_DEL)` on the runtime's epoll instance, which the child shares
    /// with the claimant, for a descriptor whose number and open file description are the
    /// claimant's too: it would remove the claimant's registration, and the claimant's async
    /// waits would never wake again. The descriptors stay open here until this process
    /// exits (closing them would not remove the registration either: the claimant keeps the
    /// open file descriptions).
    pub(crate) fn forsake(&mut self) {
        let pollables = std::iter::once(&mut self.bell)
            .chain(self.pidfd.as_mut())
            .chain(self.timer.as_mut());
        for p in pollables {
            if let Pollable::Registered(_) = p {
                std::mem::forget(std::mem::replace(p, Pollable::Moved));
            }
        }
    }

    /// Rings the peer's doorbell unconditionally (claim, close).
    pub(crate) fn ring_peer(&mut self) {
        ring(self.peer_bell.as_fd());
        self.stats.rings += 1;
    }

    /// The notifier's half of the eventcount towards the peer (see the module docs).
    #[inline]
    pub(crate) fn notify_peer(&mut self, waiting: &AtomicU32) {
        // The notifier's half of the eventcount, right after the caller published with a
        // Release store; the bell's descriptor is looked at only to ring it.
        if eventcount::must_ring(waiting, self.asymmetric) {
            ring(self.peer_bell.as_fd());
            self.stats.rings += 1;
        }
    }

    /// Waits until `check` returns `Some`, or the peer dies (and `check` still says no).
    ///
    /// `check` must be cheap and must not block: it is called in the spin loop and twice per
    /// sleep. In [`Mode::Blocking`] the returned future never returns `Pending`.
    pub(crate) async fn wait<R>(
        &mut self,
        seg: &Segment,
        mode: Mode,
        mut check: impl FnMut() -> Option<R>,
    ) -> io::Result<Wake<R>> {
        self.deadline = self.timeout.map(|t| Instant::now() + t);
        if let Some(r) = self.spin(&mut check) {
            return Ok(Wake::Ready(r));
        }
        let waiting = seg.header().waiting_word(self.end);
        self.recheck = RECHECK_FIRST;
        let mut sleeping = Sleeping {
            waiter: self,
            seg,
            mode,
        };
        eventcount::wait(waiting, &mut sleeping, check).await
    }

    /// The spin phase of a wait, under [`WaitStrategy::SpinThenSleep`]: checks until `check`
    /// says yes or the window is over (then `None`: sleep).
    fn spin<R>(&mut self, check: &mut impl FnMut() -> Option<R>) -> Option<R> {
        let WaitStrategy::SpinThenSleep(window) = self.strategy else {
            return None;
        };
        if window.is_zero() {
            return None;
        }
        // The clock starts at the 64th check: most waits of a streaming peer end sooner, and
        // never read it (a vDSO call, not a system call, but ~20 ns).
        let mut start = None;
        let mut next_yield = SPIN_BEFORE_YIELD;
        let mut i = 0u32;
        loop {
            if let Some(r) = check() {
                return Some(r);
            }
            i = i.wrapping_add(1);
            if self.end == End::Writer {
                pause_between_polls();
            } else {
                std::hint::spin_loop();
            }
            if i % 64 == 0 {
                let now = Instant::now();
                let spun = now - *start.get_or_insert(now);
                if spun >= window {
                    return None;
                }
                // A peer that has not answered within ~20 µs may share our core (it was
                // preempted, or the machine is oversubscribed): let it run. Yielding sooner
                // would cost a system call on most short waits.
                if spun >= next_yield {
                    std::thread::yield_now();
                    self.stats.spin_yields += 1;
                    next_yield = spun + YIELD_EVERY;
                }
            }
        }
    }

    /// What the peer's lock says before a sleep: the end of the wait (the holder died, the
    /// deadline passed, the header contradicts itself), or how long the sleep may last
    /// (`None`: until woken).
    fn before_sleeping(
        &mut self,
        seg: &Segment,
        mode: Mode,
    ) -> io::Result<Result<Option<Duration>, Ended>> {
        self.stats.other_syscalls += u64::from(!seg.claimed_local(self.end.peer()));
        let status = peer_status(seg, self.end.peer())?;
        if let Some(end) = self.contradiction(status) {
            return Ok(Err(end));
        }
        let recheck = match status {
            PeerStatus::Gone { claims } if self.reported_gone == Some(claims) => {
                // This holder's death was reported already: wait for a new holder (a
                // restarted process), as before any came; it rings us once it claims.
                self.pidfd = None;
                self.watched = None;
                None
            }
            // The peer may have closed properly between our check and the lock probe (it
            // sets its state before it unlocks): the skeleton checks once more.
            PeerStatus::Gone { claims } => return Ok(Err(Ended::PeerGone { holder: claims })),
            PeerStatus::Alive {
                claims,
                pid,
                start_time,
            } => {
                if self.watch((claims, pid), start_time, mode) {
                    None
                } else {
                    // Alive by its lock but no pidfd can tell us of its death (another pid
                    // namespace, an identity we cannot check, or a lock that outlived the
                    // process we watched): re-check the lock now and then, backing off to
                    // once a second. Doorbell rings still wake us at once; this is only the
                    // peer's death watch, never the data path.
                    let t = self.recheck;
                    self.recheck = (t * 2).min(RECHECK_MAX);
                    Some(t)
                }
            }
            PeerStatus::NeverClaimed => {
                // A new peer rings our doorbell after it claims its end.
                self.pidfd = None;
                self.watched = None;
                None
            }
        };
        self.stats.timed_sleeps += u64::from(recheck.is_some());
        let Some(deadline) = self.deadline else {
            return Ok(Ok(recheck));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Err(Ended::TimedOut));
        }
        Ok(Ok(Some(recheck.map_or(left, |t| t.min(left)))))
    }

    /// Checks the peer's status against what this process saw of the peer before: a claim
    /// count never goes back, and an end that was held is never "never claimed" (a peer
    /// that zeroed its count must not make us wait with no death watch). Records what it
    /// sees.
    fn contradiction(&mut self, status: PeerStatus) -> Option<Ended> {
        let claims = match status {
            PeerStatus::Alive { claims, .. } => {
                self.peer_seen = true;
                claims
            }
            PeerStatus::Gone { claims } => claims,
            // The lock, not the count, is the truth about holders: one held it, and no one
            // does now, so it is gone (reported once, as any death).
            PeerStatus::NeverClaimed if self.peer_seen && self.reported_gone != Some(0) => {
                return Some(Ended::PeerGone { holder: 0 });
            }
            PeerStatus::NeverClaimed => 0,
        };
        if claims < self.peer_claims_seen {
            return Some(Ended::Corrupt(format!(
                "the {} end's claim count went back from {} to {claims}",
                self.end.peer(),
                self.peer_claims_seen
            )));
        }
        self.peer_claims_seen = claims;
        None
    }

    /// Makes sure a pidfd watches `holder` (registered with tokio in async mode); false if
    /// none can.
    fn watch(&mut self, holder: Holder, start_time: u64, mode: Mode) -> bool {
        if self.watched == Some(holder) && self.pidfd.is_some() {
            return true;
        }
        self.watched = None;
        self.pidfd = None;
        if self.dead == Some(holder) {
            return false;
        }
        // A hostile pid ≥ 2^31 or 0 is simply not watchable.
        let Some(pid) = i32::try_from(holder.1)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK) else {
            // Gone already (the lock probe will say so), or not visible from our pid
            // namespace.
            return false;
        };
        // The pid must still be the process that claimed (pid reuse, or a pid from another
        // namespace, or a scribbled one): its start time must match the recorded one. An
        // identity that cannot be checked (no start time recorded) is not watched: the
        // timed re-check of the lock takes over, so a pid pointing at a process that never
        // exits (init) cannot make us sleep forever.
        if start_time == 0 || crate::liveness::process_start_time(holder.1) != Some(start_time) {
            return false;
        }
        let mut pidfd = Pollable::Plain(fd);
        if mode == Mode::Async && pidfd.registered().is_err() {
            return false;
        }
        self.watched = Some(holder);
        self.pidfd = Some(pidfd);
        self.pidfd_gen += 1;
        true
    }
}

/// A [`Waiter`] about to sleep for its end of `seg`: the library's [`Sleeper`] for the
/// eventcount's wait skeleton.
struct Sleeping<'a> {
    waiter: &'a mut Waiter,
    seg: &'a Segment,
    mode: Mode,
}

impl Sleeper for Sleeping<'_> {
    type End = Ended;
    type Error = io::Error;

    fn barrier(&mut self) -> io::Result<()> {
        if self.waiter.asymmetric {
            // The peer's notify has no fence: make its thread execute one before our re-check
            // (see `barrier` for why this closes the lost-wakeup window).
            self.waiter.stats.barriers += 1;
            crate::barrier::heavy()?;
        }
        Ok(())
    }

    async fn sleep_once(&mut self) -> io::Result<Option<Ended>> {
        let w = &mut *self.waiter;
        let timeout = match w.before_sleeping(self.seg, self.mode)? {
            Ok(timeout) => timeout,
            Err(end) => return Ok(Some(end)),
        };
        w.stats.sleeps += 1;
        let woke = match self.mode {
            Mode::Blocking => w.sleep_blocking(timeout)?,
            Mode::Async => w.sleep_async(timeout).await?,
        };
        if woke == Woke::PeerExited {
            // The pidfd fired. If the lock still shows the same holder next round, the lock
            // outlived the process (a forked child, a deferred close): `dead` keeps us from
            // watching it again, and the timed re-check takes over.
            w.dead = w.watched.take();
            w.pidfd = None;
            w.recheck = RECHECK_FIRST;
        }
        Ok(None)
    }
}
