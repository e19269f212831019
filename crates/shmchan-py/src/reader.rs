//! `_Reader`: the reading end, copying into numpy arrays or lending views of the ring.

use std::os::fd::AsRawFd;

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray};
use pyo3::prelude::*;
use shmchan::{RawChannel, RawReader, Readiness};

use crate::dtype::array_bytes;
use crate::errors::{channel_error, error, raise, Attr};
use crate::lease::Lease;
use crate::wait::{deadline, wait_once};

/// The reading end (the package's `Reader` wraps it).
#[pyclass(module = "shmchan._shmchan", name = "_Reader")]
pub(crate) struct Reader {
    /// `None` once closed.
    inner: Option<RawReader>,
    /// A handle of the channel, for the leases (which keep its mapping alive).
    chan: RawChannel,
    dtype: Py<PyArrayDescr>,
    name: String,
    /// The zero-copy view lent out, if one is: no other call goes through until it ends.
    lease: Option<Py<Lease>>,
}

impl Reader {
    pub(crate) fn new(inner: RawReader, chan: RawChannel, dtype: Py<PyArrayDescr>) -> Reader {
        let name = inner.name().to_string();
        Reader {
            inner: Some(inner),
            chan,
            dtype,
            name,
            lease: None,
        }
    }

    /// The end, unless closed or lending a view.
    fn front(&mut self, py: Python<'_>) -> PyResult<&mut RawReader> {
        if self.lease.is_some() {
            return Err(channel_error(
                py,
                "ViewOpenError",
                format!(
                    "channel '{}': a zero-copy view of this reader is open; leave its with \
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
                format!("channel '{name}': this reader was closed"),
            )
        })
    }

    /// The bytes of `array` for writing into, and its element size.
    fn target(
        &self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
    ) -> PyResult<(*mut u8, usize, usize)> {
        let dtype = self.dtype.bind(py);
        let (ptr, len) = array_bytes(py, &self.name, dtype, array, true)?;
        Ok((ptr, len, dtype.itemsize()))
    }

    /// Ends the lease (`Lease::release` calls this).
    pub(crate) fn end_lease(&mut self) {
        self.lease = None;
    }

    /// Consumes `k` elements that a view showed.
    pub(crate) fn consume(&mut self, py: Python<'_>, k: usize) -> PyResult<usize> {
        let r = self.front(py)?;
        let view = r.try_peek_some().map_err(|e| error(py, e))?;
        Ok(view.consume(k))
    }
}

#[pymethods]
impl Reader {
    /// Fills all of `array` if that many items are there now; False (nothing removed) if
    /// not yet.
    fn try_get(&mut self, py: Python<'_>, array: &Bound<'_, PyUntypedArray>) -> PyResult<bool> {
        let (ptr, len, _) = self.target(py, array)?;
        let r = self.front(py)?;
        // SAFETY: `array_bytes` checked that `ptr..ptr+len` is the writable memory of the
        // live array, which stays put while we hold the GIL and run no Python code (none
        // runs until the slice is gone).
        let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        r.try_get(buf).map_err(|e| error(py, e))
    }

    /// Copies what is there now into `array[start:]`; returns how many items (0: none yet).
    #[pyo3(signature = (array, start=0))]
    fn try_get_some(
        &mut self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
        start: usize,
    ) -> PyResult<usize> {
        let (ptr, len, size) = self.target(py, array)?;
        let from = start.saturating_mul(size).min(len);
        let r = self.front(py)?;
        // SAFETY: as in `try_get`.
        let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        r.try_get_some(&mut buf[from..])
            .map_err(|e| error(py, e.with_progress(start)))
    }

    /// The event-loop wait, step 1: True means try again now; False means wait until
    /// `wait_fd()` is readable, then call `finish_wait()` and try again.
    fn prepare_wait(&mut self, py: Python<'_>, want: usize) -> PyResult<bool> {
        let r = self.front(py)?;
        match r.prepare_wait(want) {
            Ok(readiness) => Ok(readiness == Readiness::Ready),
            Err(e) => Err(error(py, e)),
        }
    }

    /// The descriptor to wait on (the same for this end's life).
    fn wait_fd(&mut self, py: Python<'_>) -> PyResult<i32> {
        let r = self.front(py)?;
        let fd = r.wait_fd().map_err(|e| error(py, e))?;
        Ok(fd.as_raw_fd())
    }

    /// The event-loop wait, step 3.
    fn finish_wait(&mut self, py: Python<'_>) -> PyResult<()> {
        let r = self.front(py)?;
        r.finish_wait().map_err(|e| error(py, e))
    }

    /// One wait for `want` items (or free slots), or the stream's end: returns at once if
    /// that holds now, else sleeps without the GIL. False if `timeout` seconds passed.
    #[pyo3(signature = (want, timeout=None))]
    fn wait(&mut self, py: Python<'_>, want: usize, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = deadline(timeout)?;
        let end = self.front(py)?;
        wait_once(py, end, want, deadline)
    }

