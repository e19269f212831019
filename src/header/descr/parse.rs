//! The parser of element descriptions: bounded, allocating in proportion to its input.

use super::*;

pub(super) struct Parser<'a> {
    pub(super) s: &'a str,
    pub(super) pos: usize,
}

impl Parser<'_> {
    pub(super) fn err(&self, reason: impl Into<String>) -> DescrError {
        DescrError {
            at: self.pos,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(super) fn ws(&mut self) {
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
    pub(super) fn node(&mut self, depth: usize, top: bool) -> Result<Node, DescrError> {
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
