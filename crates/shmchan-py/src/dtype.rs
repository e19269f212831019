//! numpy dtypes as element types, and the bytes of the arrays that `put` and `get` are
//! given.

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use shmchan::{ElementType, Primitive};

use crate::errors::{channel_error, raise, Attr};

/// The element type of a dtype: a primitive for the ten numeric dtypes of native byte
/// order (so that `float32` and `uint32` stay apart), otherwise a record of the dtype's
/// size and alignment (structured dtypes, `bool`, `float16`, complex, fixed-size strings).
pub(crate) fn element_type(
    py: Python<'_>,
    dtype: &Bound<'_, PyArrayDescr>,
) -> PyResult<ElementType> {
    if dtype.has_object() {
        return Err(channel_error(
            py,
            "UnsupportedElementError",
            format!("dtype {dtype} holds Python objects, which cannot cross processes"),
        ));
    }
    if dtype.is_native_byteorder() == Some(false) {
        return Err(channel_error(
            py,
            "UnsupportedElementError",
            format!(
                "dtype {dtype} is not in this machine's byte order; use dtype.newbyteorder('=')"
            ),
        ));
    }
    if !dtype.has_fields() && !dtype.has_subarray() {
        let p = match (dtype.kind(), dtype.itemsize()) {
            (b'u', 1) => Some(Primitive::U8),
            (b'i', 1) => Some(Primitive::I8),
            (b'u', 2) => Some(Primitive::U16),
            (b'i', 2) => Some(Primitive::I16),
            (b'u', 4) => Some(Primitive::U32),
            (b'i', 4) => Some(Primitive::I32),
            (b'u', 8) => Some(Primitive::U64),
            (b'i', 8) => Some(Primitive::I64),
            (b'f', 4) => Some(Primitive::F32),
            (b'f', 8) => Some(Primitive::F64),
            _ => None,
        };
        if let Some(p) = p {
            return Ok(ElementType::primitive(p));
        }
    }
    ElementType::record(dtype.itemsize(), dtype.alignment())
        .map_err(|e| channel_error(py, "UnsupportedElementError", format!("dtype {dtype}: {e}")))
}

/// The channel's dtype against an array's: equal, or an `ElementMismatchError` naming both.
pub(crate) fn check_dtype(
    py: Python<'_>,
    name: &str,
    chan: &Bound<'_, PyArrayDescr>,
    array: &Bound<'_, PyUntypedArray>,
) -> PyResult<()> {
    let found = array.dtype();
    if found.is_equiv_to(chan) {
        return Ok(());
    }
    Err(raise(
        py,
        "ElementMismatchError",
        format!("channel '{name}' holds {chan}, but the array holds {found}"),
        &[
            ("name", Attr::Str(name.to_string())),
            ("expected_size", Attr::Int(chan.itemsize())),
            ("expected_align", Attr::Int(chan.alignment())),
            ("found_size", Attr::Int(found.itemsize())),
            ("found_align", Attr::Int(found.alignment())),
        ],
    ))
}

/// An array's memory as bytes, checked: C-contiguous, of the channel's dtype, and writable
/// if `write`. The pointer is valid while the caller holds the GIL and runs no Python code
/// (nothing can resize or free the array meanwhile).
pub(crate) fn array_bytes(
    py: Python<'_>,
    name: &str,
    chan: &Bound<'_, PyArrayDescr>,
    array: &Bound<'_, PyUntypedArray>,
    write: bool,
) -> PyResult<(*mut u8, usize)> {
    check_dtype(py, name, chan, array)?;
    if !array.is_c_contiguous() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "the array is not C-contiguous (np.ascontiguousarray makes it so)",
        ));
    }
    // SAFETY: `array` is a live ndarray (the Bound proves it) and we hold the GIL, so its
    // fields may be read; data and flags are plain values.
    let (data, flags) = unsafe {
        let f = numpy::npyffi::_PyArray_GET_ITEM_DATA(array.as_array_ptr());
        ((*f).data as *mut u8, (*f).flags)
    };
    if write && flags & numpy::npyffi::NPY_ARRAY_WRITEABLE == 0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "the array is read-only",
        ));
    }
    let len = array
        .len()
        .checked_mul(chan.itemsize())
        .ok_or_else(|| pyo3::exceptions::PyOverflowError::new_err("array too large"))?;
    Ok((data, len))
}