    /// Fills all of `array`, waiting (without the GIL) as long as it takes or until
    /// `timeout` seconds.
    #[pyo3(signature = (array, timeout=None))]
    fn blocking_get(
        &mut self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let deadline = deadline(timeout)?;
        let mut filled = 0usize;
        loop {
            // The array's memory is looked up again after every sleep (another thread may
            // have replaced it while we slept without the GIL).
            let (ptr, len, size) = self.target(py, array)?;
            let total = len / size;
            let r = self.front(py)?;
            let cap = r.capacity();
            let want = total.saturating_sub(filled);
            if want == 0 {
                return Ok(());
            }
            {
                // SAFETY: as in `try_get`; the slice is gone before the sleep.
                let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
                let rest = &mut buf[filled * size..];
                if want <= cap {
                    if r.try_get(rest)
                        .map_err(|e| error(py, e.with_progress(filled)))?
                    {
                        return Ok(());
                    }
                } else {
                    let k = r
                        .try_get_some(rest)
                        .map_err(|e| error(py, e.with_progress(filled)))?;
                    if k > 0 {
                        filled += k;
                        continue;
                    }
                }
            }
            if !wait_once(py, r, want.min(cap), deadline)? {
                let remaining = r.len();
                return Err(raise(
                    py,
                    "TimedOutError",
                    format!(
                        "channel '{}': timed out waiting for items; {remaining} available, \
                         {filled} already in the array",
                        self.name
                    ),
                    &[
                        ("name", Attr::Str(self.name.clone())),
                        ("remaining", Attr::Int(remaining)),
                        ("filled", Attr::Int(filled)),
                    ],
                ));
            }
        }
    }

    /// Copies between 1 and `len(array)` items, waiting while none is there.
    #[pyo3(signature = (array, timeout=None))]
    fn blocking_get_some(
        &mut self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let deadline = deadline(timeout)?;
        loop {
            let (ptr, len, _) = self.target(py, array)?;
            let r = self.front(py)?;
            {
                // SAFETY: as in `try_get`; the slice is gone before the sleep.
                let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
                if buf.is_empty() {
                    return Ok(0);
                }
                let k = r.try_get_some(buf).map_err(|e| error(py, e))?;
                if k > 0 {
                    return Ok(k);
                }
            }
            if !wait_once(py, r, 1, deadline)? {
                return Err(raise(
                    py,
                    "TimedOutError",
                    format!("channel '{}': timed out waiting for items", self.name),
                    &[
                        ("name", Attr::Str(self.name.clone())),
                        ("remaining", Attr::Int(0)),
                        ("filled", Attr::Int(0)),
                    ],
                ));
            }
        }
    }

    /// Lends a read-only view of exactly `n` items (`n=None`: all that are there, at least
    /// one) if they are there now; None if not yet. The view is the lease's `array`.
    #[pyo3(signature = (n=None))]
    fn try_peek(slf: &Bound<'_, Self>, n: Option<usize>) -> PyResult<Option<Py<Lease>>> {
        let py = slf.py();
        // One borrow for the whole call: `lend` runs Python code (the array's finalizer), so
        // another thread may run meanwhile, and must find this end busy, not free.
        let mut me = slf.try_borrow_mut()?;
        let r = me.front(py)?;
        let view = match n {
            Some(n) => match r.try_peek(n).map_err(|e| error(py, e))? {
                Some(v) => v,
                None => return Ok(None),
            },
            None => {
                let v = r.try_peek_some().map_err(|e| error(py, e))?;
                if v.elements() == 0 {
                    return Ok(None);
                }
                v
            }
        };
        // Dropping the view removes nothing: the items stay ours, at this address, until
        // `consume` releases them (which the lease alone calls).
        let (ptr, count) = (view.as_ptr() as *mut u8, view.elements());
        let (chan, dtype) = (me.chan.clone(), me.dtype.clone_ref(py));
        let owner = slf.clone().into_any().unbind();
        let lease = Lease::lend(py, owner, chan, dtype, ptr, count, false)?;
        me.lease = Some(lease.clone_ref(py));
        Ok(Some(lease))
    }

    /// Releases the open view again (after its exit raised BufferError): consumes its items
    /// if `finish`. Nothing to do if no view is open.
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

    /// Closes the channel (what remains is discarded; the writer's put fails). A view that
    /// is still open is emptied first. Idempotent.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(lease) = self.lease.take() {
            Lease::revoke(py, &lease);
        }
        self.inner = None;
        Ok(())
    }

    /// Lets go of the end without closing the channel, as a killed process would.
    fn leave(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(lease) = self.lease.take() {
            Lease::revoke(py, &lease);
        }
        if let Some(r) = self.inner.take() {
            r.leave();
        }
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.capacity())
    }

    fn __len__(&mut self) -> usize {
        self.inner.as_mut().map_or(0, |r| r.len())
    }
}
