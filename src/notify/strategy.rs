//! How an end waits, and what it counts: the public [`WaitStrategy`] and [`WaitStats`], and
//! the two ways a call runs its wait (async with a fast first poll, or blocking).

use std::task::Poll;
use std::time::Duration;

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
