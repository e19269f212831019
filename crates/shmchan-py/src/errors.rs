//! The library's errors as the package's exceptions.
//!
//! The exception classes are defined in Python (`shmchan/_errors.py`), where multiple bases
//! (`QueueClosedError` is a `RuntimeError` too, `TimedOutError` a `TimeoutError`), their
//! attributes and their docstrings are plain; this module builds instances of them from
//! the library's error, one class per kind.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use shmchan::{Context, ErrorKind};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// An attribute value of an exception.
pub(crate) enum Attr {
    Int(usize),
    Str(String),
    OptInt(Option<u64>),
    OptStr(Option<String>),
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
            Attr::OptStr(s) => kwargs.set_item(k, s)?,
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

/// The package's exception class for an error of `kind`.
fn class(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidName => "InvalidNameError",
        ErrorKind::InvalidCapacity => "InvalidCapacityError",
        ErrorKind::InvalidSchema => "InvalidSchemaError",
        // The package's descriptions come from dtypes: one it cannot make is a dtype that
        // cannot be an element.
        ErrorKind::UnsupportedElement | ErrorKind::InvalidDescr => "UnsupportedElementError",
        ErrorKind::AlreadyExists => "AlreadyExistsError",
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::PermissionDenied => "PermissionDeniedError",
        ErrorKind::ForeignOwner => "ForeignOwnerError",
        ErrorKind::ElementMismatch | ErrorKind::PartialElement => "ElementMismatchError",
        ErrorKind::SchemaMismatch => "SchemaMismatchError",
        ErrorKind::CapacityMismatch => "CapacityMismatchError",
        ErrorKind::TooSmall => "TooSmallError",
        ErrorKind::NotAChannel => "ForeignSegmentError",
        ErrorKind::VersionMismatch => "VersionMismatchError",
        ErrorKind::AbiMismatch => "AbiMismatchError",
        ErrorKind::NotInitialized => "NotInitializedError",
        ErrorKind::Corrupted => "CorruptedError",
        ErrorKind::NoSpace => "NoSpaceError",
        ErrorKind::MembarrierUnavailable => "MembarrierUnavailableError",
        ErrorKind::EndTaken => "EndTakenError",
        ErrorKind::Closed => "QueueClosedError",
        ErrorKind::Aborted => "AbortedError",
        ErrorKind::PeerGone => "PeerGoneError",
        ErrorKind::TimedOut => "TimedOutError",
        ErrorKind::Oversized => "OversizedError",
        ErrorKind::EndClosed => "EndClosedError",
        ErrorKind::Forked => "ForkedError",
        ErrorKind::Io => "ChannelOSError",
        _ => "ChannelError",
    }
}

/// What the package suggests for an error of `kind` (the library's message names no API).
fn hint(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::AlreadyExists => "; open it instead (ChannelIO.open), or remove it first",
        ErrorKind::NotFound => "; create it first (ChannelIO.create) or check the name",
        ErrorKind::PermissionDenied => "; its creator can give it a wider mode (mode=0o660)",
        ErrorKind::NotInitialized | ErrorKind::NotAChannel => "; remove it",
        ErrorKind::CapacityMismatch => {
            "; pass no capacity (or ChannelIO.open) to use it as it is, or remove it first \
             (shmchan.remove)"
        }
        ErrorKind::Forked => {
            "; pass the ChannelIO to this process instead (pickled or inherited, it opens the \
             channel by name here) and claim the end from it"
        }
        _ => "",
    }
}

/// The library's error as an instance of the package's exception for its kind, with the
/// channel's name, the progress counts and the facts of its context as attributes.
pub(crate) fn error(py: Python<'_>, e: shmchan::Error) -> PyErr {
    let message = format!("{e}{}", hint(e.kind()));
    let mut attrs = vec![
        ("name", Attr::Str(e.channel().to_string())),
        ("remaining", Attr::Int(e.remaining())),
        ("filled", Attr::Int(e.filled())),
        ("accepted", Attr::Int(e.accepted())),
    ];
    match e.context() {
        Context::Element {
            expected_size,
            expected_align,
            expected_descr,
            found_size,
            found_align,
            found_descr,
            ..
        } => attrs.extend([
            ("expected_size", Attr::Int(*expected_size as usize)),
            ("expected_align", Attr::Int(*expected_align as usize)),
            ("expected_descr", Attr::OptStr(expected_descr.clone())),
            ("found_size", Attr::Int(*found_size as usize)),
            ("found_align", Attr::Int(*found_align as usize)),
            ("found_descr", Attr::OptStr(found_descr.clone())),
        ]),
        Context::Capacity {
            requested,
            rounded,
            found,
        } => attrs.extend([
            ("requested", Attr::Int(*requested as usize)),
            ("rounded", Attr::Int(*rounded as usize)),
            ("found", Attr::Int(*found as usize)),
        ]),
        Context::Holder { pid, .. } => attrs.push(("pid", Attr::OptInt(pid.map(u64::from)))),
        Context::Reason(r) => attrs.push(("reason", Attr::Str(r.clone()))),
        _ => {}
    }
    raise(py, class(e.kind()), message, &attrs)
}
