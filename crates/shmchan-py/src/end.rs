//! What `_Reader` and `_Writer` share: the library's end (until closed), the channel handle
//! and dtype their leases need, the lease lent out, and the calls that are the same for both
//! ends (the event-loop wait, closing, leaving).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray};
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use shmchan::{
    End, ErrorKind, MessageChannel, MessageReader, MessageWriter, RawChannel, RawReader, RawWriter,
    Readiness,
};

use crate::dtype::array_bytes;
use crate::errors::{channel_error, error};
use crate::lease::Lease;

/// A channel handle of the library's, as an end's holder uses it: its name (for errors).
pub(crate) trait LibChannel {
    fn name(&self) -> &str;
}

impl LibChannel for RawChannel {
    fn name(&self) -> &str {
        // The generic channel's, through `RawChannel`'s `Deref`.
        (**self).name()
    }
}

impl LibChannel for MessageChannel {
    fn name(&self) -> &str {
        MessageChannel::name(self)
    }
}

/// One of the library's ends (raw or of messages), as the module uses it.
pub(crate) trait LibEnd {
    /// The channel handle it comes from.
    type Chan: LibChannel;
    /// Which end it is.
    const END: End;
    /// Why a call fails while a lease of this end is open.
    const LENT: &'static str;
    /// `want`: items (or free slots) of a raw end; a message reader waits for one message
    /// whatever it is, and a message writer for room for a message of `want` bytes.
    fn prepare_wait(&mut self, want: usize) -> Result<Readiness, shmchan::Error>;
    fn wait_fd(&mut self) -> Result<std::os::fd::BorrowedFd<'_>, shmchan::Error>;
    fn finish_wait(&mut self) -> Result<(), shmchan::Error>;
    /// Elements of a raw end's ring; bytes of a message end's.
    fn capacity(&self) -> usize;
    fn check_process(&self) -> Result<(), shmchan::Error>;
    fn leave(self);
}

macro_rules! lib_end {
    ($t:ty, $chan:ty, $end:expr, $lent:expr, |$me:ident, $want:ident| $prepare:expr, $capacity:ident) => {
        impl LibEnd for $t {
            type Chan = $chan;
            const END: End = $end;
            const LENT: &'static str = $lent;
            fn prepare_wait(&mut self, want: usize) -> Result<Readiness, shmchan::Error> {
                let ($me, $want) = (self, want);
                $prepare
            }
            fn wait_fd(&mut self) -> Result<std::os::fd::BorrowedFd<'_>, shmchan::Error> {
                <$t>::wait_fd(self)
            }
            fn finish_wait(&mut self) -> Result<(), shmchan::Error> {
                <$t>::finish_wait(self)
            }
            fn capacity(&self) -> usize {
                <$t>::$capacity(self)
            }
            fn check_process(&self) -> Result<(), shmchan::Error> {
                <$t>::check_process(self)
            }
            fn leave(self) {
                <$t>::leave(self)
            }
        }
    };
}
const VIEW_OPEN: &str = "a zero-copy view of this reader is open; leave its with block first";
const SLOTS_OPEN: &str = "reserved slots of this writer are open; leave their with block first";
lib_end!(
    RawReader,
    RawChannel,
    End::Reader,
    VIEW_OPEN,
    |r, want| r.prepare_wait(want),
    capacity
);
lib_end!(
    RawWriter,
    RawChannel,
    End::Writer,
    SLOTS_OPEN,
    |w, want| w.prepare_wait(want),
    capacity
);
lib_end!(
    MessageReader,
    MessageChannel,
    End::Reader,
    VIEW_OPEN,
    |r, _want| r.prepare_wait(),
    capacity_bytes
);
lib_end!(
    MessageWriter,
    MessageChannel,
    End::Writer,
    SLOTS_OPEN,
    |w, want| w.prepare_wait(want),
    capacity_bytes
);

/// An end as a Python object holds it.
pub(crate) struct Held<E: LibEnd> {
    /// `None` once closed.
    pub(crate) inner: Option<E>,
    /// A handle of the channel: its name, and the mapping its leases keep.
    pub(crate) chan: E::Chan,
    /// The dtype of what its leases lend (`uint8` for the bytes of a message).
    pub(crate) dtype: Py<PyArrayDescr>,
    /// What is lent out (a view, or reserved slots), if anything: no other call goes
    /// through until it ends.
    pub(crate) lease: Option<Py<Lease>>,
    /// A blocking call of this end sleeps (in another thread, without the end's borrow): no
    /// other call goes through but closing, leaving and reading the name or length.
    pub(crate) busy: bool,
    /// An eventfd that closing the end writes to, which wakes a blocking call's sleep.
    pub(crate) wake: Arc<OwnedFd>,
}

