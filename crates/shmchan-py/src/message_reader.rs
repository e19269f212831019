//! `_MessageReader`: the reading end of a message channel: copies messages out as bytes,
//! takes the parts of pickled values out of their frames, or lends a message in place.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyTuple};
use shmchan::{Context, ErrorKind, MessageChannel, MessageReader};

use crate::end::{end_methods, Held};
use crate::errors::error;
use crate::frame;
use crate::lease::Lease;
use crate::message::bytes_dtype;

/// The reading end of a message channel (the package's `MessageReader` and `ObjectReader`
/// wrap it).
// `weakref`: a lease refers to its end weakly (see `lease`).
#[pyclass(module = "shmchan._shmchan", name = "_MessageReader", weakref)]
pub(crate) struct MessageReaderPy {
    pub(crate) end: Held<MessageReader>,
}

impl MessageReaderPy {
    pub(crate) fn new(
        py: Python<'_>,
        inner: MessageReader,
        chan: MessageChannel,
    ) -> PyResult<MessageReaderPy> {
        Ok(MessageReaderPy {
            end: Held::new(inner, chan, bytes_dtype(py))?,
        })
    }

    /// Consumes the first `k` messages there (at most those one view shows); returns how
    /// many.
    pub(crate) fn consume(&mut self, py: Python<'_>, k: usize) -> PyResult<usize> {
        let r = self.end.front(py)?;
        let view = r.try_peek_at_most(k).map_err(|e| error(py, e))?;
        Ok(view.consume(k))
    }
}

/// Where a frame's pickle and buffers are in a lease: (pickle start, pickle end, [(buffer
/// start, buffer end)]), in bytes from the lease's start.
type FrameParts = (usize, usize, Vec<(usize, usize)>);

/// The error for a message that is not the frame of a pickled value.
fn not_a_frame(r: &MessageReader, detail: String) -> shmchan::Error {
    shmchan::Error::new(ErrorKind::Corrupted, r.name())
        .by(shmchan::End::Reader)
        .with_context(Context::Field {
            field: "pickled value",
            detail,
        })
}

