//! The library's errors as the package's exceptions.
//!
//! The exception classes are defined in Python (`shmchan/_errors.py`), where multiple bases
//! (`QueueClosedError` is a `RuntimeError` too, `TimedOutError` a `TimeoutError`), their
//! attributes and their docstrings are plain; this module builds instances of them from
//! the Rust errors, one class per Rust variant.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use shmchan::{ClaimError, GetError, OpenError, PutError};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// An attribute value of an exception.
pub(crate) enum Attr {
    Int(usize),
    Str(String),
    OptInt(Option<u64>),
}

/// An instance of `shmchan._errors.<class>` with `message` and the attributes, as a PyErr.
pub(crate) fn raise(py: Python<'_>, class: &str, message: String, attrs: &[(&str, Attr)]) -> PyErr {
    match build(py, class, &message, attrs) {
        Ok(e) => e,
        // The package is broken (its Python half missing): say so rather than lose the error.
        Err(e) => PyRuntimeError::new_err(format!("{message} (and shmchan._errors failed: {e})")),
    }
}

fn build(py: Python<'_>, class: &str, message: &str, attrs: &[(&str, Attr)]) -> PyResult<PyErr> {
    let module = ERRORS.get_or_try_init(py, || py.import("shmchan._errors").map(|m| m.unbind()))?;
    let kwargs = PyDict::new(py);
    for (k, v) in attrs {
        match v {
            Attr::Int(n) => kwargs.set_item(k, n)?,
            Attr::Str(s) => kwargs.set_item(k, s)?,
            Attr::OptInt(n) => kwargs.set_item(k, n)?,
        }
    }
    let cls = module.bind(py).getattr(class)?;
    let exc = cls.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(exc))
}

/// A `ChannelError` of the package's own (not from the library): `class` and message.
pub(crate) fn channel_error(py: Python<'_>, class: &str, message: impl Into<String>) -> PyErr {
    raise(py, class, message.into(), &[])
}

pub(crate) fn open_error(py: Python<'_>, e: OpenError) -> PyErr {
    let msg = e.to_string();
    let (class, attrs): (&str, Vec<(&str, Attr)>) = match e {
        OpenError::InvalidName { name, .. } => {
            ("InvalidNameError", vec![("name", Attr::Str(name))])
        }
        OpenError::InvalidCapacity { name, .. } => {
            ("InvalidCapacityError", vec![("name", Attr::Str(name))])
        }
        OpenError::UnsupportedElement { name, .. } => {
            ("UnsupportedElementError", vec![("name", Attr::Str(name))])
        }
        OpenError::InvalidSchema { name, .. } => {
            ("InvalidSchemaError", vec![("name", Attr::Str(name))])
        }
        OpenError::AlreadyExists { name, .. } => {
            ("AlreadyExistsError", vec![("name", Attr::Str(name))])
        }
        OpenError::NotFound { name, .. } => ("NotFoundError", vec![("name", Attr::Str(name))]),
        OpenError::PermissionDenied { name, .. } => {
            ("PermissionDeniedError", vec![("name", Attr::Str(name))])
        }
        OpenError::ForeignOwner { name, .. } => {
            ("ForeignOwnerError", vec![("name", Attr::Str(name))])
        }
        OpenError::ElementMismatch {
            name,
            expected_size,
            expected_align,
            found_size,
            found_align,
            ..
        } => (
            "ElementMismatchError",
            vec![
                ("name", Attr::Str(name)),
                ("expected_size", Attr::Int(expected_size as usize)),
                ("expected_align", Attr::Int(expected_align as usize)),
                ("found_size", Attr::Int(found_size as usize)),
                ("found_align", Attr::Int(found_align as usize)),
            ],
        ),
        OpenError::SchemaMismatch { name, .. } => {
            ("SchemaMismatchError", vec![("name", Attr::Str(name))])
        }
        OpenError::TooSmall { name, .. } => ("TooSmallError", vec![("name", Attr::Str(name))]),
        OpenError::Foreign { name, .. } => ("ForeignSegmentError", vec![("name", Attr::Str(name))]),
        OpenError::VersionMismatch { name, .. } => {
            ("VersionMismatchError", vec![("name", Attr::Str(name))])
        }
        OpenError::AbiMismatch { name, .. } => {
            ("AbiMismatchError", vec![("name", Attr::Str(name))])
        }
        OpenError::NotInitialized { name, .. } => {
            ("NotInitializedError", vec![("name", Attr::Str(name))])
        }
        OpenError::Corrupted(c) => ("CorruptedError", vec![("name", Attr::Str(c.name))]),
        OpenError::NoSpace { name, .. } => ("NoSpaceError", vec![("name", Attr::Str(name))]),
        OpenError::MembarrierUnavailable { name, .. } => (
            "MembarrierUnavailableError",
            vec![("name", Attr::Str(name))],
        ),
        OpenError::Io { name, .. } => ("ChannelOSError", vec![("name", Attr::Str(name))]),
        _ => ("ChannelError", vec![]),
    };
    raise(py, class, msg, &attrs)
}

