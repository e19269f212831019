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

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> DescrError {
        DescrError {
            at: self.pos,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Skips spacing, then takes `c` if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), DescrError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(format!("expected '{}'", c as char)))
        }
    }

    /// A description: a type string, a record, or (at the top) a subarray.
    fn node(&mut self, depth: usize, top: bool) -> Result<Node, DescrError> {
        if depth > DEPTH_MAX {
            return Err(self.err(format!("nested deeper than {DEPTH_MAX} levels")));
        }
        self.ws();
        match self.peek() {
            Some(b'\'' | b'"') => {
                let at = self.pos;
                let t = self.string()?;
                scalar(&t)
                    .map(Node::Scalar)
                    .map_err(|reason| DescrError { at, reason })
            }
            Some(b'[') => self.record(depth),
            Some(b'(') if top => {
                self.pos += 1;
                let item = self.node(depth + 1, false)?;
                self.expect(b',')?;
                let shape = self.shape()?;
                self.eat(b',');
                self.expect(b')')?;
                Ok(Node::Sub(Box::new(item), shape))
            }
            _ => Err(self.err(if top {
                "expected a type string, a list of fields or (type, shape)"
            } else {
                "expected a type string or a list of fields"
            })),
        }
    }

    fn record(&mut self, depth: usize) -> Result<Node, DescrError> {
        let start = self.pos;
        self.expect(b'[')?;
        let mut fields: Vec<Field> = Vec::new();
        let mut seen = HashSet::new();
        loop {
            if self.eat(b']') {
                break;
            }
            if !fields.is_empty() {
                self.expect(b',')?;
                if self.eat(b']') {
                    break;
                }
            }
            let at = self.pos;
            let f = self.field(depth)?;
            // Names and titles share one namespace (as in numpy); gaps have no name.
            for n in [Some(f.name.as_str()), f.title.as_deref()]
                .into_iter()
                .flatten()
            {
                if !n.is_empty() && !seen.insert(n.to_string()) {
                    return Err(DescrError {
                        at,
                        reason: format!("field name or title {n:?} used twice"),
                    });
                }
            }
            // Adjacent gaps are one gap (numpy writes one per gap).
            match (fields.last_mut(), gap_bytes(&f)) {
                (Some(last), Some(n)) if gap_bytes(last).is_some() => {
                    let total = gap_bytes(last)
                        .and_then(|m| m.checked_add(n))
                        .ok_or_else(|| self.err("a gap of more than 4 GiB"))?;
                    *last = gap(total);
                }
                (_, Some(n)) => fields.push(gap(n)),
                _ => fields.push(f),
            }
        }
        if fields.is_empty() {
            return Err(DescrError {
                at: start,
                reason: "a record without fields".into(),
            });
        }
        Ok(Node::Record(fields))
    }

    fn field(&mut self, depth: usize) -> Result<Field, DescrError> {
        self.expect(b'(')?;
        self.ws();
        let (title, name) = if self.peek() == Some(b'(') {
            self.pos += 1;
            self.ws();
            let title = self.string()?;
            self.expect(b',')?;
            self.ws();
            let name = self.string()?;
            self.expect(b')')?;
            if title.is_empty() || name.is_empty() {
                return Err(self.err("a titled field needs a title and a name"));
            }
            (Some(title), name)
        } else {
            (None, self.string()?)
        };
        self.expect(b',')?;
        let at = self.pos;
        let node = self.node(depth + 1, false)?;
        let mut shape = None;
        if self.eat(b',') {
            self.ws();
            if self.peek() != Some(b')') {
                shape = Some(self.shape()?);
                self.eat(b',');
            }
        }
        self.expect(b')')?;
        if name.is_empty() && !matches!(&node, Node::Scalar(s) if s.is_void()) {
            return Err(DescrError {
                at,
                reason: "only a gap ('|Vn') has no name".into(),
            });
        }
        Ok(Field {
            title,
            name,
            node,
            shape,
        })
    }

    /// A quoted string: either quote, with `\\`, `\'` and `\"` as the only escapes, and no
    /// control characters.
    fn string(&mut self) -> Result<String, DescrError> {
        let Some(q @ (b'\'' | b'"')) = self.peek() else {
            return Err(self.err("expected a quoted string"));
        };
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                _ if c as u32 == u32::from(q) => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('\\' | '\'' | '"'))) => out.push(e),
                    _ => {
                        self.pos += i;
                        return Err(self.err("an escape other than \\\\, \\' or \\\""));
                    }
                },
                c if c.is_control() => {
                    self.pos += i;
                    return Err(self.err("a control character in a string"));
                }
                c => out.push(c),
            }
        }
        self.pos = self.s.len();
        Err(self.err("a string without its closing quote"))
    }

    /// A shape: `(d, ...)` of at least one dimension, or a plain number.
    fn shape(&mut self) -> Result<Vec<u32>, DescrError> {
        self.ws();
        if self.peek() != Some(b'(') {
            return Ok(vec![self.dim()?]);
        }
        self.pos += 1;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                break;
            }
            if !dims.is_empty() {
                self.expect(b',')?;
                if self.eat(b')') {
                    break;
                }
            }
            if dims.len() == DIMS_MAX {
                return Err(self.err(format!("more than {DIMS_MAX} dimensions")));
            }
            dims.push(self.dim()?);
        }
        if dims.is_empty() {
            return Err(self.err("an empty shape"));
        }
        Ok(dims)
    }

    fn dim(&mut self) -> Result<u32, DescrError> {
        self.ws();
        let digits = self.s[self.pos..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let at = self.pos;
        let n = number(&self.s[at..at + digits]).map_err(|reason| DescrError { at, reason })?;
        self.pos += digits;
        if n == 0 {
            return Err(DescrError {
                at,
                reason: "a dimension of 0".into(),
            });
        }
        Ok(n)
    }
}