impl<E: LibEnd> Held<E> {
    pub(crate) fn new(inner: E, chan: E::Chan, dtype: Py<PyArrayDescr>) -> PyResult<Held<E>> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor that
        // nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            let name = chan.name();
            return Err(PyOSError::new_err(format!(
                "channel '{name}': eventfd: {e}"
            )));
        }
        // SAFETY: `fd` was just made, is valid, and is owned by nothing else.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(Held {
            inner: Some(inner),
            chan,
            dtype,
            lease: None,
            busy: false,
            wake,
        })
    }

    /// The end, unless closed, lending, or in a blocking call of another thread.
    pub(crate) fn front(&mut self, py: Python<'_>) -> PyResult<&mut E> {
        if self.busy {
            return Err(PyRuntimeError::new_err(format!(
                "channel '{}': this {} is borrowed by a blocking call of another thread",
                self.chan.name(),
                E::END
            )));
        }
        if self.lease.is_some() {
            let msg = format!("channel '{}': {}", self.chan.name(), E::LENT);
            return Err(channel_error(py, "ViewOpenError", msg));
        }
        self.own(py, 0)
    }

    /// The end for the blocking call that holds it: an `EndClosedError` (counting the
    /// call's `progress`) if it was closed meanwhile.
    pub(crate) fn own(&mut self, py: Python<'_>, progress: usize) -> PyResult<&mut E> {
        let name = self.chan.name();
        self.inner.as_mut().ok_or_else(|| {
            let e = shmchan::Error::new(ErrorKind::EndClosed, name)
                .by(E::END)
                .with_progress(progress);
            error(py, e)
        })
    }

    /// Wakes a blocking call that sleeps (its end is gone).
    fn wake_sleeper(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: `wake` is a valid eventfd for as long as `self` lives; the buffer is the
        // 8 bytes eventfd takes. A full counter (EAGAIN) is already a wake.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// The bytes of `array` (writable if `write`), and the dtype's item size.
    pub(crate) fn bytes(
        &self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
        write: bool,
    ) -> PyResult<(*mut u8, usize, usize)> {
        let dtype = self.dtype.bind(py);
        let (ptr, len) = array_bytes(py, self.chan.name(), dtype, array, write)?;
        Ok((ptr, len, dtype.itemsize()))
    }

    /// The event-loop wait, step 1: true means try again now. `progress` is what the
    /// caller's call already moved, which an error counts.
    pub(crate) fn prepare_wait(
        &mut self,
        py: Python<'_>,
        want: usize,
        progress: usize,
    ) -> PyResult<bool> {
        let end = self.front(py)?;
        match end.prepare_wait(want) {
            Ok(readiness) => Ok(readiness == Readiness::Ready),
            Err(e) => Err(error(py, e.with_progress(progress))),
        }
    }

    /// The descriptor to wait on (the same for the end's life).
    pub(crate) fn wait_fd(&mut self, py: Python<'_>) -> PyResult<i32> {
        let end = self.front(py)?;
        let fd = end.wait_fd().map_err(|e| error(py, e))?;
        Ok(fd.as_raw_fd())
    }

    /// The event-loop wait, step 3.
    pub(crate) fn finish_wait(&mut self, py: Python<'_>) -> PyResult<()> {
        let end = self.front(py)?;
        end.finish_wait().map_err(|e| error(py, e))
    }

    /// The `TimedOutError` of a blocking call that did `done` items, `remaining` being there.
    pub(crate) fn timed_out(&self, py: Python<'_>, done: usize, remaining: usize) -> PyErr {
        let e = shmchan::Error::new(ErrorKind::TimedOut, self.chan.name())
            .by(E::END)
            .with_progress(done)
            .with_remaining(remaining);
        error(py, e)
    }

    /// Ends what is lent out, if anything (its arrays are emptied).
    fn revoke(&mut self, py: Python<'_>) {
        if let Some(lease) = self.lease.take() {
            Lease::revoke(py, &lease);
        }
    }

    /// `ForkedError` if this process inherited the end through fork (its claimant is
    /// another process): closing, aborting or leaving it here would do nothing to the
    /// channel, so they raise rather than pretend.
    pub(crate) fn claimed_here(&self, py: Python<'_>) -> PyResult<()> {
        match &self.inner {
            Some(end) => end.check_process().map_err(|e| error(py, e)),
            None => Ok(()),
        }
    }

    /// Closes the end (dropping it closes the channel for this side); what is lent out is
    /// emptied first, without consuming or committing. Idempotent. `ForkedError`, touching
    /// nothing, in a process that inherited the end.
    pub(crate) fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.claimed_here(py)?;
        self.revoke(py);
        self.inner = None;
        self.wake_sleeper();
        Ok(())
    }

    /// Ends the end as `close` does, but through `last` (a writer's abort, say) instead of
    /// a plain drop. `ForkedError`, touching nothing, in a process that inherited the end.
    pub(crate) fn close_with(&mut self, py: Python<'_>, last: impl FnOnce(E)) -> PyResult<()> {
        self.claimed_here(py)?;
        // Emptied first, as by `close`; then the end goes through `last`.
        let end = self.inner.take();
        self.close(py)?;
        if let Some(end) = end {
            last(end);
        }
        Ok(())
    }

    /// Lets go of the end without closing the channel, as a killed process would.
    /// `ForkedError`, touching nothing, in a process that inherited the end.
    pub(crate) fn leave(&mut self, py: Python<'_>) -> PyResult<()> {
        self.claimed_here(py)?;
        self.revoke(py);
        if let Some(end) = self.inner.take() {
            end.leave();
        }
        self.wake_sleeper();
        Ok(())
    }

    /// Ends the lease (`Lease::release` calls this).
    pub(crate) fn end_lease(&mut self) {
        self.lease = None;
    }

    /// The ring's capacity (0 once closed).
    pub(crate) fn capacity(&self) -> usize {
        self.inner.as_ref().map_or(0, |e| e.capacity())
    }
}

