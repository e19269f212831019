//! Blocking waits from Python: the ends' event-loop interface (`prepare_wait`, `wait_fd`,
//! `finish_wait`) with the sleep in `poll(2)`, without the GIL, interruptible by Ctrl-C.
//!
//! CPython installs its signal handlers without `SA_RESTART`, and the kernel delivers a
//! process-directed signal such as the terminal's SIGINT to the main thread when it does not
//! block it: so a main thread sleeping here wakes with `EINTR`, and `check_signals` runs the
//! Python handler (which raises `KeyboardInterrupt`). A blocking call on another thread is
//! not interrupted by signals, as in Python itself (only the main thread runs handlers).

use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use shmchan::Readiness;

use crate::end::LibEnd;
use crate::errors::error;

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

/// One wait of `end` for `want` (elements or slots): prepare, sleep without the GIL until
/// its descriptor is readable, finish. False if the deadline passed first (the caller
/// reports the timeout). Returns at once if `prepare` found the condition true.
///
/// `progress` is what the caller's call already moved (a put's accepted items, a get's
/// filled ones): an error that ends the wait (the peer died) counts it, so that the caller
/// learns exactly what went through.
pub(crate) fn wait_once<E: LibEnd>(
    py: Python<'_>,
    end: &mut E,
    want: usize,
    deadline: Option<Instant>,
    progress: usize,
) -> PyResult<bool> {
    let fail = |e: shmchan::Error| error(py, e.with_progress(progress));
    if end.prepare_wait(want).map_err(fail)? == Readiness::Ready {
        return Ok(true);
    }
    let fd = end.wait_fd().map_err(fail)?.as_raw_fd();
    let woke = sleep_on(py, fd, deadline)?;
    end.finish_wait().map_err(fail)?;
    Ok(woke)
}

/// Sleeps until `fd` is readable (true) or `deadline` passes (false), with the GIL
/// released; runs Python's signal handlers when a signal interrupts the sleep, so that
/// KeyboardInterrupt ends it.
fn sleep_on(py: Python<'_>, fd: RawFd, deadline: Option<Instant>) -> PyResult<bool> {
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
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
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
