//! `_Writer`: the writing end, copying from numpy arrays or lending free slots.

use std::os::fd::AsRawFd;

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray};
use pyo3::prelude::*;
use shmchan::{Context, End, ErrorKind, RawChannel, RawWriter, Readiness};

use crate::dtype::array_bytes;
use crate::errors::{channel_error, error, raise, Attr};
use crate::lease::Lease;
use crate::wait::{deadline, wait_once};

/// The writing end (the package's `Writer` wraps it).
#[pyclass(module = "shmchan._shmchan", name = "_Writer")]
pub(crate) struct Writer {
    /// `None` once closed.
    inner: Option<RawWriter>,
    /// A handle of the channel, for the leases (which keep its mapping alive).
    chan: RawChannel,
    dtype: Py<PyArrayDescr>,
    name: String,
    /// The slots lent out, if any: no other call goes through until they are committed.
    lease: Option<Py<Lease>>,
}

impl Writer {
    pub(crate) fn new(inner: RawWriter, chan: RawChannel, dtype: Py<PyArrayDescr>) -> Writer {
        let name = inner.name().to_string();
        Writer {
            inner: Some(inner),
            chan,
            dtype,
            name,
            lease: None,
        }
    }

    fn front(&mut self, py: Python<'_>) -> PyResult<&mut RawWriter> {
        if self.lease.is_some() {
            return Err(channel_error(
                py,
                "ViewOpenError",
                format!(
                    "channel '{}': reserved slots of this writer are open; leave their with \
                     block first",
                    self.name
                ),
            ));
        }
        let name = &self.name;
        self.inner.as_mut().ok_or_else(|| {
            channel_error(
                py,
                "EndClosedError",
                format!("channel '{name}': this writer was closed"),
            )
        })
    }

    fn source(
        &self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
    ) -> PyResult<(*const u8, usize, usize)> {
        let dtype = self.dtype.bind(py);
        let (ptr, len) = array_bytes(py, &self.name, dtype, array, false)?;
        Ok((ptr, len, dtype.itemsize()))
    }

    pub(crate) fn end_lease(&mut self) {
        self.lease = None;
    }

    /// Commits `k` of the slots a lease lent.
    pub(crate) fn commit(&mut self, py: Python<'_>, k: usize) -> PyResult<usize> {
        let w = self.front(py)?;
        let slots = w.try_reserve(k).map_err(|e| error(py, e))?;
        Ok(slots.commit(k))
    }
}

#[pymethods]
impl Writer {
    /// Puts as many items of `array[start:]` as fit now; returns how many.
    #[pyo3(signature = (array, start=0))]
    fn try_put(
        &mut self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
        start: usize,
    ) -> PyResult<usize> {
        let (ptr, len, size) = self.source(py, array)?;
        let from = start.saturating_mul(size).min(len);
        let w = self.front(py)?;
        // SAFETY: `array_bytes` checked that `ptr..ptr+len` is the memory of the live array,
        // which stays put while we hold the GIL and run no Python code.
        let items = unsafe { std::slice::from_raw_parts(ptr, len) };
        w.try_put(&items[from..])
            .map_err(|e| error(py, e.with_progress(start)))
    }

    /// The event-loop wait, step 1 (for `want` free slots): True means try again now.
    fn prepare_wait(&mut self, py: Python<'_>, want: usize) -> PyResult<bool> {
        let w = self.front(py)?;
        match w.prepare_wait(want) {
            Ok(readiness) => Ok(readiness == Readiness::Ready),
            Err(e) => Err(error(py, e)),
        }
    }

    /// The descriptor to wait on (the same for this end's life).
    fn wait_fd(&mut self, py: Python<'_>) -> PyResult<i32> {
        let w = self.front(py)?;
        let fd = w.wait_fd().map_err(|e| error(py, e))?;
        Ok(fd.as_raw_fd())
    }

    /// The event-loop wait, step 3.
    fn finish_wait(&mut self, py: Python<'_>) -> PyResult<()> {
        let w = self.front(py)?;
        w.finish_wait().map_err(|e| error(py, e))
    }

    /// One wait for `want` items (or free slots), or the stream's end: returns at once if
    /// that holds now, else sleeps without the GIL. False if `timeout` seconds passed.
    #[pyo3(signature = (want, timeout=None))]
    fn wait(&mut self, py: Python<'_>, want: usize, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = deadline(timeout)?;
        let end = self.front(py)?;
        wait_once(py, end, want, deadline)
    }

