//! Channels from outside, without opening them for use: `list`, `inspect`, `remove` and
//! `gc`, as the library's `ChannelIo::list`, `inspect`, `remove` and `gc` (the CLI's `ls`,
//! `inspect`, `rm`, `gc`).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use shmchan::{
    ChannelInfo, ChannelIo, Collected, EndInfo, GcAction, GcOptions, GcReason, WriterState,
};

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

/// Collects the channels no live process has open (as the library's `ChannelIo::gc`, the
/// CLI's `gc`): one dict per channel or leftover directory, saying what was done and why.
#[pyfunction]
#[pyo3(signature = (all=false, dry_run=false))]
pub(crate) fn gc<'py>(
    py: Python<'py>,
    all: bool,
    dry_run: bool,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let done = ChannelIo::gc(GcOptions::new().all(all).dry_run(dry_run))
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
    done.into_iter().map(|c| collected(py, c)).collect()
}

/// One thing `gc` looked at, as a dict: `name`, `path`, `leftover`, `action`, `reason`, and
/// the facts of the reason (`state`, `items`, `end_of_stream`, `owner_uid`, `error`), None
/// where they do not apply.
fn collected(py: Python<'_>, c: Collected) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &c.name)?;
    d.set_item("path", c.path.to_string_lossy())?;
    d.set_item("leftover", c.leftover)?;
    for key in [
        "reason",
        "state",
        "items",
        "end_of_stream",
        "owner_uid",
        "error",
    ] {
        d.set_item(key, py.None())?;
    }
    let (action, why) = match c.action {
        GcAction::Removed(why) => ("removed", why),
        GcAction::WouldRemove(why) => ("would_remove", why),
        GcAction::Kept(why) => ("kept", why),
        GcAction::Failed(e) => {
            d.set_item("action", "failed")?;
            d.set_item("error", error(py, e).into_value(py))?;
            return Ok(d);
        }
        // What a later library may add.
        _ => {
            d.set_item("action", "unknown")?;
            return Ok(d);
        }
    };
    d.set_item("action", action)?;
    let reason = match why {
        GcReason::NotInUse(state) => {
            d.set_item("state", state.as_str())?;
            "not_in_use"
        }
        GcReason::Leftover => "leftover",
        GcReason::Unreadable(e) => {
            d.set_item("error", error(py, e).into_value(py))?;
            "unreadable"
        }
        GcReason::InUse => "in_use",
        GcReason::OtherUser(uid) => {
            d.set_item("owner_uid", uid)?;
            "other_user"
        }
        GcReason::Persistent => "persistent",
        GcReason::Undelivered {
            items,
            end_of_stream,
        } => {
            d.set_item("items", items)?;
            d.set_item("end_of_stream", end_of_stream)?;
            "undelivered"
        }
        _ => "unknown",
    };
    d.set_item("reason", reason)?;
    Ok(d)
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
