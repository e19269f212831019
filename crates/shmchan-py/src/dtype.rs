//! numpy dtypes as element types, and the bytes of the arrays that `put` and `get` are
//! given.

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shmchan::{Descr, ElementType, Primitive};

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

/// The element description of a dtype (see `shmchan::Descr`): what
/// `numpy.lib.format.dtype_to_descr(dtype)` gives, metadata left out, written as a Python
/// literal, except that a top-level subarray (which that writes as raw bytes, `'|V12'` for
/// `(3,)f4` and `(3,)i4` alike) is `(base, shape)`. Walked here rather than taken from
/// `repr(dtype.descr)`, so that no Python quoting reaches the library's parser; the library
/// checks it and puts it in canonical form.
pub(crate) fn descr(py: Python<'_>, dtype: &Bound<'_, PyArrayDescr>) -> PyResult<String> {
    let mut out = String::new();
    if dtype.has_subarray() {
        out.push('(');
        item_descr(py, &dtype.base(), &mut out)?;
        out.push_str(", ");
        write_shape(&dtype.shape(), &mut out);
        out.push(')');
    } else {
        item_descr(py, dtype, &mut out)?;
    }
    Ok(out)
}

/// A scalar's type string, or a structured dtype's fields in memory order with its gaps,
/// as numpy's `dtype.descr` lists them.
fn item_descr(py: Python<'_>, dtype: &Bound<'_, PyArrayDescr>, out: &mut String) -> PyResult<()> {
    let Some(names) = dtype.names() else {
        let s: String = dtype.getattr("str")?.extract()?;
        quote(&s, out);
        return Ok(());
    };
    let fields = dtype.getattr("fields")?;
    let mut offset = 0;
    let mut items = Vec::new();
    for name in names {
        let entry = fields.get_item(&name)?.cast_into::<PyTuple>()?;
        let (field, at) = dtype.get_field(&name)?;
        let title = match entry.len() {
            3 => Some(entry.get_item(2)?.extract::<String>().map_err(|_| {
                channel_error(
                    py,
                    "UnsupportedElementError",
                    format!("dtype {dtype}: the title of field {name:?} is not a string"),
                )
            })?),
            _ => None,
        };
        if at < offset {
            return Err(channel_error(
                py,
                "UnsupportedElementError",
                format!(
                    "dtype {dtype}: its fields overlap or are out of order, which its \
                     description (the NPY format's descr) cannot say"
                ),
            ));
        }
        if at > offset {
            items.push(format!("('', '|V{}')", at - offset));
        }
        let mut item = String::from("(");
        match title {
            Some(t) => {
                item.push('(');
                quote(&t, &mut item);
                item.push_str(", ");
                quote(&name, &mut item);
                item.push(')');
            }
            None => quote(&name, &mut item),
        }
        item.push_str(", ");
        item_descr(py, &field.base(), &mut item)?;
        if field.has_subarray() {
            item.push_str(", ");
            write_shape(&field.shape(), &mut item);
        }
        item.push(')');
        items.push(item);
        offset = at + field.itemsize();
    }
    if dtype.itemsize() > offset {
        items.push(format!("('', '|V{}')", dtype.itemsize() - offset));
    }
    out.push('[');
    out.push_str(&items.join(", "));
    out.push(']');
    Ok(())
}

/// `s` between single quotes, a quote and a backslash escaped.
fn quote(s: &str, out: &mut String) {
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

/// A shape as a Python tuple.
fn write_shape(shape: &[usize], out: &mut String) {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    out.push('(');
    out.push_str(&dims.join(", "));
    if dims.len() == 1 {
        out.push(',');
    }
    out.push(')');
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
    // Both descriptions in canonical form, as the library's errors give them.
    let described = |d: &Bound<'_, PyArrayDescr>| {
        let text = descr(py, d).ok();
        Attr::OptStr(text.and_then(|t| Some(Descr::parse(&t).ok()?.as_str().to_string())))
    };
    Err(raise(
        py,
        "ElementMismatchError",
        format!("channel '{name}' holds {chan}, but the array holds {found}"),
        &[
            ("name", Attr::Str(name.to_string())),
            ("expected_size", Attr::Int(chan.itemsize())),
            ("expected_align", Attr::Int(chan.alignment())),
            ("expected_descr", described(chan)),
            ("found_size", Attr::Int(found.itemsize())),
            ("found_align", Attr::Int(found.alignment())),
            ("found_descr", described(&found)),
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
