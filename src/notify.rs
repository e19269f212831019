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

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::task::Poll;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::eventcount;
use crate::header::End;
use crate::liveness::{peer_status, PeerStatus};
use crate::segment::{self, Segment};

/// How a waiting `put`/`get` waits.
///
/// Waiting for items or room always ends in a real wakeup (the peer's doorbell), never in a
/// timed poll; a peer's death wakes a sleeper through a pidfd. (Only a peer whose process
/// cannot be watched — another pid namespace — is re-checked on a timer, backing off to once
/// a second.) The strategy only decides whether to spin briefly first, which saves the
/// ~5–50 µs of a kernel wakeup when the peer answers within the spin window, at the cost of
/// burning CPU for that window.
///
/// ```
/// use std::time::Duration;
/// use shmchan::{ChannelIo, Options, WaitStrategy};
/// # let name = format!("doc-strategy-{}", std::process::id());
/// // Latency first: spin up to 200 µs before sleeping.
/// let spin = Options::new().wait_strategy(WaitStrategy::SpinThenSleep(Duration::from_micros(200)));
/// let chan = ChannelIo::<u64>::create(&name, spin)?;
/// let mut r = chan.reader()?;
/// r.set_wait_strategy(WaitStrategy::Sleep); // or change it per end later
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Sleep on the doorbell at once. Costs no CPU while waiting; every wait that is not
    /// satisfied immediately pays a kernel wakeup. Tests use it to force every wait through
    /// the doorbell, which is what finds lost wakeups.
    Sleep,
    /// Spin for up to this long (checking, with `spin_loop` hints; past 20 µs also
    /// `sched_yield` every 10 µs, so a peer sharing our core can run), then sleep.
    SpinThenSleep(Duration),
}

impl Default for WaitStrategy {
    /// `SpinThenSleep(50 µs)`.
    fn default() -> Self {
        WaitStrategy::SpinThenSleep(Duration::from_micros(50))
    }
}

pin_project_lite::pin_project! {
    /// The future of an async call with a fast path: the first poll runs `start`, which
    /// either finishes the call at once (`Err(output)`: the common case, items or room were
    /// there) or returns the waiting future (`Ok(future)`), which later polls drive.
    ///
    /// The same shape as an `async fn` that tries first and awaits after; but an `async fn`'s
    /// state machine contains its whole slow path, so the compiler keeps its `poll` out of
    /// line and hands the result back through memory. Measured on single items across
    /// processes, an async `get` ran at 10–23 M/s against ~100 M/s for `blocking_get`, the
    /// reader stalling on reloading that result from the stack behind its pending store of
    /// `head`. Here the fast path is a small generic `poll` that inlines into the caller.
    #[project = FastProj]
    pub(crate) enum FastThenSlow<M, F, O> {
        Start { start: Option<M>, _o: std::marker::PhantomData<fn() -> O> },
        Waiting { #[pin] future: F },
    }
}

impl<M, F, O> FastThenSlow<M, F, O>
where
    M: FnOnce() -> Result<F, O>,
    F: std::future::Future<Output = O>,
{
    /// A future that runs `start` on its first poll.
    #[inline(always)]
    pub(crate) fn new(start: M) -> Self {
        FastThenSlow::Start {
            start: Some(start),
            _o: std::marker::PhantomData,
        }
    }
}

impl<M, F, O> std::future::Future for FastThenSlow<M, F, O>
where
    M: FnOnce() -> Result<F, O>,
    F: std::future::Future<Output = O>,
{
    type Output = O;

    #[inline(always)]
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<O> {
        if let FastProj::Start { start, .. } = self.as_mut().project() {
            let start = start
                .take()
                .expect("FastThenSlow polled again after it completed");
            match start() {
                Err(done) => return Poll::Ready(done),
                Ok(future) => self.set(FastThenSlow::Waiting { future }),
            }
        }
        match self.project() {
            FastProj::Waiting { future } => future.poll(cx),
            FastProj::Start { .. } => unreachable!("set to Waiting above"),
        }
    }
}

/// Whether a wait may block the thread (blocking twins) or must yield to tokio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Async,
    Blocking,
}

/// How a wait ended.
pub(crate) enum Wake<R> {
    /// The condition returned `Some`.
    Ready(R),
    /// The peer's process died, the condition still does not hold, and the peer did not
    /// close its end first. `holder` identifies the dead holder: pass it to
    /// [`Waiter::reported`] once the caller has told its own caller (and has nothing left to
    /// hand out), so that later waits wait for a new holder instead.
    PeerGone { holder: u64 },
}