    /// Puts all of `array`, in order, waiting for room (without the GIL) as long as it
    /// takes or until `timeout` seconds.
    #[pyo3(signature = (array, timeout=None))]
    fn blocking_put(
        &mut self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let deadline = deadline(timeout)?;
        let mut done = 0usize;
        loop {
            // Looked up again after every sleep (another thread may have replaced the
            // array's memory while we slept without the GIL).
            let (ptr, len, size) = self.source(py, array)?;
            let total = len / size;
            let w = self.front(py)?;
            {
                // SAFETY: as in `try_put`; the slice is gone before the sleep.
                let items = unsafe { std::slice::from_raw_parts(ptr, len) };
                done += w
                    .try_put(&items[done.min(total) * size..])
                    .map_err(|e| error(py, e.with_progress(done)))?;
            }
            if done >= total {
                return Ok(());
            }
            if !wait_once(py, w, 1, deadline)? {
                return Err(raise(
                    py,
                    "TimedOutError",
                    format!(
                        "channel '{}': timed out waiting for room; {done} items of this put \
                         were accepted",
                        self.name
                    ),
                    &[
                        ("name", Attr::Str(self.name.clone())),
                        ("accepted", Attr::Int(done)),
                    ],
                ));
            }
        }
    }

    /// Lends exactly `n` free slots, writable, if they are free now; None if not yet. The
    /// slots are the lease's `array`.
    fn try_reserve(slf: &Bound<'_, Self>, n: usize) -> PyResult<Option<Py<Lease>>> {
        let py = slf.py();
        // One borrow for the whole call, as in `_Reader.try_peek`.
        let mut me = slf.try_borrow_mut()?;
        let w = me.front(py)?;
        if n > w.capacity() {
            let e = shmchan::Error::new(ErrorKind::Oversized, w.name())
                .by(End::Writer)
                .with_context(Context::Limit {
                    requested: n,
                    capacity: w.capacity(),
                });
            return Err(error(py, e));
        }
        let mut slots = w.try_reserve(n).map_err(|e| error(py, e))?;
        if slots.elements() < n {
            return Ok(None);
        }
        // Dropping the guard publishes nothing: the slots stay free, and ours, at this
        // address until `commit` (which the lease alone calls).
        let ptr = slots.as_mut_ptr();
        let (chan, dtype) = (me.chan.clone(), me.dtype.clone_ref(py));
        let owner = slf.clone().into_any().unbind();
        let lease = Lease::lend(py, owner, chan, dtype, ptr, n, true)?;
        me.lease = Some(lease.clone_ref(py));
        Ok(Some(lease))
    }

    /// Releases the open slots again (after their exit raised BufferError): commits them if
    /// `finish`. Nothing to do if no slots are open.
    #[pyo3(signature = (finish=true))]
    fn end_view(slf: &Bound<'_, Self>, finish: bool) -> PyResult<usize> {
        let py = slf.py();
        // Not borrowed across the release, which borrows this end itself.
        let lease = slf.try_borrow()?.lease.as_ref().map(|l| l.clone_ref(py));
        match lease {
            Some(lease) => lease.bind(py).call_method1("release", (finish,))?.extract(),
            None => Ok(0),
        }
    }

    /// Closes the channel for writing: the reader drains, then gets `QueueClosedError`.
    /// Open slots are emptied first, uncommitted. Idempotent.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(lease) = self.lease.take() {
            Lease::revoke(py, &lease);
        }
        self.inner = None;
        Ok(())
    }

    /// Closes the channel with a reason: the reader drains, then gets `AbortedError`.
    fn abort(&mut self, py: Python<'_>, reason: &str) -> PyResult<()> {
        if let Some(lease) = self.lease.take() {
            Lease::revoke(py, &lease);
        }
        if let Some(w) = self.inner.take() {
            w.abort(reason);
        }
        Ok(())
    }

    /// Lets go of the end without closing the channel, as a killed process would.
    fn leave(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(lease) = self.lease.take() {
            Lease::revoke(py, &lease);
        }
        if let Some(w) = self.inner.take() {
            w.leave();
        }
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }

    #[getter]
    fn reader_closed(&self) -> bool {
        self.inner.as_ref().is_none_or(|w| w.is_closed())
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.inner.as_ref().map_or(0, |w| w.capacity())
    }
}
