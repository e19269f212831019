//! `_Reader`: the reading end, copying into numpy arrays or lending views of the ring.

use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::prelude::*;
use shmchan::{RawChannel, RawReader};

use crate::end::{end_methods, Held};
use crate::errors::error;
use crate::lease::Lease;
use crate::wait::{blocking, Step};

/// The reading end (the package's `Reader` wraps it).
// `weakref`: a lease refers to its end weakly (see `lease`).
#[pyclass(module = "shmchan._shmchan", name = "_Reader", weakref)]
pub(crate) struct Reader {
    pub(crate) end: Held<RawReader>,
}

impl Reader {
    pub(crate) fn new(
        inner: RawReader,
        chan: RawChannel,
        dtype: Py<PyArrayDescr>,
    ) -> PyResult<Reader> {
        Ok(Reader {
            end: Held::new(inner, chan, dtype)?,
        })
    }

    /// Consumes `k` elements that a view showed.
    pub(crate) fn consume(&mut self, py: Python<'_>, k: usize) -> PyResult<usize> {
        let r = self.end.front(py)?;
        let view = r.try_peek_some().map_err(|e| error(py, e))?;
        Ok(view.consume(k))
    }
}

end_methods! {
impl Reader(RawReader) {
    /// Fills all of `array` if that many items are there now; False (nothing removed) if
    /// not yet.
    fn try_get(&mut self, py: Python<'_>, array: &Bound<'_, PyUntypedArray>) -> PyResult<bool> {
        let (ptr, len, _) = self.end.bytes(py, array, true)?;
        let r = self.end.front(py)?;
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
        let (ptr, len, size) = self.end.bytes(py, array, true)?;
        let from = start.saturating_mul(size).min(len);
        let r = self.end.front(py)?;
        // SAFETY: as in `try_get`.
        let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        r.try_get_some(&mut buf[from..])
            .map_err(|e| error(py, e.with_progress(start)))
    }

    /// The items there if at least `n` are there now; None if not yet.
    fn items_now(&mut self, py: Python<'_>, n: usize) -> PyResult<Option<usize>> {
        let r = self.end.front(py)?;
        items_now(r, n).map_err(|e| error(py, e))
    }

    /// Waits until at least `n` items are there (as `blocking_get` waits); returns how many.
    #[pyo3(signature = (n, timeout=None))]
    fn blocking_wait_items(slf: &Bound<'_, Self>, n: usize, timeout: Option<f64>) -> PyResult<usize> {
        let step = |me: &mut Self, py: Python<'_>| -> PyResult<Step<usize>> {
            let r = me.end.own(py, 0)?;
            Ok(match items_now(r, n).map_err(|e| error(py, e))? {
                Some(k) => Step::Done(k),
                None => Step::Wait { want: n, progress: 0 },
            })
        };
        let timed_out = |me: &mut Self, py: Python<'_>, _| {
            let remaining = me.end.own(py, 0).map_or(0, |r| r.len());
            Err(me.end.timed_out(py, 0, remaining))
        };
        blocking(slf, timeout, step, timed_out)
    }

    /// Fills all of `array`, waiting (without the GIL, and without the end's borrow: another
    /// thread may close the end, which ends this call) as long as it takes or until
    /// `timeout` seconds.
    #[pyo3(signature = (array, timeout=None))]
    fn blocking_get(
        slf: &Bound<'_, Self>,
        array: &Bound<'_, PyUntypedArray>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let mut filled = 0usize;
        let step = |me: &mut Self, py: Python<'_>| -> PyResult<Step<()>> {
            loop {
                // The array's memory is looked up again after every sleep (another thread
                // may have replaced it while we slept without the GIL).
                let (ptr, len, size) = me.end.bytes(py, array, true)?;
                let want = (len / size).saturating_sub(filled);
                let r = me.end.own(py, filled)?;
                let cap = r.capacity();
                if want == 0 {
                    return Ok(Step::Done(()));
                }
                // SAFETY: as in `try_get`; the slice is gone before the sleep.
                let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
                let rest = &mut buf[filled * size..];
                let more = |e: shmchan::Error| error(py, e.with_progress(filled));
                if want <= cap {
                    if r.try_get(rest).map_err(more)? {
                        return Ok(Step::Done(()));
                    }
                } else {
                    let k = r.try_get_some(rest).map_err(more)?;
                    if k > 0 {
                        filled += k;
                        continue;
                    }
                }
                let want = want.min(cap);
                return Ok(Step::Wait { want, progress: filled });
            }
        };
        let timed_out = |me: &mut Self, py: Python<'_>, filled| {
            let remaining = me.end.own(py, 0).map_or(0, |r| r.len());
            Err(me.end.timed_out(py, filled, remaining))
        };
        blocking(slf, timeout, step, timed_out)
    }

    /// Copies between 1 and `len(array)` items, waiting while none is there (as
    /// `blocking_get` waits).
    #[pyo3(signature = (array, timeout=None))]
    fn blocking_get_some(
        slf: &Bound<'_, Self>,
        array: &Bound<'_, PyUntypedArray>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let step = |me: &mut Self, py: Python<'_>| -> PyResult<Step<usize>> {
            let (ptr, len, _) = me.end.bytes(py, array, true)?;
            let r = me.end.own(py, 0)?;
            // SAFETY: as in `try_get`; the slice is gone before the sleep.
            let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
            if buf.is_empty() {
                return Ok(Step::Done(0));
            }
            match r.try_get_some(buf).map_err(|e| error(py, e))? {
                0 => Ok(Step::Wait { want: 1, progress: 0 }),
                k => Ok(Step::Done(k)),
            }
        };
        blocking(slf, timeout, step, |me, py, _| Err(me.end.timed_out(py, 0, 0)))
    }

    /// Lends a read-only view of exactly `n` items (`n=None`: all that are there, at least
    /// one) if they are there now; None if not yet. The view is the lease's `array`.
    #[pyo3(signature = (n=None))]
    fn try_peek(slf: &Bound<'_, Self>, n: Option<usize>) -> PyResult<Option<Py<Lease>>> {
        let py = slf.py();
        // One borrow for the whole call: `lend` runs Python code (the array's finalizer), so
        // another thread may run meanwhile, and must find this end busy, not free.
        let mut me = slf.try_borrow_mut()?;
        let r = me.end.front(py)?;
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
        let (mapping, dtype) = (me.end.chan.keep_mapped(), me.end.dtype.clone_ref(py));
        let lease = Lease::lend(py, slf.as_any(), mapping, dtype, ptr, count, false)?;
        me.end.lease = Some(lease.clone_ref(py));
        Ok(Some(lease))
    }



    fn __len__(&mut self) -> usize {
        self.end.inner.as_mut().map_or(0, |r| r.len())
    }
}
}

/// The items there if at least `n` (at most the capacity) are there now; an ended stream
/// with fewer is an error that says how many remain.
fn items_now(r: &mut RawReader, n: usize) -> Result<Option<usize>, shmchan::Error> {
    // A view shows them and consumes nothing (it is dropped unconsumed).
    let there = r.try_peek(n)?.is_some();
    Ok(there.then(|| r.len()))
}
