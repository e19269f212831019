//! The parser of `send --format text`: numbers separated by whitespace. Pure (no I/O, no
//! channel), so that `fuzz/fuzz_targets/text.rs` can include this very file and fuzz it.
//!
//! The input comes in pieces of any length, cut anywhere (inside a token, inside a UTF-8
//! character), and is parsed as it comes: between pieces the parser keeps at most the
//! beginning of one token ([`MAX_TOKEN`] bytes) and of one character, so a line of any
//! length (or an input without a newline) takes no more memory than a short one. A token
//! longer than [`MAX_TOKEN`] bytes is refused as soon as it is that long.
//!
//! Floats are range-checked like integers: a finite decimal that would be read as infinity
//! (`1e400` as f64, `3.4e39` as f32), or a nonzero one that would be read as 0 (`1e-400`),
//! is refused. `inf`, `infinity` and `nan` (any case, with a sign or not) are read as
//! written.

use std::fmt;

/// The longest token read, in bytes. No number of any element type needs more: the longest
/// decimal `printf '%f'` writes for an f64 has 317 bytes.
pub(crate) const MAX_TOKEN: usize = 1024;

/// Characters of a refused token that its error message shows (then `…` if there are more).
const SHOWN: usize = 40;

/// An element type that text is read into: its name, and how a token becomes one.
pub(crate) trait Number: Sized {
    /// The type's name in messages (`u8`, `f64`).
    const NAME: &'static str;
    /// The number a whole token (no whitespace) stands for.
    fn read(token: &str) -> Result<Self, Refusal>;
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Number for $t {
            const NAME: &'static str = stringify!($t);
            fn read(token: &str) -> Result<Self, Refusal> {
                // Out of the type's range is an error of `parse` too.
                token.parse().map_err(|_| Refusal::Invalid)
            }
        }
    )*};
}
integers!(u8, i8, u16, i16, u32, i32, u64, i64);

macro_rules! floats {
    ($($t:ty),*) => {$(
        impl Number for $t {
            const NAME: &'static str = stringify!($t);
            fn read(token: &str) -> Result<Self, Refusal> {
                let v: $t = token.parse().map_err(|_| Refusal::Invalid)?;
                if v.is_infinite() && !spelled_out(token) {
                    return Err(Refusal::Overflow);
                }
                if v == 0.0 && nonzero_digits(token) {
                    return Err(Refusal::Underflow);
                }
                Ok(v)
            }
        }
    )*};
}
floats!(f32, f64);

/// A token that parsed as a float is `inf`, `infinity` or `nan` (after a sign), not a
/// decimal.
fn spelled_out(token: &str) -> bool {
    token
        .trim_start_matches(['+', '-'])
        .starts_with(|c: char| c.is_ascii_alphabetic())
}

/// A decimal token's digits before its exponent are not all 0: the number is not 0.
fn nonzero_digits(token: &str) -> bool {
    token
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)))
}

/// Why a token is not a number of the element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a number of the type (an integer out of the type's range included).
    Invalid,
    /// A finite decimal too large for the type: it would be read as infinity.
    Overflow,
    /// A nonzero decimal too small for the type: it would be read as 0.
    Underflow,
    /// Longer than [`MAX_TOKEN`] bytes (refused at that length, the rest unread).
    TooLong,
}

/// Why the input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TextError {
    /// The input is not UTF-8: its first bad byte, that byte's offset in the whole input, and
    /// its line's number (from 1).
    NotUtf8 { byte: u8, offset: u64, line: u64 },
    /// A token is not a number of the element type `ty`: its number in the input (from 1),
    /// its line, its first [`SHOWN`] characters (`cut` if it has more), and why.
    BadToken {
        token: u64,
        line: u64,
        text: String,
        cut: bool,
        ty: &'static str,
        why: Refusal,
    },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::NotUtf8 { byte, offset, line } => write!(
                f,
                "the input is not UTF-8 text: byte 0x{byte:02x} at offset {offset} (line {line})"
            ),
            // The token as it is, between quotes: what prints it escapes it (once).
            TextError::BadToken {
                token,
                line,
                text,
                cut,
                ty,
                why,
            } => {
                let more = if *cut { "…" } else { "" };
                write!(
                    f,
                    "token {token} (line {line}) \"{text}{more}\" is not a valid {ty}"
                )?;
                match why {
                    Refusal::Invalid => Ok(()),
                    Refusal::Overflow => f.write_str(
                        ": too large, it would be infinity (inf, -inf and nan are read as written)",
                    ),
                    Refusal::Underflow => f.write_str(": too small, it would be 0"),
                    Refusal::TooLong => {
                        write!(
                            f,
                            ": longer than {MAX_TOKEN} bytes, the most a token may have"
                        )
                    }
                }
            }
        }
    }
}