end_methods! {
impl MessageReaderPy(MessageReader) {
    /// Copies up to `max` of the messages there now (as bytes) and consumes them; an empty
    /// list if none is there yet.
    fn try_get_some<'py>(&mut self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        if max == 0 {
            return Ok(out);
        }
        let r = self.end.front(py)?;
        let view = r.try_peek_at_most(max).map_err(|e| error(py, e))?;
        let mut k = 0;
        for m in view.iter().take(max) {
            out.append(PyBytes::new(py, m))?;
            k += 1;
        }
        view.consume(k);
        Ok(out)
    }

    /// The parts of up to `max` of the pickled values there now, copied out and not
    /// consumed (`consume` does that once they are unpickled): a list of (pickle as bytes,
    /// [each out-of-band buffer as a bytearray]). `CorruptedError` if the first message is
    /// not a frame; the frames before one that is not are returned.
    fn try_take_objects<'py>(
        &mut self,
        py: Python<'py>,
        max: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        if max == 0 {
            return Ok(out);
        }
        let r = self.end.front(py)?;
        let view = r.try_peek_at_most(max).map_err(|e| error(py, e))?;
        let mut bad = None;
        for m in view.iter().take(max) {
            let (pickle, buffers) = match frame::parse(m) {
                Ok(parts) => parts,
                Err(detail) => {
                    bad = Some(detail);
                    break;
                }
            };
            let buffers = buffers
                .into_iter()
                .map(|b| PyByteArray::new(py, &m[b]))
                .collect::<Vec<_>>();
            let parts = (PyBytes::new(py, &m[pickle]), PyList::new(py, buffers)?);
            out.append(PyTuple::new(py, [parts.0.into_any(), parts.1.into_any()])?)?;
        }
        // The view is not used again (nothing consumed): `r` is free for the error.
        match bad {
            Some(detail) if out.is_empty() => Err(error(py, not_a_frame(r, detail))),
            _ => Ok(out),
        }
    }

    /// Lends the pickled values there now (up to `max`, at least one), read-only and in
    /// place, if one is there; None if not yet. Returns the lease, whose `array` (uint8)
    /// spans their messages and whose release consumes them, and where each frame's parts
    /// are in that array: (pickle start, pickle end, [(buffer start, buffer end)]).
    /// `CorruptedError` if the first message is not a frame; the lease ends before one that
    /// is not.
    #[allow(clippy::type_complexity)]
    fn try_peek_objects(
        slf: &Bound<'_, Self>,
        max: usize,
    ) -> PyResult<Option<(Py<Lease>, Vec<FrameParts>)>> {
        let py = slf.py();
        // One borrow for the whole call, as in `_Reader.try_peek`.
        let mut me = slf.try_borrow_mut()?;
        let r = me.end.front(py)?;
        let view = r.try_peek_at_most(max.max(1)).map_err(|e| error(py, e))?;
        // The messages' words are one run of the ring (the mirror mapping keeps it whole):
        // the lease spans them from the first length word to the last message's end.
        let Some(first) = view.iter().next() else {
            return Ok(None);
        };
        let base = first.as_ptr() as usize - 8;
        let (mut parts, mut end, mut bad) = (Vec::new(), base, None);
        for m in view.iter().take(max.max(1)) {
            let at = m.as_ptr() as usize - base;
            match frame::parse(m) {
                Ok((p, bufs)) => parts.push((
                    at + p.start,
                    at + p.end,
                    bufs.into_iter().map(|b| (at + b.start, at + b.end)).collect(),
                )),
                Err(detail) => {
                    bad = Some(detail);
                    break;
                }
            }
            end = m.as_ptr() as usize + m.len();
        }
        // The view is not used again (nothing consumed): `r` is free for the error.
        if let (Some(detail), true) = (bad, parts.is_empty()) {
            return Err(error(py, not_a_frame(r, detail)));
        }
        // Dropping the view removes nothing: the messages stay ours, at this address, until
        // `consume` (which the lease alone calls).
        let (mapping, dtype) = (me.end.chan.keep_mapped(), me.end.dtype.clone_ref(py));
        let lease = Lease::lend(py, slf.as_any(), mapping, dtype, base as *mut u8, end - base, false)?;
        lease.borrow_mut(py).messages = parts.len();
        me.end.lease = Some(lease.clone_ref(py));
        Ok(Some((lease, parts)))
    }

    /// Consumes the first `k` messages (at most those there); returns how many.
    #[pyo3(name = "consume")]
    fn consume_py(&mut self, py: Python<'_>, k: usize) -> PyResult<usize> {
        self.consume(py, k)
    }

    /// Lends the next message, read-only, if one is there now; None if not yet. Its bytes
    /// are the lease's `array` (uint8); its release consumes the message.
    fn try_peek(slf: &Bound<'_, Self>) -> PyResult<Option<Py<Lease>>> {
        let py = slf.py();
        // One borrow for the whole call, as in `_Reader.try_peek`.
        let mut me = slf.try_borrow_mut()?;
        let r = me.end.front(py)?;
        let Some(m) = r.try_peek().map_err(|e| error(py, e))? else {
            return Ok(None);
        };
        // Dropping the message removes nothing: it stays ours, at this address, until
        // `consume` (which the lease alone calls).
        let (ptr, len) = (m.as_ptr() as *mut u8, m.len());
        let (mapping, dtype) = (me.end.chan.keep_mapped(), me.end.dtype.clone_ref(py));
        let lease = Lease::lend(py, slf.as_any(), mapping, dtype, ptr, len, false)?;
        me.end.lease = Some(lease.clone_ref(py));
        Ok(Some(lease))
    }

    /// The messages there now (0 once the stream ended and nothing is left).
    fn count(&mut self, py: Python<'_>) -> PyResult<usize> {
        let r = self.end.front(py)?;
        r.count().map_err(|e| error(py, e))
    }

    /// The longest message the channel takes, in bytes (0 once closed).
    #[getter]
    fn max_message_len(&self) -> usize {
        self.end.inner.as_ref().map_or(0, |r| r.max_message_len())
    }
}
}
