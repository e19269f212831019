//! Which process an end belongs to: the fork generation.
//!
//! A child forked without exec inherits its parent's ends as copies: the same mapping, the
//! same descriptors (the same open file descriptions, so the same locks and doorbells), and
//! the positions the parent had at the fork. Used there, an inherited reader would read the
//! items the parent reads too, and an inherited writer would write over the parent's. So an
//! end records the *fork generation* when it is claimed, and every call that moves data or
//! waits compares it with the current one ([`ErrorKind::Forked`](crate::ErrorKind::Forked)
//! if they differ).
//!
//! The generation is a process-wide counter that a `pthread_atfork` child handler
//! increments: it changes in every process forked (through the C library's `fork`) after
//! the handler was registered, grandchildren included, and never in the process itself. The
//! handler is registered before the first end is claimed, so an end's generation can only
//! differ in a process forked from its claimant. The comparison is one load of a word that no
//! thread writes (outside a fork) and one compare: unlike `getpid`, it makes no system call.
//!
//! A child made without the C library's `fork` (a raw `clone` system call, glibc's
//! `_Fork`) runs no atfork handler and is not seen here; the rare calls that decide whether
//! to close the channel or release its locks (claiming, closing, dropping) compare the pid
//! as well (`Segment::in_owner_process`).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The fork generation: 0 in a process that was not forked since the handler was registered
/// (by it or by an ancestor), one more in each child.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// `pthread_atfork` has registered [`in_child`] in this process (or in an ancestor: the
/// registration is part of the memory a child inherits).
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// The atfork child handler: runs in the child, on its only thread, before `fork` returns
/// there. An increment of a lock-free atomic is async-signal-safe, as a handler running in
/// the child of a multi-threaded process must be.
extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Registers the atfork child handler, once per process tree. Called before an end records
/// its generation, so that any later fork changes the generation in the child.
///
/// An atomic flag, not a `Once`: a `Once` that another thread is running when this process
/// forks stays "running" forever in the child, whose first claim would then hang. Two threads
/// claiming their first ends at the same moment may both register; the handler then runs
/// twice per fork, which changes nothing (only "differs" matters).
pub(crate) fn register() -> io::Result<()> {
    // Acquire: pairs with the Release store below; a thread that sees the flag sees a
    // registration whose call had returned, so a fork after this point runs the handler.
    if REGISTERED.load(Ordering::Acquire) {
        return Ok(());
    }
    // SAFETY: `in_child` is an `extern "C" fn()` that lives as long as the program and does
    // only async-signal-safe work (one atomic increment); the other two handlers are none.
    let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    REGISTERED.store(true, Ordering::Release);
    Ok(())
}

/// The current fork generation.
///
/// Relaxed is enough. Outside a fork the word never changes in this process: the handler
/// runs only in a child. In a child, the handler stores it on the child's only thread
/// before `fork` returns there, so that thread's later loads follow the store in program
/// order, and a thread the child starts later is ordered after it by the thread's creation.
/// No load made in the child can see the value from before the fork, and no load in the
/// parent can see a child's.
#[inline(always)]
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}