pub(crate) fn claim_error(py: Python<'_>, e: ClaimError) -> PyErr {
    let msg = e.to_string();
    let (class, attrs): (&str, Vec<(&str, Attr)>) = match e {
        ClaimError::EndTaken { name, pid, .. } => (
            "EndTakenError",
            vec![
                ("name", Attr::Str(name)),
                ("pid", Attr::OptInt(pid.map(u64::from))),
            ],
        ),
        ClaimError::Closed { name, .. } => (
            "QueueClosedError",
            vec![("name", Attr::Str(name)), ("remaining", Attr::Int(0))],
        ),
        ClaimError::Corrupted(c) => ("CorruptedError", vec![("name", Attr::Str(c.name))]),
        ClaimError::Io { name, .. } => ("ChannelOSError", vec![("name", Attr::Str(name))]),
        _ => ("ChannelError", vec![]),
    };
    raise(py, class, msg, &attrs)
}

pub(crate) fn put_error(py: Python<'_>, e: PutError) -> PyErr {
    let msg = e.to_string();
    let (class, attrs): (&str, Vec<(&str, Attr)>) = match e {
        PutError::Closed { name, accepted } => (
            "QueueClosedError",
            vec![("name", Attr::Str(name)), ("accepted", Attr::Int(accepted))],
        ),
        PutError::WriterClosed { name } => ("EndClosedError", vec![("name", Attr::Str(name))]),
        PutError::Oversized { name, .. } => ("OversizedError", vec![("name", Attr::Str(name))]),
        PutError::PeerGone { name, accepted } => (
            "PeerGoneError",
            vec![("name", Attr::Str(name)), ("accepted", Attr::Int(accepted))],
        ),
        PutError::TimedOut { name, accepted } => (
            "TimedOutError",
            vec![("name", Attr::Str(name)), ("accepted", Attr::Int(accepted))],
        ),
        PutError::PartialElement { name, .. } => {
            ("ElementMismatchError", vec![("name", Attr::Str(name))])
        }
        PutError::Corrupted(c) => ("CorruptedError", vec![("name", Attr::Str(c.name))]),
        PutError::Io { name, .. } => ("ChannelOSError", vec![("name", Attr::Str(name))]),
        _ => ("ChannelError", vec![]),
    };
    raise(py, class, msg, &attrs)
}

pub(crate) fn get_error(py: Python<'_>, e: GetError) -> PyErr {
    let msg = e.to_string();
    let counts = |name: String, remaining: usize, filled: usize| {
        vec![
            ("name", Attr::Str(name)),
            ("remaining", Attr::Int(remaining)),
            ("filled", Attr::Int(filled)),
        ]
    };
    let (class, attrs): (&str, Vec<(&str, Attr)>) = match e {
        GetError::Closed {
            name,
            remaining,
            filled,
        } => ("QueueClosedError", counts(name, remaining, filled)),
        GetError::Aborted {
            name,
            reason,
            remaining,
            filled,
        } => {
            let mut a = counts(name, remaining, filled);
            a.push(("reason", Attr::Str(reason)));
            ("AbortedError", a)
        }
        GetError::PeerGone {
            name,
            remaining,
            filled,
        } => ("PeerGoneError", counts(name, remaining, filled)),
        GetError::TimedOut {
            name,
            remaining,
            filled,
        } => ("TimedOutError", counts(name, remaining, filled)),
        GetError::Oversized { name, .. } => ("OversizedError", vec![("name", Attr::Str(name))]),
        GetError::ReaderClosed { name } => ("EndClosedError", vec![("name", Attr::Str(name))]),
        GetError::PartialElement { name, .. } => {
            ("ElementMismatchError", vec![("name", Attr::Str(name))])
        }
        GetError::Corrupted(c) => ("CorruptedError", vec![("name", Attr::Str(c.name))]),
        GetError::Io { name, .. } => ("ChannelOSError", vec![("name", Attr::Str(name))]),
        _ => ("ChannelError", vec![]),
    };
    raise(py, class, msg, &attrs)
}