/// Where the parser is in the input, and what it keeps between pieces.
#[derive(Debug, Default)]
pub(crate) struct TextParser {
    /// Newlines so far: the current line is this + 1.
    newlines: u64,
    /// Tokens begun so far.
    tokens: u64,
    /// The offset of the next byte to parse (of `part`'s first byte, if it holds any).
    offset: u64,
    /// The beginning of the token that the last piece ended in (empty between tokens); at
    /// most [`MAX_TOKEN`] bytes.
    token: String,
    /// The beginning of the character that the last piece ended in, and its length.
    part: [u8; 4],
    part_len: usize,
}

impl TextParser {
    /// Parses the next piece of the input, handing each number it completes to `push`, in
    /// order. A token or a character that `bytes` ends in is completed by the next piece (or
    /// by [`end`](Self::end)). On an error, the numbers before the bad spot were handed
    /// over, and the parser is not to be used again.
    pub(crate) fn feed<T: Number>(
        &mut self,
        mut bytes: &[u8],
        mut push: impl FnMut(T),
    ) -> Result<(), TextError> {
        // First the character cut at the end of the last piece.
        while self.part_len > 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return Ok(());
            };
            bytes = rest;
            if self.part_len == self.part.len() {
                return Err(self.not_utf8(self.part[0]));
            }
            self.part[self.part_len] = b;
            self.part_len += 1;
            let part = self.part;
            match std::str::from_utf8(&part[..self.part_len]) {
                Ok(c) => {
                    self.part_len = 0;
                    self.text(c, &mut push)?;
                }
                Err(e) if e.error_len().is_some() => return Err(self.not_utf8(part[0])),
                Err(_) => {} // still cut short
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => self.text(s, &mut push),
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                self.text(std::str::from_utf8(good).unwrap_or_default(), &mut push)?;
                match (e.error_len(), rest.first()) {
                    // Cut short by the end of the piece: completed by the next one.
                    (None, Some(_)) if rest.len() < self.part.len() => {
                        self.part[..rest.len()].copy_from_slice(rest);
                        self.part_len = rest.len();
                        Ok(())
                    }
                    (_, Some(&b)) => Err(self.not_utf8(b)),
                    (_, None) => Ok(()),
                }
            }
        }
    }

    /// The input ended: hands the token it ended in (if any) to `push`.
    pub(crate) fn end<T: Number>(&mut self, mut push: impl FnMut(T)) -> Result<(), TextError> {
        if self.part_len > 0 {
            return Err(self.not_utf8(self.part[0]));
        }
        if self.token.is_empty() {
            return Ok(());
        }
        let r = T::read(&self.token);
        match r {
            Ok(v) => {
                push(v);
                self.token.clear();
                Ok(())
            }
            Err(why) => Err(self.bad::<T>(&self.token, "", why)),
        }
    }

    /// Parses valid text `s`, the input's next bytes.
    fn text<T: Number>(&mut self, s: &str, push: &mut impl FnMut(T)) -> Result<(), TextError> {
        let mut rest = s;
        loop {
            if self.token.is_empty() {
                let ws = rest.len() - rest.trim_start().len();
                let (space, after) = rest.split_at(ws);
                self.newlines += space.bytes().filter(|&b| b == b'\n').count() as u64;
                self.offset += ws as u64;
                rest = after;
                if rest.is_empty() {
                    return Ok(());
                }
                self.tokens += 1;
            }
            // The token (or the rest of the one the last piece ended in), up to whitespace
            // or the end of the piece.
            let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (tail, after) = rest.split_at(len);
            if self.token.len() + tail.len() > MAX_TOKEN {
                return Err(self.bad::<T>(&self.token, tail, Refusal::TooLong));
            }
            self.offset += len as u64;
            if after.is_empty() {
                // It may go on in the next piece.
                self.token.push_str(tail);
                return Ok(());
            }
            let r = if self.token.is_empty() {
                T::read(tail)
            } else {
                self.token.push_str(tail);
                T::read(&self.token)
            };
            match r {
                Ok(v) => push(v),
                Err(why) if self.token.is_empty() => return Err(self.bad::<T>(tail, "", why)),
                Err(why) => return Err(self.bad::<T>(&self.token, "", why)),
            }
            self.token.clear();
            rest = after;
        }
    }

    /// The current token, made of `head` then `tail`, is refused.
    fn bad<T: Number>(&self, head: &str, tail: &str, why: Refusal) -> TextError {
        let mut chars = head.chars().chain(tail.chars());
        let text: String = chars.by_ref().take(SHOWN).collect();
        TextError::BadToken {
            token: self.tokens,
            line: self.newlines + 1,
            text,
            cut: chars.next().is_some(),
            ty: T::NAME,
            why,
        }
    }

    /// Byte `byte`, at the current offset, is not UTF-8.
    fn not_utf8(&self, byte: u8) -> TextError {
        TextError::NotUtf8 {
            byte,
            offset: self.offset,
            line: self.newlines + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `piece` bytes, then ends it.
    fn parse<T: Number>(input: &[u8], piece: usize) -> (Vec<T>, Option<TextError>) {
        let mut p = TextParser::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            if let Err(e) = p.feed(chunk, |v| out.push(v)) {
                return (out, Some(e));
            }
        }
        let e = p.end(|v| out.push(v)).err();
        (out, e)
    }

    fn bad(token: u64, line: u64, text: &str, ty: &'static str, why: Refusal) -> TextError {
        TextError::BadToken {
            token,
            line,
            text: text.into(),
            cut: false,
            ty,
            why,
        }
    }

    #[test]
    fn numbers_lines_and_errors() {
        assert_eq!(
            parse::<i32>(b"1 2\t3\n  -4\n5 x 6\n", 100),
            (
                vec![1, 2, 3, -4, 5],
                Some(bad(6, 3, "x", "i32", Refusal::Invalid))
            )
        );
        assert_eq!(
            parse::<i32>(b"7\n8 \xff\n", 100),
            (
                vec![7, 8],
                Some(TextError::NotUtf8 {
                    byte: 0xff,
                    offset: 4,
                    line: 2
                })
            )
        );
        assert_eq!(
            parse::<u8>(b"1 256", 100).1,
            Some(bad(2, 1, "256", "u8", Refusal::Invalid))
        );
        // The last token needs no whitespace after it.
        assert_eq!(parse::<u8>(b"9 10", 100), (vec![9, 10], None));
    }

    /// Wherever the pieces are cut (inside tokens, inside characters), the result is the same.
    #[test]
    fn pieces_cut_anywhere_parse_alike() {
        let inputs: [&[u8]; 5] = [
            "1 22 333\n\u{3000}4444\u{a0}5 -6\n".as_bytes(),
            "1 2 é 3".as_bytes(),
            b"1 2\n3 \xe2\x82 4",
            b"1 2 \xf0\x9f\x98",
            b"12 3\xc3",
        ];
        for input in inputs {
            let whole = parse::<i64>(input, input.len());
            for piece in 1..input.len() {
                assert_eq!(parse::<i64>(input, piece), whole, "{input:?} by {piece}");
            }
        }
        assert_eq!(
            parse::<i64>(inputs[0], 1),
            (vec![1, 22, 333, 4444, 5, -6], None)
        );
        assert_eq!(
            parse::<i64>(inputs[1], 3),
            (vec![1, 2], Some(bad(3, 1, "é", "i64", Refusal::Invalid)))
        );
        // A character cut short by an invalid byte, or by the end of the input.
        let not_utf8 = |byte, offset, line| Some(TextError::NotUtf8 { byte, offset, line });
        assert_eq!(parse::<i64>(inputs[2], 1).1, not_utf8(0xe2, 6, 2));
        assert_eq!(
            parse::<i64>(inputs[3], 2),
            (vec![1, 2], not_utf8(0xf0, 4, 1))
        );
        assert_eq!(parse::<i64>(inputs[4], 1), (vec![12], not_utf8(0xc3, 4, 1)));
    }

    /// A token longer than MAX_TOKEN is refused once it is, whatever follows: the parser
    /// keeps no more than MAX_TOKEN bytes of it, and the message shows its beginning.
    #[test]
    fn a_long_token_is_refused_at_the_bound() {
        let mut p = TextParser::default();
        let mut out = Vec::<u64>::new();
        p.feed(b"5 ", |v| out.push(v)).unwrap();
        let digits = vec![b'7'; 100];
        let mut fed = 0;
        let e = loop {
            match p.feed(&digits, |v| out.push(v)) {
                Ok(()) => fed += digits.len(),
                Err(e) => break e,
            }
            assert!(fed <= MAX_TOKEN, "still reading after {fed} bytes");
            assert!(p.token.len() <= MAX_TOKEN);
        };
        assert_eq!(
            fed,
            MAX_TOKEN / 100 * 100,
            "refused in the piece that went beyond"
        );
        assert_eq!(out, [5]);
        let shown = "7".repeat(SHOWN);
        assert_eq!(
            e,
            TextError::BadToken {
                token: 2,
                line: 1,
                text: shown.clone(),
                cut: true,
                ty: "u64",
                why: Refusal::TooLong
            }
        );
        assert_eq!(
            e.to_string(),
            format!(
                "token 2 (line 1) \"{shown}…\" is not a valid u64: longer than 1024 bytes, \
                 the most a token may have"
            )
        );
        // In one piece too; a token of exactly MAX_TOKEN bytes is read.
        let long = "1".repeat(MAX_TOKEN + 1);
        let (_, e) = parse::<f64>(long.as_bytes(), long.len());
        assert!(matches!(
            e,
            Some(TextError::BadToken {
                why: Refusal::TooLong,
                ..
            })
        ));
        let exact = format!("{}7", "0".repeat(MAX_TOKEN - 1));
        assert_eq!(parse::<f64>(exact.as_bytes(), 7), (vec![7.0], None));
        // A short bad token is shown whole; a longer one, its first characters.
        let e = parse::<u8>(format!("{} ", "x".repeat(SHOWN)).as_bytes(), 9).1;
        assert!(matches!(e, Some(TextError::BadToken { cut: false, .. })));
        let e = parse::<u8>("é".repeat(SHOWN + 1).as_bytes(), 9).1.unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "token 1 (line 1) \"{}…\" is not a valid u8",
                "é".repeat(SHOWN)
            )
        );
    }

    #[test]
    fn floats_out_of_range_are_refused() {
        let refusal = |t: &str| parse::<f32>(t.as_bytes(), 100).1;
        let bad32 = |t: &str, why| Some(bad(1, 1, t, "f32", why));
        assert_eq!(refusal("3.4e39"), bad32("3.4e39", Refusal::Overflow));
        assert_eq!(refusal("-1e39"), bad32("-1e39", Refusal::Overflow));
        assert_eq!(refusal("1e-46"), bad32("1e-46", Refusal::Underflow));
        assert_eq!(refusal("-0.5e-50"), bad32("-0.5e-50", Refusal::Underflow));
        let bad64 = |t: &str, why| Some(bad(1, 1, t, "f64", why));
        assert_eq!(
            parse::<f64>(b"1e400", 9).1,
            bad64("1e400", Refusal::Overflow)
        );
        assert_eq!(
            parse::<f64>(b"1e-400", 9).1,
            bad64("1e-400", Refusal::Underflow)
        );
        assert_eq!(
            bad64("1e400", Refusal::Overflow).unwrap().to_string(),
            "token 1 (line 1) \"1e400\" is not a valid f64: too large, it would be infinity \
             (inf, -inf and nan are read as written)"
        );
        // In range: the extremes, subnormals, zeros of any spelling.
        let (v, e) = parse::<f32>(b"3.4e38 -3.4e38 1e-45 0 -0 0.000e-999 0e999", 100);
        assert_eq!(e, None);
        assert_eq!(v[..3], [3.4e38, -3.4e38, f32::from_bits(1)]);
        assert!(v[3..].iter().all(|z| *z == 0.0));
        assert!(v[4].is_sign_negative());
        let (v, e) = parse::<f64>(b"1.7976931348623157e308 5e-324", 100);
        assert_eq!((v, e), (vec![f64::MAX, f64::from_bits(1)], None));
        // Spelled out: read as written.
        let (v, e) = parse::<f64>(b"inf -inf +Infinity NaN -nan", 100);
        assert_eq!(e, None);
        assert_eq!(v[..3], [f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY]);
        assert!(v[3].is_nan() && v[4].is_nan());
        // Integers: out of range is refused as before.
        assert_eq!(
            parse::<i8>(b"-129", 9).1,
            Some(bad(1, 1, "-129", "i8", Refusal::Invalid))
        );
    }
}