impl<E: LibEnd> Drop for Held<E> {
    /// An end that goes ends its lease first, as closing does (its arrays are emptied, and
    /// let go of: see `lease`), before its library end drops (and closes, or leaves in a
    /// process that inherited it).
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            Python::attach(|py| Lease::revoke(py, &lease));
        }
    }
}

/// The `#[pymethods]` of `_Reader` or `_Writer`: those given, and the ones both ends have,
/// on the class's `end: Held<_>`.
macro_rules! end_methods {
    (impl $class:ident($end:ty) { $($own:tt)* }) => {
        #[pyo3::pymethods]
        impl $class {
            $($own)*

            /// The event-loop wait, step 1: True means try again now; False means wait until
            /// `wait_fd()` is readable, then call `finish_wait()` and try again. `progress`:
            /// the items the caller's call already moved, which an error counts.
            #[pyo3(signature = (want, progress=0))]
            fn prepare_wait(
                &mut self,
                py: Python<'_>,
                want: usize,
                progress: usize,
            ) -> PyResult<bool> {
                self.end.prepare_wait(py, want, progress)
            }

            /// The descriptor to wait on (the same for this end's life).
            fn wait_fd(&mut self, py: Python<'_>) -> PyResult<i32> {
                self.end.wait_fd(py)
            }

            /// The event-loop wait, step 3.
            fn finish_wait(&mut self, py: Python<'_>) -> PyResult<()> {
                self.end.finish_wait(py)
            }

            /// One wait for `want` items (or free slots), or the stream's end: returns at
            /// once if that holds now, else sleeps without the GIL. False if `timeout`
            /// seconds passed.
            #[pyo3(signature = (want, timeout=None))]
            fn wait(slf: &Bound<'_, Self>, want: usize, timeout: Option<f64>) -> PyResult<bool> {
                let mut first = true;
                $crate::wait::blocking(
                    slf,
                    timeout,
                    |_, _| {
                        Ok(if std::mem::take(&mut first) {
                            $crate::wait::Step::Wait { want, progress: 0 }
                        } else {
                            $crate::wait::Step::Done(true)
                        })
                    },
                    |_, _, _| Ok(false),
                )
            }

            /// Releases what is lent (after its exit raised BufferError): consumes the
            /// view's items or commits the slots if `finish`. Nothing to do if nothing is
            /// lent.
            #[pyo3(signature = (finish=true))]
            fn end_view(slf: &Bound<'_, Self>, finish: bool) -> PyResult<usize> {
                let py = slf.py();
                // Not borrowed across the release, which borrows this end itself.
                let lease = slf.try_borrow()?.end.lease.as_ref().map(|l| l.clone_ref(py));
                match lease {
                    Some(lease) => lease.bind(py).call_method1("release", (finish,))?.extract(),
                    None => Ok(0),
                }
            }

            /// Closes this end (a reader's: what remains is discarded and the writer's put
            /// fails; a writer's: the reader drains, then gets `QueueClosedError`). What is
            /// lent is emptied first, without consuming or committing. Idempotent.
            fn close(&mut self, py: Python<'_>) -> PyResult<()> {
                self.end.close(py)
            }

            /// Lets go of the end without closing the channel, as a killed process would.
            fn leave(&mut self, py: Python<'_>) -> PyResult<()> {
                self.end.leave(py)
            }

            #[getter]
            fn closed(&self) -> bool {
                self.end.inner.is_none()
            }

            #[getter]
            fn name(&self) -> &str {
                self.end.chan.name()
            }

            #[getter]
            fn capacity(&self) -> usize {
                self.end.capacity()
            }
        }

        impl $crate::wait::Holds<$end> for $class {
            fn held(&mut self) -> &mut $crate::end::Held<$end> {
                &mut self.end
            }
        }
    };
}
pub(crate) use end_methods;
