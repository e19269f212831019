//! `_Channel`: a channel open in this process, typed by a numpy dtype.

use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::prelude::*;
use shmchan::{Options, RawChannel};

use crate::dtype::{descr, element_type};
use crate::errors::error;
use crate::reader::Reader;
use crate::writer::Writer;

/// A channel open in this process (the package's `ChannelIO` wraps it).
#[pyclass(module = "shmchan._shmchan", name = "_Channel", frozen)]
pub(crate) struct Channel {
    inner: RawChannel,
    dtype: Py<PyArrayDescr>,
}

#[pymethods]
impl Channel {
    /// Creates (`how="create"`), opens (`"open"`) or either (`"create_or_open"`) channel
    /// `name` of `dtype`.
    #[staticmethod]
    #[pyo3(signature = (how, name, dtype, capacity=None, schema=None, mode=None, persist=false))]
    #[allow(clippy::too_many_arguments)]
    fn connect(
        py: Python<'_>,
        how: &str,
        name: &str,
        dtype: Bound<'_, PyArrayDescr>,
        capacity: Option<usize>,
        schema: Option<String>,
        mode: Option<u32>,
        persist: bool,
    ) -> PyResult<Channel> {
        let elem = element_type(py, &dtype)?;
        // Always described: a Python peer knows its whole layout (see `dtype::descr`).
        let mut opts = Options::new().persist(persist).descr(descr(py, &dtype)?);
        if let Some(c) = capacity {
            opts = opts.capacity(c);
        }
        if let Some(s) = schema {
            opts = opts.schema(s);
        }
        if let Some(m) = mode {
            opts = opts.mode(m);
        }
        let res = match how {
            "create" => RawChannel::create(name, elem, opts),
            "open" => RawChannel::open(name, elem, opts),
            "create_or_open" => RawChannel::create_or_open(name, elem, opts),
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "how must be create, open or create_or_open, not {how:?}"
                )))
            }
        };
        let inner = res.map_err(|e| error(py, e))?;
        Ok(Channel {
            inner,
            dtype: dtype.unbind(),
        })
    }

    /// Claims the writing end.
    fn writer(&self, py: Python<'_>) -> PyResult<Writer> {
        let w = self.inner.writer().map_err(|e| error(py, e))?;
        Writer::new(w, self.inner.clone(), self.dtype.clone_ref(py))
    }

    /// Claims the reading end.
    fn reader(&self, py: Python<'_>) -> PyResult<Reader> {
        let r = self.inner.reader().map_err(|e| error(py, e))?;
        Reader::new(r, self.inner.clone(), self.dtype.clone_ref(py))
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    #[getter]
    fn schema(&self) -> Option<&str> {
        self.inner.schema()
    }

    /// The channel's element description, as its creator recorded it.
    #[getter]
    fn descr(&self) -> Option<&str> {
        self.inner.descr()
    }

    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Bound<'py, PyArrayDescr> {
        self.dtype.bind(py).clone()
    }

    #[getter]
    fn itemsize(&self, py: Python<'_>) -> usize {
        self.dtype.bind(py).itemsize()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}
