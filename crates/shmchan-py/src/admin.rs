//! Channels from outside, without opening them for use: `list`, `inspect` and `remove`, as
//! the library's `ChannelIo::list`, `inspect` and `remove` (the CLI's `ls`, `inspect`, `rm`).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use shmchan::{ChannelInfo, ChannelIo, EndInfo, WriterState};

use crate::errors::error;

/// The names of the channels on this machine (in the shared-memory directory), sorted.
#[pyfunction]
pub(crate) fn list() -> PyResult<Vec<String>> {
    let all = ChannelIo::list().map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
    Ok(all.into_iter().map(|(name, _)| name).collect())
}

/// What channel `name`'s header says, as a dict; the channel's error if it is missing or
/// not a readable channel.
#[pyfunction]
pub(crate) fn inspect<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
    let info = ChannelIo::inspect(name).map_err(|e| error(py, e))?;
    describe(py, &info)
}

/// Removes channel `name` and its files, in use or not (processes that have it open keep
/// working on it); `NotFoundError` if there is none.
#[pyfunction]
pub(crate) fn remove(py: Python<'_>, name: &str) -> PyResult<()> {
    ChannelIo::remove(name).map_err(|e| error(py, e))
}

fn describe<'py>(py: Python<'py>, i: &ChannelInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &i.name)?;
    d.set_item("element_size", i.elem_size)?;
    d.set_item("element_align", i.elem_align)?;
    d.set_item("element_type", i.elem_type.map(|p| p.name()))?;
    d.set_item("descr", i.descr.as_deref())?;
    d.set_item("schema", i.schema.as_deref())?;
    d.set_item("capacity", i.capacity)?;
    d.set_item("len", i.len())?;
    d.set_item("persist", i.persist)?;
    d.set_item("owner_uid", i.owner_uid)?;
    d.set_item("mode", i.mode)?;
    d.set_item("writer", end(py, &i.writer)?)?;
    d.set_item("reader", end(py, &i.reader)?)?;
    let (state, reason) = match &i.writer_state {
        WriterState::Open => ("open", None),
        WriterState::Closed => ("closed", None),
        WriterState::Aborted(r) => ("aborted", Some(r.as_str())),
    };
    d.set_item("writer_state", state)?;
    d.set_item("abort_reason", reason)?;
    d.set_item("reader_closed", i.reader_closed)?;
    d.set_item("in_use", i.in_use)?;
    Ok(d)
}

fn end<'py>(py: Python<'py>, e: &EndInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("held", e.held)?;
    d.set_item("pid", e.pid)?;
    d.set_item("claims", e.claims)?;
    Ok(d)
}
