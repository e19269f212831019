//! Element descriptions: an element's full layout as text, in the notation of the NPY file
//! format's `descr` (what `numpy.lib.format.dtype_to_descr` gives, and
//! `numpy.lib.format.descr_to_dtype` reads back), parsed, checked and written in one
//! canonical form, so that two descriptions of one layout are the same bytes.
//!
//! The parser reads text that may come from a hostile segment: it is bounded (the text by
//! [`DESCR_MAX`] bytes, nesting by [`DEPTH_MAX`], a shape by [`DIMS_MAX`] dimensions, every
//! size by `u32`), allocates at most in proportion to its input, and reports what it refuses
//! as a [`DescrError`], never a panic.

use std::collections::HashSet;
use std::fmt::{self, Write as _};

use super::Primitive;

/// Longest element description a channel records, in bytes (64 KiB: some 2 700 fields of
/// ten-letter names).
pub const DESCR_MAX: usize = 1 << 16;

/// Deepest nesting of records and subarrays a description may have.
const DEPTH_MAX: usize = 16;

/// Most dimensions of one subarray shape.
const DIMS_MAX: usize = 32;

/// An element's full description, in canonical form: its fields' names and order, their kinds
/// and sizes, datetime units, byte order, padding, and so its size. Two channel ends whose
/// elements are both described must describe them alike.
///
/// The notation is the NPY format's `descr`, as Python literals:
///
/// - a scalar is its numpy type string: `'<f8'`, `'|u1'`, `'<M8[us]'`, `'|S16'`, `'<U8'`,
///   `'|b1'`, `'<c16'`, `'|V4'`;
/// - a record is a list of fields, each `(name, descr)` or `(name, descr, shape)`, in memory
///   order; a gap is a field named `''` of type `'|Vn'` (numpy writes one for every gap and
///   for trailing padding); a field with a title has `(title, name)` as its name:
///   `[('t', '<u8'), ('x', '<f4'), ('', '|V4')]`;
/// - a top-level subarray, which the NPY format writes as raw bytes (`'|V12'`), is
///   `(descr, shape)`, as `descr_to_dtype` reads it: `('<f4', (3,))`.
///
/// [`parse`](Descr::parse) accepts either quote, any spacing, a trailing comma, `=` or no
/// byte order (this machine's), a plain number for a one-dimensional shape, and `[1us]` for
/// `[us]`; it writes single quotes, `", "` between items, the byte order numpy prints (`|`
/// where it does not matter), adjacent gaps as one, and no datetime multiplier of 1. For
/// names without quotes or backslashes the canonical text is Python's
/// `repr(numpy.lib.format.dtype_to_descr(dtype))`.
///
/// ```
/// use shmchan::{Descr, Primitive};
/// let d = Descr::parse(r#"[("a", "i4"), ("b", "=f4")]"#)?;
/// assert_eq!(d.as_str(), "[('a', '<i4'), ('b', '<f4')]"); // on a little-endian machine
/// assert_eq!(d.size(), 8);
/// assert_eq!(Descr::parse("'<M8[1us]'")?.as_str(), "'<M8[us]'");
/// assert_eq!(Descr::primitive(Primitive::U8).as_str(), "'|u1'");
/// assert!(Descr::parse("[('a', '<i4'), ('a', '<f4')]").is_err()); // one name, twice
/// # Ok::<(), shmchan::DescrError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Descr {
    text: String,
    size: usize,
}

/// Why a description was refused: where in the text, and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte {at}: {reason}")]
pub struct DescrError {
    /// Byte offset in the text.
    pub at: usize,
    /// What is wrong.
    pub reason: String,
}

impl Descr {
    /// Parses and checks `text`, and puts it in canonical form.
    ///
    /// # Errors
    ///
    /// If `text` is longer than [`DESCR_MAX`] bytes, is not the notation above, names a type
    /// that cannot cross processes (`'O'`, Python objects) or that numpy does not have
    /// (`'<i3'`), repeats a field name, nests deeper than 16 levels, or describes more than
    /// 4 GiB.
    pub fn parse(text: &str) -> Result<Descr, DescrError> {
        if text.len() > DESCR_MAX {
            return Err(DescrError {
                at: DESCR_MAX,
                reason: format!("{} bytes, more than {DESCR_MAX}", text.len()),
            });
        }
        let mut p = Parser { s: text, pos: 0 };
        p.ws();
        let node = p.node(0, true)?;
        p.ws();
        if p.pos != text.len() {
            return Err(p.err("text after the description"));
        }
        let size = node.size().ok_or_else(|| DescrError {
            at: 0,
            reason: "it describes more than 4 GiB".into(),
        })?;
        let mut out = String::with_capacity(text.len());
        node.write(&mut out);
        Ok(Descr {
            text: out,
            size: size as usize,
        })
    }

