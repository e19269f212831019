//! `_Writer`: the writing end, copying from numpy arrays or lending free slots.

use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::prelude::*;
use shmchan::{Context, End, ErrorKind, RawChannel, RawWriter};

use crate::end::{end_methods, Held};
use crate::errors::error;
use crate::lease::Lease;
use crate::wait::{blocking, Step};

/// The writing end (the package's `Writer` wraps it).
// `weakref`: a lease refers to its end weakly (see `lease`).
#[pyclass(module = "shmchan._shmchan", name = "_Writer", weakref)]
pub(crate) struct Writer {
    pub(crate) end: Held<RawWriter>,
}

impl Writer {
    pub(crate) fn new(
        inner: RawWriter,
        chan: RawChannel,
        dtype: Py<PyArrayDescr>,
    ) -> PyResult<Writer> {
        Ok(Writer {
            end: Held::new(inner, chan, dtype)?,
        })
    }

    /// Commits `k` of the slots a lease lent.
    pub(crate) fn commit(&mut self, py: Python<'_>, k: usize) -> PyResult<usize> {
        let w = self.end.front(py)?;
        let slots = w.try_reserve(k).map_err(|e| error(py, e))?;
        Ok(slots.commit(k))
    }
}

end_methods! {
impl Writer(RawWriter) {
    /// Puts as many items of `array[start:]` as fit now; returns how many.
    #[pyo3(signature = (array, start=0))]
    fn try_put(
        &mut self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
        start: usize,
    ) -> PyResult<usize> {
        let (ptr, len, size) = self.end.bytes(py, array, false)?;
        let from = start.saturating_mul(size).min(len);
        let w = self.end.front(py)?;
        // SAFETY: `array_bytes` checked that `ptr..ptr+len` is the memory of the live array,
        // which stays put while we hold the GIL and run no Python code.
        let items = unsafe { std::slice::from_raw_parts(ptr, len) };
        w.try_put(&items[from..])
            .map_err(|e| error(py, e.with_progress(start)))
    }

    /// The free slots if at least `n` are free now; None if not yet.
    fn room_now(&mut self, py: Python<'_>, n: usize) -> PyResult<Option<usize>> {
        let w = self.end.front(py)?;
        room_now(w, n).map_err(|e| error(py, e))
    }

    /// Waits until at least `n` slots are free (as `blocking_put` waits); returns how many.
    #[pyo3(signature = (n, timeout=None))]
    fn blocking_wait_room(slf: &Bound<'_, Self>, n: usize, timeout: Option<f64>) -> PyResult<usize> {
        let step = |me: &mut Self, py: Python<'_>| -> PyResult<Step<usize>> {
            let w = me.end.own(py, 0)?;
            Ok(match room_now(w, n).map_err(|e| error(py, e))? {
                Some(free) => Step::Done(free),
                None => Step::Wait { want: n, progress: 0 },
            })
        };
        blocking(slf, timeout, step, |me, py, _| Err(me.end.timed_out(py, 0, 0)))
    }

    /// Puts all of `array`, in order, waiting for room (without the GIL, and without the
    /// end's borrow: another thread may close the end, which ends this call) as long as it
    /// takes or until `timeout` seconds.
    #[pyo3(signature = (array, timeout=None))]
    fn blocking_put(
        slf: &Bound<'_, Self>,
        array: &Bound<'_, PyUntypedArray>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let mut done = 0usize;
        let step = |me: &mut Self, py: Python<'_>| -> PyResult<Step<()>> {
            // Looked up again after every sleep (another thread may have replaced the
            // array's memory while we slept without the GIL).
            let (ptr, len, size) = me.end.bytes(py, array, false)?;
            let total = len / size;
            let w = me.end.own(py, done)?;
            // SAFETY: as in `try_put`; the slice is gone before the sleep.
            let items = unsafe { std::slice::from_raw_parts(ptr, len) };
            done += w
                .try_put(&items[done.min(total) * size..])
                .map_err(|e| error(py, e.with_progress(done)))?;
            Ok(if done >= total {
                Step::Done(())
            } else {
                Step::Wait { want: 1, progress: done }
            })
        };
        let timed_out = |me: &mut Self, py: Python<'_>, done| Err(me.end.timed_out(py, done, 0));
        blocking(slf, timeout, step, timed_out)
    }

    /// Lends exactly `n` free slots, writable, if they are free now; None if not yet. The
    /// slots are the lease's `array`.
    fn try_reserve(slf: &Bound<'_, Self>, n: usize) -> PyResult<Option<Py<Lease>>> {
        let py = slf.py();
        // One borrow for the whole call, as in `_Reader.try_peek`.
        let mut me = slf.try_borrow_mut()?;
        let w = me.end.front(py)?;
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
        let (mapping, dtype) = (me.end.chan.keep_mapped(), me.end.dtype.clone_ref(py));
        let lease = Lease::lend(py, slf.as_any(), mapping, dtype, ptr, n, true)?;
        me.end.lease = Some(lease.clone_ref(py));
        Ok(Some(lease))
    }


    /// Closes the channel with a reason: the reader drains, then gets `AbortedError`.
    fn abort(&mut self, py: Python<'_>, reason: &str) -> PyResult<()> {
        self.end.close_with(py, |w| w.abort(reason))
    }


    #[getter]
    fn reader_closed(&self) -> bool {
        self.end.inner.as_ref().is_none_or(|w| w.is_closed())
    }

}
}

/// The free slots if at least `n` (at most the capacity) are free now.
fn room_now(w: &mut RawWriter, n: usize) -> Result<Option<usize>, shmchan::Error> {
    let cap = w.capacity();
    if n > cap {
        return Err(shmchan::Error::new(ErrorKind::Oversized, w.name())
            .by(End::Writer)
            .with_context(Context::Limit {
                requested: n,
                capacity: cap,
            }));
    }
    // Lends all that is free and publishes nothing (the guard is dropped uncommitted).
    let free = w.try_reserve(cap)?.elements();
    Ok((free >= n).then_some(free))
}
