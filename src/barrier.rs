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
//! calls membarrier. A process that cannot register (a kernel before 4.16, a kernel with the
//! registration bug of `registration_bug`, or a seccomp filter that forbids the call) gets
//! [`ErrorKind::MembarrierUnavailable`](crate::ErrorKind::MembarrierUnavailable) for such a channel; create
//! channels for it with [`Barrier::Fence`]. With [`Barrier::Auto`] the creator decides by
//! what *it* can do: if peers may run in such a sandbox, create with [`Barrier::Fence`], or
//! `create_or_open` gives a channel that depends on which side started first.
//!
//! Costs beyond the call itself: a registered process takes an IPI whenever a sleeper
//! anywhere on the machine issues `GLOBAL_EXPEDITED` while it runs; since the fix of
//! CVE-2024-26602 the kernel serialises expedited membarrier calls machine-wide; and on a VM
//! an IPI to a vCPU the hypervisor has descheduled waits until it runs again. All of these
//! are paid on the way to sleep, never on the fast path.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::thread::{membarrier, MembarrierCommand, MembarrierQuery};

use crate::error::{Error, ErrorKind};

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
/// # Ok::<(), shmchan::Error>(())
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
    /// not 5.4–5.11 without the stable fix named in the module docs, not forbidden by a
    /// seccomp filter).
    Membarrier,
}

/// [`register`], for channel `name`, which needs it: its failure as the channel's error.
pub(crate) fn require(name: &str) -> Result<(), Error> {
    register()
        .map_err(|source| Error::new(ErrorKind::MembarrierUnavailable, name).with_source(source))
}

/// Registers this process for `MEMBARRIER_CMD_GLOBAL_EXPEDITED` (once per process: the
/// registration belongs to the address space, and a child forked without exec has a new one
/// and registers again), then issues the command once, since every sleep will depend on it
/// (a seccomp filter can allow one command and not another). After `Ok`, this process may
/// run fast paths without a fence on membarrier channels.
pub(crate) fn register() -> io::Result<()> {
    // The pid that registered (0: none). An atomic, not a lock, so that a fork while another
    // thread registers cannot leave the child stuck; only success is remembered, so a
    // transient failure is retried by the next open. Release/Acquire: a thread that sees our
    // pid here sees a registration whose system call had returned.
    static REGISTERED: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    if REGISTERED.load(Ordering::Acquire) == pid {
        return Ok(());
    }
    if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        if let Some(why) = registration_bug(release.trim()) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
    }
    // SAFETY: MEMBARRIER_CMD_QUERY (0) with flags 0 only returns a bit mask; it touches no
    // memory of ours. (Called directly so that a seccomp filter's errno reaches the error.)
    let mask = unsafe { libc::syscall(libc::SYS_membarrier, 0, 0, 0) };
    if mask < 0 {
        return Err(io::Error::last_os_error());
    }
    let needed = MembarrierQuery::GLOBAL_EXPEDITED | MembarrierQuery::REGISTER_GLOBAL_EXPEDITED;
    if !MembarrierQuery::from_bits_retain(mask as u32).contains(needed) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel does not offer MEMBARRIER_CMD_GLOBAL_EXPEDITED (Linux >= 4.16)",
        ));
    }
    membarrier(MembarrierCommand::RegisterGlobalExpedited)?;
    heavy()?;
    REGISTERED.store(pid, Ordering::Release);
    Ok(())
}

/// Kernels 5.4 to 5.11 without the stable fix "sched/membarrier: fix missing local execution
/// of ipi_sync_rq_state()" (5.4.106, 5.10.24, 5.11.7, and 5.12) do not mark the registering
/// thread's own CPU when a multi-threaded process registers, so `GLOBAL_EXPEDITED` can skip
/// a thread of ours running there, and a wakeup could be lost. Such kernels use fences.
/// (A distribution kernel that backported the fix under an older number is refused too,
/// which costs speed, not correctness.)
fn registration_bug(release: &str) -> Option<String> {
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let v = (nums.next()?, nums.next()?, nums.next().unwrap_or(0));
    let buggy = match (v.0, v.1) {
        (5, 4) => v.2 < 106,
        (5, 5..=9) => true,
        (5, 10) => v.2 < 24,
        (5, 11) => v.2 < 7,
        _ => false,
    };
    buggy.then(|| {
        format!(
            "kernel {release} has a membarrier registration bug (fixed in 5.4.106, 5.10.24, \
             5.11.7 and 5.12)"
        )
    })
}

/// The sleeper's heavy barrier: returns once every thread of every registered process has
/// executed a full memory barrier. A system call.
pub(crate) fn heavy() -> io::Result<()> {
    #[cfg(shmchan_control)]
    {
        // The deliberately broken build of `scripts/control.sh` (`--cfg shmchan_control`):
        // only registration's probe call still goes through.
        static PROBED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if PROBED.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
    }
    membarrier(MembarrierCommand::GlobalExpedited).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::registration_bug;

    #[test]
    fn kernels_with_the_registration_bug_are_refused() {
        for bad in [
            "5.4.0-42-generic",
            "5.4.105",
            "5.8.0",
            "5.10.23-foo",
            "5.11.6",
        ] {
            assert!(registration_bug(bad).is_some(), "{bad}");
        }
        for good in [
            "4.18.0-553.el8",
            "5.3.18",
            "5.4.106",
            "5.10.24",
            "5.11.7",
            "5.12.0",
            "6.18.44-fc",
            "7.0",
        ] {
            assert!(registration_bug(good).is_none(), "{good}");
        }
    }
}
