//! `_MessageChannel`: a channel of byte messages open in this process, which the package's
//! `MessageChannelIO` (bytes) and `ObjectChannelIO` (pickled values) wrap; and the reading
//! of buffers that messages are copied from.

use numpy::PyArrayDescr;
use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use shmchan::{MessageChannel, Options};

use crate::errors::error;
use crate::message_reader::MessageReaderPy;
use crate::message_writer::MessageWriterPy;

/// A channel of messages open in this process.
#[pyclass(module = "shmchan._shmchan", name = "_MessageChannel", frozen)]
pub(crate) struct MessageChannelPy {
    inner: MessageChannel,
}

/// `uint8`: what the leases of a message end lend (a message's bytes).
pub(crate) fn bytes_dtype(py: Python<'_>) -> Py<PyArrayDescr> {
    numpy::dtype::<u8>(py).unbind()
}

#[pymethods]
impl MessageChannelPy {
    /// Creates (`how="create"`), opens (`"open"`) or either (`"create_or_open"`) message
    /// channel `name` with a ring of `capacity` bytes (rounded up to whole pages).
    #[staticmethod]
    #[pyo3(signature = (how, name, capacity=None, schema=None, mode=None, persist=false))]
    fn connect(
        py: Python<'_>,
        how: &str,
        name: &str,
        capacity: Option<usize>,
        schema: Option<String>,
        mode: Option<u32>,
        persist: bool,
    ) -> PyResult<MessageChannelPy> {
        let mut opts = Options::new().persist(persist);
        if let Some(c) = capacity {
            // The ring counts 8-byte words.
            opts = opts.capacity(c.div_ceil(8));
        }
        if let Some(s) = schema {
            opts = opts.schema(s);
        }
        if let Some(m) = mode {
            opts = opts.mode(m);
        }
        let res = match how {
            "create" => MessageChannel::create(name, opts),
            "open" => MessageChannel::open_with(name, opts),
            "create_or_open" => MessageChannel::create_or_open(name, opts),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "how must be create, open or create_or_open, not {how:?}"
                )))
            }
        };
        let inner = res.map_err(|e| error(py, e))?;
        Ok(MessageChannelPy { inner })
    }

    /// Claims the writing end.
    fn writer(&self, py: Python<'_>) -> PyResult<MessageWriterPy> {
        let w = self.inner.writer().map_err(|e| error(py, e))?;
        MessageWriterPy::new(py, w, self.inner.clone())
    }

    /// Claims the reading end.
    fn reader(&self, py: Python<'_>) -> PyResult<MessageReaderPy> {
        let r = self.inner.reader().map_err(|e| error(py, e))?;
        MessageReaderPy::new(py, r, self.inner.clone())
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Bytes of ring.
    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity_bytes()
    }

    /// The longest message the channel takes, in bytes.
    #[getter]
    fn max_message_len(&self) -> usize {
        self.inner.max_message_len()
    }

    #[getter]
    fn schema(&self) -> Option<&str> {
        self.inner.schema()
    }

    /// Bytes of ring the messages there take now.
    #[getter]
    fn len_bytes(&self) -> usize {
        self.inner.len_bytes()
    }
}

/// The buffer of `obj` (bytes, bytearray, a memoryview, an array: anything with the buffer
/// protocol), which must be one contiguous run of bytes.
pub(crate) fn contiguous(obj: &Bound<'_, PyAny>) -> PyResult<PyUntypedBuffer> {
    let buf = PyUntypedBuffer::get(obj)?;
    if !buf.is_c_contiguous() {
        return Err(PyBufferError::new_err(format!(
            "a {} that is not contiguous cannot be a message (bytes() or \
             numpy.ascontiguousarray() makes a contiguous copy)",
            obj.get_type().name()?
        )));
    }
    Ok(buf)
}

/// The bytes of a buffer from [`contiguous`].
pub(crate) fn bytes_of(buf: &PyUntypedBuffer) -> &[u8] {
    let len = buf.len_bytes();
    if len == 0 {
        return &[];
    }
    // SAFETY: `buf` is a C-contiguous buffer (checked by `contiguous`) of `len_bytes` bytes at
    // `buf_ptr`, held (not released) for as long as `buf` lives, which bounds the slice; the
    // caller holds the GIL and runs no Python code while it uses the slice, so no Python code
    // resizes the exporter meanwhile (it could not anyway: an exported buffer pins it).
    unsafe { std::slice::from_raw_parts(buf.buf_ptr().cast::<u8>(), len) }
}
