//! `_MessageWriter`: the writing end of a message channel: copies bytes-likes in as messages,
//! builds the frames of pickled values in place, or lends room for a message.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use shmchan::{Context, End, ErrorKind, MessageChannel, MessageWriter};

use crate::end::{end_methods, Held};
use crate::errors::error;
use crate::frame;
use crate::lease::Lease;
use crate::message::{bytes_dtype, bytes_of, contiguous};

/// The writing end of a message channel (the package's `MessageWriter` and `ObjectWriter`
/// wrap it).
// `weakref`: a lease refers to its end weakly (see `lease`).
#[pyclass(module = "shmchan._shmchan", name = "_MessageWriter", weakref)]
pub(crate) struct MessageWriterPy {
    pub(crate) end: Held<MessageWriter>,
}

impl MessageWriterPy {
    pub(crate) fn new(
        py: Python<'_>,
        inner: MessageWriter,
        chan: MessageChannel,
    ) -> PyResult<MessageWriterPy> {
        Ok(MessageWriterPy {
            end: Held::new(inner, chan, bytes_dtype(py))?,
        })
    }

    /// Commits a message of the first `len` bytes of the room a lease lent.
    pub(crate) fn commit(&mut self, py: Python<'_>, len: usize) -> PyResult<usize> {
        let w = self.end.front(py)?;
        match w.try_reserve(len).map_err(|e| error(py, e))? {
            Some(slot) => {
                slot.commit_len(len);
                Ok(len)
            }
            None => Ok(0),
        }
    }
}

/// The error for a message of `len` bytes that the channel cannot take, after `done`
/// messages of the call.
fn oversized(w: &MessageWriter, len: usize, done: usize) -> shmchan::Error {
    shmchan::Error::new(ErrorKind::Oversized, w.name())
        .by(End::Writer)
        .with_context(Context::MessageLimit {
            len,
            max: w.max_message_len(),
        })
        .with_progress(done)
}

end_methods! {
impl MessageWriterPy(MessageWriter) {
    /// Puts as many of `msgs[start:]` (each a bytes-like) as fit now, each a whole message,
    /// in order, with one commit; returns how many. `OversizedError` (nothing put by this
    /// call) if the next one could never fit.
    #[pyo3(signature = (msgs, start=0))]
    fn try_put(&mut self, py: Python<'_>, msgs: &Bound<'_, PyList>, start: usize) -> PyResult<usize> {
        // Only the messages that a ring could hold at once are looked at (a call per ring's
        // worth, not one over the whole rest of a long list each time).
        let room = self.end.capacity();
        let (mut bufs, mut bytes) = (Vec::new(), 0usize);
        for m in msgs.iter().skip(start) {
            let buf = contiguous(&m)?;
            bytes = bytes.saturating_add(buf.len_bytes().saturating_add(8));
            if !bufs.is_empty() && bytes > room {
                break;
            }
            bufs.push(buf);
        }
        let slices: Vec<&[u8]> = bufs.iter().map(bytes_of).collect();
        let w = self.end.front(py)?;
        w.try_put(&slices).map_err(|e| error(py, e.with_progress(start)))
    }

    /// Puts as many of `frames[start:]` as fit now, each the message of one pickled value:
    /// a frame is a tuple of the pickle (bytes) and its out-of-band buffers (bytes-likes),
    /// each copied once, straight into the ring. Returns how many went in, and the room the
    /// next one needs (0 if none is left). `OversizedError` if the next one could never fit.
    #[pyo3(signature = (frames, start=0))]
    fn try_put_objects(
        &mut self,
        py: Python<'_>,
        frames: &Bound<'_, PyList>,
        start: usize,
    ) -> PyResult<(usize, usize)> {
        let mut done = 0;
        for f in frames.iter().skip(start) {
            let f = f.cast_into::<PyTuple>()?;
            let pickle = contiguous(&f.get_item(0)?)?;
            let bufs = f
                .get_item(1)?
                .try_iter()?
                .map(|b| contiguous(&b?))
                .collect::<PyResult<Vec<_>>>()?;
            let buffers: Vec<&[u8]> = bufs.iter().map(bytes_of).collect();
            let pickle = bytes_of(&pickle);
            let w = self.end.front(py)?;
            let room = frame::room(pickle.len(), buffers.iter().map(|b| b.len()))
                .filter(|&n| n <= w.max_message_len())
                .ok_or_else(|| {
                    let len = buffers.iter().fold(pickle.len(), |n, b| n.saturating_add(b.len()));
                    error(py, oversized(w, len, start + done))
                })?;
            let Some(mut slot) = w
                .try_reserve(room)
                .map_err(|e| error(py, e.with_progress(start + done)))?
            else {
                return Ok((done, room));
            };
            let base = slot.as_ptr() as usize;
            let len = frame::write(&mut slot, base, pickle, &buffers);
            slot.commit_len(len);
            done += 1;
        }
        Ok((done, 0))
    }

    /// True if a message of `len` bytes fits now. `OversizedError` if it never can.
    fn room_now(&mut self, py: Python<'_>, len: usize) -> PyResult<bool> {
        let w = self.end.front(py)?;
        // Lends the room and publishes nothing (the slot is dropped uncommitted).
        Ok(w.try_reserve(len).map_err(|e| error(py, e))?.is_some())
    }

    /// Lends room for a message of `len` bytes, writable, if there is room now; None if not
    /// yet. The bytes are the lease's `array` (uint8); its release commits a message of
    /// them (`count` bytes of them, if given).
    fn try_reserve(slf: &Bound<'_, Self>, len: usize) -> PyResult<Option<Py<Lease>>> {
        let py = slf.py();
        // One borrow for the whole call, as in `_Reader.try_peek`.
        let mut me = slf.try_borrow_mut()?;
        let w = me.end.front(py)?;
        let Some(mut slot) = w.try_reserve(len).map_err(|e| error(py, e))? else {
            return Ok(None);
        };
        // Dropping the slot publishes nothing: the room stays ours, at this address, until
        // `commit` (which the lease alone calls).
        let ptr = slot.as_mut_ptr();
        let (mapping, dtype) = (me.end.chan.keep_mapped(), me.end.dtype.clone_ref(py));
        let lease = Lease::lend(py, slf.as_any(), mapping, dtype, ptr, len, true)?;
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

    /// The longest message the channel takes, in bytes (0 once closed).
    #[getter]
    fn max_message_len(&self) -> usize {
        self.end.inner.as_ref().map_or(0, |w| w.max_message_len())
    }
}
}