    /// The description of a primitive: `'<u4'` for [`Primitive::U32`] on a little-endian
    /// machine, `'|u1'` for [`Primitive::U8`].
    pub fn primitive(p: Primitive) -> Descr {
        let size = p.size();
        let kind = match p {
            Primitive::U8 | Primitive::U16 | Primitive::U32 | Primitive::U64 => 'u',
            Primitive::I8 | Primitive::I16 | Primitive::I32 | Primitive::I64 => 'i',
            Primitive::F32 | Primitive::F64 => 'f',
        };
        let order = if size == 1 { '|' } else { NATIVE };
        Descr {
            text: format!("'{order}{kind}{size}'"),
            size: size as usize,
        }
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Bytes of one element.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl fmt::Display for Descr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Descr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Descr({})", self.text)
    }
}

impl std::str::FromStr for Descr {
    type Err = DescrError;
    fn from_str(s: &str) -> Result<Descr, DescrError> {
        Descr::parse(s)
    }
}

/// This machine's byte order, as numpy writes it.
const NATIVE: char = if cfg!(target_endian = "little") {
    '<'
} else {
    '>'
};

/// A parsed description (before it is written canonically).
enum Node {
    Scalar(Scalar),
    Record(Vec<Field>),
    /// A top-level subarray: the item type and the shape.
    Sub(Box<Node>, Vec<u32>),
}

/// A numpy type string: byte order, kind, the number after it (bytes, or characters for
/// `U`), and a datetime unit with its multiplier.
struct Scalar {
    order: char,
    kind: char,
    count: u32,
    unit: Option<(u32, &'static str)>,
}

struct Field {
    title: Option<String>,
    /// Empty for a gap.
    name: String,
    node: Node,
    shape: Option<Vec<u32>>,
}

const UNITS: [&str; 13] = [
    "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as",
];

impl Scalar {
    fn size(&self) -> Option<u32> {
        if self.kind == 'U' {
            self.count.checked_mul(4)
        } else {
            Some(self.count)
        }
    }

    /// A gap: raw bytes.
    fn is_void(&self) -> bool {
        self.kind == 'V'
    }
}

fn product(shape: &[u32]) -> Option<u32> {
    shape.iter().try_fold(1u32, |a, d| a.checked_mul(*d))
}

impl Node {
    fn size(&self) -> Option<u32> {
        match self {
            Node::Scalar(s) => s.size(),
            Node::Record(fields) => fields.iter().try_fold(0u32, |a, f| {
                let n = f
                    .node
                    .size()?
                    .checked_mul(product(f.shape.as_deref().unwrap_or(&[]))?)?;
                a.checked_add(n)
            }),
            Node::Sub(item, shape) => item.size()?.checked_mul(product(shape)?),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Node::Scalar(s) => {
                out.push('\'');
                out.push(s.order);
                out.push(s.kind);
                let _ = write!(out, "{}", s.count);
                if let Some((mult, unit)) = s.unit {
                    out.push('[');
                    if mult != 1 {
                        let _ = write!(out, "{mult}");
                    }
                    out.push_str(unit);
                    out.push(']');
                }
                out.push('\'');
            }
            Node::Record(fields) => {
                out.push('[');
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push('(');
                    match &f.title {
                        Some(t) => {
                            out.push('(');
                            quote(out, t);
                            out.push_str(", ");
                            quote(out, &f.name);
                            out.push(')');
                        }
                        None => quote(out, &f.name),
                    }
                    out.push_str(", ");
                    f.node.write(out);
                    if let Some(shape) = &f.shape {
                        out.push_str(", ");
                        write_shape(out, shape);
                    }
                    out.push(')');
                }
                out.push(']');
            }
            Node::Sub(item, shape) => {
                out.push('(');
                item.write(out);
                out.push_str(", ");
                write_shape(out, shape);
                out.push(')');
            }
        }
    }
}

/// `s` as a single-quoted Python string: a quote and a backslash are escaped (the parser
/// refused control characters).
fn quote(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

/// A shape as Python writes a tuple: `(3,)`, `(2, 3)`.
fn write_shape(out: &mut String, shape: &[u32]) {
    out.push('(');
    for (i, d) in shape.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{d}");
    }
    if shape.len() == 1 {
        out.push(',');
    }
    out.push(')');
}

mod parse;
#[cfg(test)]
mod tests;

use parse::Parser;