/// A descriptor we wait on: plain until the first async wait registers it with tokio.
enum Pollable {
    Plain(OwnedFd),
    Registered(AsyncFd<OwnedFd>),
    /// Only transiently, while moving between the two.
    Moved,
}

impl Pollable {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Pollable::Plain(fd) => Some(fd.as_fd()),
            Pollable::Registered(a) => Some(a.get_ref().as_fd()),
            Pollable::Moved => None,
        }
    }

    /// Registers the descriptor with the current tokio runtime (once).
    fn registered(&mut self) -> io::Result<&AsyncFd<OwnedFd>> {
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
fn drain(fd: BorrowedFd<'_>, reads: &mut u64) -> io::Result<()> {
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

/// The notifier's half of the eventcount: call right after publishing with a Release store.
/// Returns true if it rang (made a system call).
#[inline]
pub(crate) fn notify(waiting: &AtomicU32, bell: BorrowedFd<'_>, asymmetric: bool) -> bool {
    if eventcount::must_ring(waiting, asymmetric) {
        ring(bell);
        return true;
    }
    false
}

/// Counters of one end's waiting: each sleep and each ring is one system call; everything
/// else an end does on the fast path makes none.
///
/// ```
/// # use shmchan::{ChannelIo, Options};
/// # let name = format!("doc-stats-{}", std::process::id());
/// let chan = ChannelIo::<u32>::create(&name, Options::new())?;
/// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
/// for i in 0..1000 {
///     w.blocking_put(&[i])?;
///     r.blocking_get(&mut [0])?;
/// }
/// // Nobody ever slept, so nobody rang: 2000 operations, no system call but the one
/// // ring each end made when it claimed.
/// assert_eq!(w.wait_stats().sleeps + r.wait_stats().sleeps, 0);
/// assert_eq!(w.wait_stats().rings + r.wait_stats().rings, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitStats {
    /// Times this end went to sleep on its doorbell (`poll(2)` or tokio's epoll).
    pub sleeps: u64,
    /// Times this end rang the peer's doorbell (a `write(2)`), including on claim and close.
    pub rings: u64,
    /// Sleeps that had a timeout because the peer's process could not be watched (see
    /// [`WaitStrategy`]); 0 whenever peers are in our pid namespace.
    pub timed_sleeps: u64,
    /// `sched_yield(2)` calls made while spinning (a system call each).
    pub spin_yields: u64,
    /// `membarrier(2)` calls: one each time this end announced a sleep on a
    /// [`Barrier::Membarrier`](crate::Barrier::Membarrier) channel (whether or not its
    /// re-check then found what it waited for).
    pub barriers: u64,
    /// The other system calls of waiting: the peer-lock probe before each sleep, the reads that drain a doorbell, opening a pidfd for a new peer
    /// (and reading its start time), arming a timer.
    pub other_syscalls: u64,
}

impl WaitStats {
    /// Every system call this end made to wait and to wake its peer: sleeps (one `poll` or
    /// `epoll_wait` each), rings, spin yields, barriers and the others.
    pub fn syscalls(&self) -> u64 {
        self.sleeps + self.rings + self.spin_yields + self.barriers + self.other_syscalls
    }
}

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
    /// A holder whose pidfd fired while its end stayed locked (the lock outlives it, e.g.
    /// held by a child it forked): never watched again, so its pidfd cannot spin us.
    dead: Option<Holder>,
    /// Interval of the next timed re-check of an unwatchable peer.
    recheck: Duration,
    /// Timer for timed re-checks in async mode (created on first need).
    timer: Option<Pollable>,
    /// The claim count of a peer holder whose death a wait already reported: reported once,
    /// after which waits wait for a new holder.
    reported_gone: Option<u64>,
    /// The channel uses the asymmetric barrier (`barrier`): no fence when notifying,
    /// `membarrier(2)` after announcing a sleep.
    asymmetric: bool,
    pub(crate) strategy: WaitStrategy,
    pub(crate) stats: WaitStats,
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
            dead: None,
            recheck: RECHECK_FIRST,
            timer: None,
            reported_gone: None,
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

    /// Rings the peer's doorbell unconditionally (claim, close).
    pub(crate) fn ring_peer(&mut self) {
        ring(self.peer_bell.as_fd());
        self.stats.rings += 1;
    }

    /// The notifier's half of the eventcount towards the peer; see [`notify`].
    #[inline]
    pub(crate) fn notify_peer(&mut self, waiting: &AtomicU32) {
        if notify(waiting, self.peer_bell.as_fd(), self.asymmetric) {
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
        if let WaitStrategy::SpinThenSleep(window) = self.strategy {
            if !window.is_zero() {
                // The clock starts at the 64th check: most waits of a streaming peer end
                // sooner, and never read it (a vDSO call, not a system call, but ~20 ns).
                let mut start = None;
                let mut next_yield = SPIN_BEFORE_YIELD;
                let mut i = 0u32;
                loop {
                    if let Some(r) = check() {
                        return Ok(Wake::Ready(r));
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
                            break;
                        }
                        // A peer that has not answered within ~20 µs may share our core (it
                        // was preempted, or the machine is oversubscribed): let it run.
                        // Yielding sooner would cost a system call on most short waits.
                        if spun >= next_yield {
                            std::thread::yield_now();
                            self.stats.spin_yields += 1;
                            next_yield = spun + YIELD_EVERY;
                        }
                    }
                }
            }
        }
        let waiting = seg.header().waiting_word(self.end);
        self.recheck = RECHECK_FIRST;
        loop {
            // Announce that we may sleep (store + SeqCst fence), then check again.
            eventcount::announce(waiting);
            if self.asymmetric {
                // The peer's notify has no fence: make its thread execute one before our
                // re-check (see `barrier` for why this closes the lost-wakeup window).
                self.stats.barriers += 1;
                if let Err(e) = crate::barrier::heavy() {
                    eventcount::retract(waiting);
                    return Err(e);
                }
            }
            if let Some(r) = check() {
                eventcount::retract(waiting);
                return Ok(Wake::Ready(r));
            }
            self.stats.other_syscalls += u64::from(!seg.claimed_local(self.end.peer()));
            let timeout = match peer_status(seg, self.end.peer())? {
                PeerStatus::Gone { claims } if self.reported_gone == Some(claims) => {
                    // This holder's death was reported already: wait for a new holder (a
                    // restarted process), as before any came; it rings us once it claims.
                    self.pidfd = None;
                    self.watched = None;
                    None
                }
                PeerStatus::Gone { claims } => {
                    eventcount::retract(waiting);
                    // The peer may have closed properly between our check and the lock
                    // probe (it sets its state before it unlocks): check once more.
                    return Ok(match check() {
                        Some(r) => Wake::Ready(r),
                        None => Wake::PeerGone { holder: claims },
                    });
                }
                PeerStatus::Alive {
                    claims,
                    pid,
                    start_time,
                } => {
                    if self.watch((claims, pid), start_time, mode) {
                        None
                    } else {
                        // Alive by its lock but no pidfd can tell us of its death (another
                        // pid namespace, or a lock that outlived the process we watched):
                        // re-check the lock now and then, backing off to once a second.
                        // Doorbell rings still wake us at once; this is only the peer's
                        // death watch, never the data path.
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
            self.stats.sleeps += 1;
            self.stats.timed_sleeps += u64::from(timeout.is_some());
            let woke = match mode {
                Mode::Blocking => self.sleep_blocking(timeout)?,
                Mode::Async => self.sleep_async(timeout).await?,
            };
            if woke == Woke::PeerExited {
                // The pidfd fired. If the lock still shows the same holder next round, the
                // lock outlived the process (a forked child, a deferred close): `dead`
                // keeps us from watching it again, and the timed re-check takes over.
                self.dead = self.watched.take();
                self.pidfd = None;
                self.recheck = RECHECK_FIRST;
            }
        }
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
        // namespace): compare start times, when the peer recorded one.
        if start_time != 0 && crate::liveness::process_start_time(holder.1) != Some(start_time) {
            return false;
        }
        let mut pidfd = Pollable::Plain(fd);
        if mode == Mode::Async && pidfd.registered().is_err() {
            return false;
        }
        self.watched = Some(holder);
        self.pidfd = Some(pidfd);
        true
    }

    /// Sleeps in poll(2) until the doorbell rings, the peer's pidfd fires, or `timeout`.
    fn sleep_blocking(&mut self, timeout: Option<Duration>) -> io::Result<Woke> {
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

    /// Awaits the doorbell, the peer's pidfd, or `timeout`, through tokio.
    async fn sleep_async(&mut self, timeout: Option<Duration>) -> io::Result<Woke> {
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
fn arm(fd: BorrowedFd<'_>, after: Duration) -> io::Result<()> {
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
fn read_expirations(fd: BorrowedFd<'_>) -> io::Result<u64> {
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
enum Woke {
    Rang,
    PeerExited,
    TimedOut,
}

/// Runs a future made for [`Mode::Blocking`] to completion on this thread. Such futures never
/// return `Pending` (their waits block inside `poll`), so one poll completes them; `None`
/// would mean a wait returned `Pending` in blocking mode, which is a bug.
pub(crate) fn run_blocking<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}