/// The bytes of `f` if it is a gap (a nameless void field), shape included.
fn gap_bytes(f: &Field) -> Option<u32> {
    match &f.node {
        Node::Scalar(s) if f.name.is_empty() && s.is_void() => s
            .count
            .checked_mul(product(f.shape.as_deref().unwrap_or(&[]))?),
        _ => None,
    }
}

fn gap(bytes: u32) -> Field {
    Field {
        title: None,
        name: String::new(),
        node: Node::Scalar(Scalar {
            order: '|',
            kind: 'V',
            count: bytes,
            unit: None,
        }),
        shape: None,
    }
}

/// A decimal number of at most `u32::MAX`.
fn number(digits: &str) -> Result<u32, String> {
    if digits.is_empty() {
        return Err("expected a number".into());
    }
    digits
        .parse::<u32>()
        .map_err(|_| format!("{digits} is too large"))
}

/// A numpy type string (the text between the quotes), checked and with its byte order as
/// numpy writes it.
fn scalar(t: &str) -> Result<Scalar, String> {
    let bad = |why: &str| format!("type string {t:?}: {why}");
    let (order, rest) = match t.as_bytes().first() {
        Some(o @ (b'<' | b'>' | b'|' | b'=')) => (Some(*o as char), &t[1..]),
        _ => (None, t),
    };
    let mut chars = rest.chars();
    let kind = match chars.next() {
        Some('a') => 'S',
        Some(k) => k,
        None => return Err(bad("no kind")),
    };
    match kind {
        'b' | 'i' | 'u' | 'f' | 'c' | 'm' | 'M' | 'S' | 'U' | 'V' => {}
        'O' => return Err(bad("Python objects cannot cross processes")),
        _ => return Err(bad("not a kind of fixed layout (b i u f c m M S U V)")),
    }
    let rest = chars.as_str();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let count = number(&rest[..digits]).map_err(|e| bad(&e))?;
    let rest = &rest[digits..];
    let ok_size = match kind {
        'b' => count == 1,
        'i' | 'u' => matches!(count, 1 | 2 | 4 | 8),
        'f' => matches!(count, 2 | 4 | 8 | 12 | 16),
        'c' => matches!(count, 8 | 16 | 24 | 32),
        'm' | 'M' => count == 8,
        _ => count >= 1,
    };
    if !ok_size {
        return Err(bad("numpy has no such size of this kind"));
    }
    let unit = match (kind, rest) {
        (_, "") => None,
        ('m' | 'M', u) if u.starts_with('[') && u.ends_with(']') => {
            let inner = &u[1..u.len() - 1];
            let d = inner.bytes().take_while(u8::is_ascii_digit).count();
            let mult = if d == 0 {
                1
            } else {
                number(&inner[..d]).map_err(|e| bad(&e))?
            };
            match &inner[d..] {
                "generic" if d == 0 => None,
                name => {
                    let Some(unit) = UNITS.iter().find(|u| **u == name) else {
                        return Err(bad("unknown datetime unit"));
                    };
                    if mult == 0 {
                        return Err(bad("a unit multiplier of 0"));
                    }
                    Some((mult, *unit))
                }
            }
        }
        _ => return Err(bad("unexpected text after the size")),
    };
    // The byte order as numpy writes it: `|` where it does not matter, else the one given
    // (`=`, `|` or none: this machine's).
    let order = match (kind, count, order) {
        ('b' | 'S' | 'V', _, _) | ('i' | 'u', 1, _) => '|',
        (_, _, Some(o @ ('<' | '>'))) => o,
        _ => NATIVE,
    };
    Ok(Scalar {
        order,
        kind,
        count,
        unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(t: &str) -> String {
        Descr::parse(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .as_str()
            .to_string()
    }

    fn refused(t: &str) -> String {
        match Descr::parse(t) {
            Ok(d) => panic!("{t} was accepted as {d}"),
            Err(e) => e.reason,
        }
    }

    /// What numpy writes comes back unchanged, with its size.
    #[test]
    fn numpy_descrs_are_canonical() {
        for (t, size) in [
            ("'<f8'", 8),
            ("'|u1'", 1),
            ("'|b1'", 1),
            ("'<f2'", 2),
            ("'<c16'", 16),
            ("'<M8[us]'", 8),
            ("'<M8[ns]'", 8),
            ("'<m8[10ms]'", 8),
            ("'<M8'", 8),
            ("'|S5'", 5),
            ("'<U3'", 12),
            ("'>i4'", 4),
            ("'|V8'", 8),
            ("[('a', '<i4'), ('b', '<f4')]", 8),
            ("[('t', '<u8'), ('x', '<f4'), ('', '|V4')]", 16),
            (
                "[('pos', [('x', '<f4'), ('y', '<f4')]), ('v', '<f8', (3,))]",
                32,
            ),
            ("[(('Time', 't'), '<M8[ns]'), ('m', '<f4', (2, 3))]", 32),
            ("('<f4', (3,))", 12),
            ("([('a', '|u1')], (2, 2))", 4),
            ("[('', '|V8')]", 8),
            ("[('it\\'s', '<i4'), ('back\\\\slash', '<i4')]", 8),
            ("[('température', '<f8')]", 8),
        ] {
            let d = Descr::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!((d.as_str(), d.size()), (t, size));
        }
    }

    /// Other spellings of one layout become the canonical text.
    #[test]
    fn spellings_are_normalised() {
        let n = NATIVE;
        for (t, want) in [
            ("\"<f8\"", "'<f8'".to_string()),
            ("'f8'", format!("'{n}f8'")),
            ("'=i2'", format!("'{n}i2'")),
            ("'|f8'", format!("'{n}f8'")),
            ("'<u1'", "'|u1'".into()),
            ("'>b1'", "'|b1'".into()),
            ("'a4'", "'|S4'".into()),
            ("'<M8[1us]'", "'<M8[us]'".into()),
            ("'<M8[generic]'", "'<M8'".into()),
            (
                " [ ( 'a' , '<i4' ) ,('b','<f4',) , ] ",
                "[('a', '<i4'), ('b', '<f4')]".into(),
            ),
            (
                "[('a', '<f4', 3), ('b', '<f4', (2,3,))]",
                "[('a', '<f4', (3,)), ('b', '<f4', (2, 3))]".into(),
            ),
            (
                "[('a', '|u1'), ('', '|V1'), ('', '|V2'), ('b', '<i4')]",
                "[('a', '|u1'), ('', '|V3'), ('b', '<i4')]".into(),
            ),
            (
                "[('a', '|u1'), ('', '|V1', (3,))]",
                "[('a', '|u1'), ('', '|V3')]".into(),
            ),
            ("('<f4', 3)", "('<f4', (3,))".into()),
        ] {
            assert_eq!(canon(t), want, "{t}");
            assert_eq!(canon(&want), want, "canonical text is a fixed point");
        }
    }

    #[test]
    fn nonsense_is_refused_with_its_place() {
        for (t, why) in [
            ("", "expected a type string"),
            ("'<f8", "closing quote"),
            ("'<f8' x", "text after"),
            ("'O'", "Python objects"),
            ("'|O8'", "Python objects"),
            ("'<i3'", "no such size"),
            ("'<f'", "expected a number"),
            ("'<M8[xs]'", "unknown datetime unit"),
            ("'<M8[0us]'", "multiplier of 0"),
            ("'<f8[us]'", "unexpected text"),
            ("'<T'", "not a kind"),
            ("[]", "without fields"),
            ("[('a', '<i4'), ('a', '<f4')]", "used twice"),
            ("[(('a', 'b'), '<i4'), ('a', '<f4')]", "used twice"),
            ("[('', '<i4')]", "only a gap"),
            ("[('a', '<i4', (0,))]", "dimension of 0"),
            ("[('a', '<i4', ())]", "empty shape"),
            ("[('a\u{1b}', '<i4')]", "control character"),
            ("[('a\\n', '<i4')]", "an escape"),
            ("[('a' '<i4')]", "expected ','"),
            ("[('a', ('<i4', (2,)))]", "expected a type string or a list"),
            ("'|S4294967296'", "too large"),
            ("[('a', '|V4294967295'), ('b', '|u1')]", "4 GiB"),
            ("('|V65536', (65536, 2))", "4 GiB"),
        ] {
            let reason = refused(t);
            assert!(reason.contains(why), "{t}: {reason:?} lacks {why:?}");
        }
        let e = Descr::parse("[('a', '<i4'), ('b', '<q8')]").unwrap_err();
        assert_eq!(e.at, 21);
    }

    /// Hostile inputs stay bounded: a long text, deep nesting, many dimensions.
    #[test]
    fn limits_hold() {
        assert!(refused(&"x".repeat(DESCR_MAX + 1)).contains("more than"));
        let deep = format!("{}'<i4'{}", "[('a', ".repeat(40), ")]".repeat(40));
        assert!(refused(&deep).contains("nested deeper"));
        let ok = format!(
            "{}'<i4'{}",
            "[('a', ".repeat(DEPTH_MAX),
            ")]".repeat(DEPTH_MAX)
        );
        assert_eq!(Descr::parse(&ok).map(|d| d.size()), Ok(4));
        let dims = format!("[('a', '|u1', ({}))]", "1, ".repeat(DIMS_MAX + 1));
        assert!(refused(&dims).contains("dimensions"));
        // Thousands of fields, and a name repeated at the end of them.
        let many: Vec<String> = (0..3000).map(|i| format!("('f{i}', '|u1')")).collect();
        let text = format!("[{}]", many.join(", "));
        assert!(text.len() < DESCR_MAX);
        assert_eq!(Descr::parse(&text).map(|d| d.size()), Ok(3000));
        let again = format!("[{}, ('f7', '<f8')]", many.join(", "));
        assert!(refused(&again).contains("\"f7\" used twice"));
    }

    #[test]
    fn primitives_describe_themselves() {
        for p in Primitive::ALL {
            let d = Descr::primitive(p);
            assert_eq!(d.size(), p.size() as usize);
            assert_eq!(Descr::parse(d.as_str()).as_ref(), Ok(&d), "{p}");
        }
        assert_eq!(
            Descr::primitive(Primitive::F32).as_str(),
            format!("'{NATIVE}f4'")
        );
    }
}
