//! The parser of `send --format text`: numbers separated by whitespace, read a line at a
//! time. Pure (no I/O, no channel), so that `fuzz/fuzz_targets/text.rs` can include this very
//! file and fuzz it.

use std::fmt;
use std::str::FromStr;

/// Why a line of text input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TextError {
    /// The line is not UTF-8: its first bad byte, that byte's offset in the whole input, and
    /// the line's number (from 1).
    NotUtf8 { byte: u8, offset: u64, line: u64 },
    /// A token is not a number of the element type: its number in the input (from 1), its
    /// line, and its text.
    BadToken { token: u64, line: u64, text: String },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::NotUtf8 { byte, offset, line } => write!(
                f,
                "the input is not UTF-8 text: byte 0x{byte:02x} at offset {offset} (line {line})"
            ),
            TextError::BadToken { token, line, text } => {
                write!(f, "token {token} (line {line}) {text:?}")
            }
        }
    }
}

/// Where the parser is in the input: lines, tokens and bytes so far.
#[derive(Debug, Default)]
pub(crate) struct TextParser {
    line: u64,
    token: u64,
    offset: u64,
}

impl TextParser {
    /// Parses one line of input (`bytes`, with its newline if it has one), handing each of
    /// its numbers to `push` in order. On a bad token, the numbers before it on the line were
    /// handed over.
    pub(crate) fn line<T: FromStr>(
        &mut self,
        bytes: &[u8],
        mut push: impl FnMut(T),
    ) -> Result<(), TextError> {
        self.line += 1;
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                let at = e.valid_up_to();
                return Err(TextError::NotUtf8 {
                    byte: bytes[at],
                    offset: self.offset + at as u64,
                    line: self.line,
                });
            }
        };
        self.offset += bytes.len() as u64;
        for tok in text.split_whitespace() {
            self.token += 1;
            match tok.parse::<T>() {
                Ok(v) => push(v),
                Err(_) => {
                    return Err(TextError::BadToken {
                        token: self.token,
                        line: self.line,
                        text: tok.to_string(),
                    })
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lines_and_errors() {
        let mut p = TextParser::default();
        let mut out = Vec::<i32>::new();
        p.line(b"1 2\t3\n", |v| out.push(v)).unwrap();
        p.line(b"  -4\n", |v| out.push(v)).unwrap();
        assert_eq!(out, [1, 2, 3, -4]);
        let e = p.line(b"5 x 6\n", |v| out.push(v)).unwrap_err();
        assert_eq!(
            e,
            TextError::BadToken {
                token: 6,
                line: 3,
                text: "x".into()
            }
        );
        assert_eq!(out.last(), Some(&5));
        let mut p = TextParser::default();
        p.line(b"7\n", |v| out.push(v)).unwrap();
        let e = p.line(b"8 \xff\n", |v| out.push(v)).unwrap_err();
        assert_eq!(
            e,
            TextError::NotUtf8 {
                byte: 0xff,
                offset: 4,
                line: 2
            }
        );
    }
}
