//! Time limits, so that a hang fails a test instead of stalling the run.
//!
//! A test that returns its failure (a custom harness, such as libtest-mimic's) bounds each
//! wait: [`watchdog`] runs the waiting part on a thread of its own and fails after the limit,
//! and [`background`] does the same for a part that must run while the test goes on. A
//! `#[test]` function or a property-test case cannot be failed from another thread: a
//! [`Deadline`] aborts the whole process instead.

use std::sync::mpsc;
use std::time::Duration;

/// A closure running on a thread of its own (see [`background`]), its result awaited with a
/// time limit.
pub struct Background<T> {
    rx: mpsc::Receiver<T>,
    what: String,
    /// The thread's kernel thread id (for a test that watches it, in `/proc/self/task/TID`),
    /// or -1 if the thread could not tell it.
    pub tid: i32,
}

/// Starts `f` on a thread; [`Background::wait`] collects its result. `what` names it in the
/// error of a wait that timed out.
pub fn background<T: Send + 'static>(
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
        // The thread sends its id before anything else, so this wait ends at once.
        tid: tid_rx.recv().unwrap_or(-1),
    }
}

impl<T> Background<T> {
    /// The closure's result, or an error if it takes longer than `limit` (its thread is left
    /// blocked: the test binary exits at the end anyway) or its thread panicked.
    pub fn wait(self, limit: Duration) -> Result<T, String> {
        self.rx.recv_timeout(limit).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => {
                format!("{}: still waiting after {limit:?} (hang)", self.what)
            }
            mpsc::RecvTimeoutError::Disconnected => {
                format!("{}: its thread panicked (see its message above)", self.what)
            }
        })
    }
}

/// Runs `f` on a thread of its own and returns its result, or an error if it takes longer
/// than `limit` (see [`Background::wait`]).
pub fn watchdog<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    background(what, f).wait(limit)
}

/// A time limit on a whole test that cannot be failed from another thread: while it lives,
/// a thread waits, and if it still lives after the limit, that thread prints what hung and
/// aborts the process. Dropping it (at the end of the test, or by a panic) disarms it.
#[must_use = "the limit holds only while the Deadline lives"]
pub struct Deadline {
    _armed: mpsc::Sender<()>,
}

impl Deadline {
    /// Arms a deadline of `limit` for the test `what`.
    pub fn new(limit: Duration, what: &str) -> Deadline {
        let (tx, rx) = mpsc::channel::<()>();
        let what = what.to_string();
        std::thread::spawn(move || {
            if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                eprintln!("{what}: still running after {limit:?} (hang); aborting");
                std::process::abort();
            }
        });
        Deadline { _armed: tx }
    }
}
