//! Blocking waits from Python: the ends' event-loop interface (`prepare_wait`, `wait_fd`,
//! `finish_wait`) with the sleep in `poll(2)`, without the GIL, interruptible by Ctrl-C.
//!
//! CPython installs its signal handlers without `SA_RESTART`, and the kernel delivers a
//! process-directed signal such as the terminal's SIGINT to the main thread when it does not
//! block it: so a main thread sleeping here wakes with `EINTR`, and `check_signals` runs the
//! Python handler (which raises `KeyboardInterrupt`). A blocking call on another thread is
//! not interrupted by signals, as in Python itself (only the main thread runs handlers).

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::False;
use pyo3::PyClass;
use shmchan::Readiness;

use crate::end::{Held, LibEnd};
use crate::errors::error;

/// A Python class that holds one of the library's ends (`_Reader`, `_Writer`).
pub(crate) trait Holds<E: LibEnd> {
    fn held(&mut self) -> &mut Held<E>;
}

/// What one step of a blocking call found: its result, or that it must wait for `want`
/// items (or slots), having moved `progress` of them so far.
pub(crate) enum Step<R> {
    Done(R),
    Wait { want: usize, progress: usize },
}

/// A blocking call of `slf`'s end: `step` does what can be done now, under the end's
/// borrow; when it must wait, the call sleeps without the GIL and without the borrow, so
/// that other threads may close the end (which wakes the sleep: the call then fails with
/// `EndClosedError`), read its name or length, or print it. Other calls of the end are
/// refused meanwhile (`Held::front`). `timed_out` makes the result when `timeout` seconds
/// passed, given the progress of the last wait.
pub(crate) fn blocking<C, E, R>(
    slf: &Bound<'_, C>,
    timeout: Option<f64>,
    mut step: impl FnMut(&mut C, Python<'_>) -> PyResult<Step<R>>,
    timed_out: impl FnOnce(&mut C, Python<'_>, usize) -> PyResult<R>,
) -> PyResult<R>
where
    C: PyClass<Frozen = False> + Holds<E>,
    E: LibEnd,
{
    let py = slf.py();
    let deadline = deadline(timeout)?;
    {
        let mut me = slf.try_borrow_mut()?;
        let held = me.held();
        held.front(py)?;
        held.busy = true;
    }
    let result = run(slf, py, deadline, &mut step, timed_out);
    if let Ok(mut me) = slf.try_borrow_mut() {
        me.held().busy = false;
    }
    result
}

fn run<C, E, R>(
    slf: &Bound<'_, C>,
    py: Python<'_>,
    deadline: Option<Instant>,
    step: &mut impl FnMut(&mut C, Python<'_>) -> PyResult<Step<R>>,
    timed_out: impl FnOnce(&mut C, Python<'_>, usize) -> PyResult<R>,
) -> PyResult<R>
where
    C: PyClass<Frozen = False> + Holds<E>,
    E: LibEnd,
{
    loop {
        let (fd, wake, progress) = {
            let mut me = slf.try_borrow_mut()?;
            let (want, progress) = match step(&mut me, py)? {
                Step::Done(r) => return Ok(r),
                Step::Wait { want, progress } => (want, progress),
            };
            let held = me.held();
            let fail = |e: shmchan::Error| error(py, e.with_progress(progress));
            let end = held.own(py, progress)?;
            if end.prepare_wait(want).map_err(fail)? == Readiness::Ready {
                continue;
            }
            // A descriptor of our own: the end may be closed (its descriptor with it) while
            // we sleep.
            let fd = end.wait_fd().map_err(fail)?.try_clone_to_owned();
            let fd = fd.map_err(|e| PyOSError::new_err(format!("the wait descriptor: {e}")))?;
            (fd, Arc::clone(&held.wake), progress)
        };
        let woke = sleep_on(py, fd.as_raw_fd(), wake.as_raw_fd(), deadline)?;
        let mut me = slf.try_borrow_mut()?;
        let end = me.held().own(py, progress)?;
        end.finish_wait()
            .map_err(|e| error(py, e.with_progress(progress)))?;
        if !woke {
            return timed_out(&mut me, py, progress);
        }
    }
}

/// The deadline of a `timeout=` in seconds (None: no deadline).
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(
            "timeout must be a non-negative number of seconds, or None",
        )),
        Some(t) => Ok(Some(
            Instant::now() + Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX / 4),
        )),
    }
}

/// Sleeps until `fd` or `wake` is readable (true) or `deadline` passes (false), with the
/// GIL released; runs Python's signal handlers when a signal interrupts the sleep, so that
/// KeyboardInterrupt ends it.
pub(crate) fn sleep_on(
    py: Python<'_>,
    fd: RawFd,
    wake: RawFd,
    deadline: Option<Instant>,
) -> PyResult<bool> {
    loop {
        let timeout_ms: i32 = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // Rounded up, so the sleep never ends before the deadline and spins.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        let (rc, err) = py.detach(move || {
            let pollfd = |fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let mut p = [pollfd(fd), pollfd(wake)];
            // SAFETY: two valid pollfds, for the duration of the call; the caller keeps
            // both descriptors open until it returns.
            let rc = unsafe { libc::poll(p.as_mut_ptr(), 2, timeout_ms) };
            (rc, std::io::Error::last_os_error())
        });
        match rc {
            n if n > 0 => return Ok(true),
            // Timed out: the loop's deadline check says so (or sleeps the rest).
            0 => continue,
            _ if err.raw_os_error() == Some(libc::EINTR) => py.check_signals()?,
            _ => return Err(PyOSError::new_err(format!("poll on the channel: {err}"))),
        }
    }
}
