//! The store→load fence of the eventcount, paid by both sides or by the sleeper alone.
//!
//! The wake protocol (`notify`) is Dekker's pattern: the notifier stores an index and then
//! loads the waiting word; the waiter stores the waiting word and then loads the index. Each
//! store must be ordered before the same side's load, or both loads can miss both stores and
//! a wakeup is lost. There are two ways to get that ordering:
//!
//! - **Symmetric** ([`Barrier::Fence`]): a `SeqCst` fence on both sides. Correct everywhere,
//!   but the notifier's fence (an `mfence` or locked instruction, ~10–20 ns when stores are
//!   pending) is on every `put` and `get`, and it bounds single-item throughput.
//! - **Asymmetric** ([`Barrier::Membarrier`]): the notifier (fast path) has only a compiler
//!   fence; the waiter, after storing its waiting word and before its re-check, calls
//!   `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`. The kernel then makes every thread of
//!   every process registered with `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` execute a full
//!   memory barrier (an IPI to each CPU running one; a thread not running has passed through
//!   the barrier of its context switch) before the call returns. Every process that opens
//!   such a channel registers first, so the notifier is registered whenever it runs the fast
//!   path.
//!
//! Why the asymmetric pairing is enough: let the notifier execute `S_n` (store index), then
//! `L_n` (load waiting), in program order (the compiler fence keeps the compiler from
//! swapping them; the CPU may still let `L_n` pass `S_n` through its store buffer). The
//! membarrier puts a full barrier `B` somewhere in the notifier's instruction stream while the
//! waiter is inside the call, that is after the waiter's store `S_w` (the syscall begins with
//! a full barrier of its own) and before its re-check `L_w`. If `B` comes after `S_n`, `S_n`
//! is globally visible before the call returns, so `L_w` sees the new index. If `B` comes
//! before `S_n`, it also comes before `L_n`, which then runs after `S_w` is visible and sees
//! the waiting word. Either way one side sees the other: no lost wakeup. This is the
//! pairing of Linux's own `membarrier(2)` man page example and of liburcu's
//! `urcu-memb` flavour, across processes instead of threads.
//!
//! The sleeper pays for it: the call costs ~0.3 µs when no registered process is running
//! elsewhere and ~13 µs (an IPI through the hypervisor) when one is, measured on the 2-vCPU
//! VM of BENCHMARKS.md. A sleep costs a kernel wakeup (tens of µs) anyway, and the default
//! wait strategy spins before it sleeps, so in steady streaming sleeps are rare.
//!
//! The choice is made per channel at creation and recorded in the header (`FLAG_MEMBARRIER`):
//! both ends must agree, since a fast path without a fence is only safe if every sleeper
//! calls membarrier. A process that cannot register (a kernel before 4.16, or a seccomp
//! filter that forbids the call) gets [`OpenError::MembarrierUnavailable`](crate::OpenError)
//! for such a channel; create channels for it with [`Barrier::Fence`].

use std::io;
use std::sync::Mutex;

use rustix::thread::{membarrier, membarrier_query, MembarrierCommand, MembarrierQuery};

/// How a channel orders the wake protocol's store→load pairs; chosen at creation with
/// [`Options::barrier`](crate::Options::barrier), recorded in the channel, and the same for
/// both ends.
///
/// ```
/// use shmchan::{Barrier, ChannelIo, Options};
/// # let name = format!("doc-barrier-{}", std::process::id());
/// // For a peer in a sandbox that forbids membarrier(2):
/// let chan = ChannelIo::<u64>::create(&name, Options::new().barrier(Barrier::Fence))?;
/// assert_eq!(chan.barrier(), Barrier::Fence);
/// # Ok::<(), shmchan::OpenError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Barrier {
    /// [`Membarrier`](Self::Membarrier) if this process can use it, else
    /// [`Fence`](Self::Fence). The default.
    #[default]
    Auto,
    /// A `SeqCst` fence on every `put`/`get` on both sides. Works in any process; costs
    /// ~10–20 ns per operation.
    Fence,
    /// No fence on the fast path; a sleeping side calls `membarrier(2)` before it sleeps.
    /// Every process that opens the channel must be allowed that system call (Linux ≥ 4.16,
    /// not forbidden by a seccomp filter).
    Membarrier,
}

/// Registers this process for `MEMBARRIER_CMD_GLOBAL_EXPEDITED` (once per process: the
/// registration belongs to the address space, and a child forked without exec has a new one
/// and registers again) and checks that it may also issue the command. After `Ok`, this
/// process may run fast paths without a fence on membarrier channels.
pub(crate) fn register() -> io::Result<()> {
    // (pid, outcome) of the last attempt; errors are kept as raw errno values.
    static DONE: Mutex<Option<(u32, Result<(), i32>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((p, r)) = *done {
        if p == pid {
            return r.map_err(io::Error::from_raw_os_error);
        }
    }
    let needed = MembarrierQuery::GLOBAL_EXPEDITED | MembarrierQuery::REGISTER_GLOBAL_EXPEDITED;
    let r = if membarrier_query().contains(needed) {
        membarrier(MembarrierCommand::RegisterGlobalExpedited).map_err(|e| e.raw_os_error())
    } else {
        Err(libc::ENOSYS)
    };
    *done = Some((pid, r));
    r.map_err(io::Error::from_raw_os_error)
}

/// The sleeper's heavy barrier: returns once every thread of every registered process has
/// executed a full memory barrier. A system call.
pub(crate) fn heavy() -> io::Result<()> {
    membarrier(MembarrierCommand::GlobalExpedited).map_err(io::Error::from)
}
