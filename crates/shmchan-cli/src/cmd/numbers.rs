//! Where text meets elements: the one place that knows the Rust type of each
//! [`Primitive`]. `send --format text` parses numbers into elements' bytes, `recv --format
//! text` prints elements' bytes as numbers; everything else moves elements as bytes
//! ([`RawChannel`](shmchan::RawChannel)).

use std::fmt::{Display, Write as _};

use bytemuck::Pod;
use shmchan::Primitive;

use crate::text::{Number, TextError, TextParser};

/// Parses the next piece of input (as [`TextParser::feed`]), or ends it (`None`, as
/// [`TextParser::end`]), appending each number's bytes to the buffer.
type Parse = fn(&mut TextParser, Option<&[u8]>, &mut Vec<u8>) -> Result<(), TextError>;

/// Appends one element (its bytes) to the string as a line.
type Print = fn(&[u8], &mut String);

/// How the elements of one primitive are read from text and written as text.
#[derive(Clone, Copy)]
pub(crate) struct Numbers {
    /// The primitive.
    pub(crate) ty: Primitive,
    pub(crate) parse: Parse,
    pub(crate) print: Print,
}

impl Numbers {
    pub(crate) fn of(ty: Primitive) -> Numbers {
        match ty {
            Primitive::U8 => typed::<u8>(ty),
            Primitive::I8 => typed::<i8>(ty),
            Primitive::U16 => typed::<u16>(ty),
            Primitive::I16 => typed::<i16>(ty),
            Primitive::U32 => typed::<u32>(ty),
            Primitive::I32 => typed::<i32>(ty),
            Primitive::U64 => typed::<u64>(ty),
            Primitive::I64 => typed::<i64>(ty),
            Primitive::F32 => typed::<f32>(ty),
            Primitive::F64 => typed::<f64>(ty),
        }
    }

    /// Bytes per element.
    pub(crate) fn size(&self) -> usize {
        self.ty.size() as usize
    }
}

/// The parse and print functions of `T`, the Rust type of `ty`.
fn typed<T: Pod + Number + Display>(ty: Primitive) -> Numbers {
    Numbers {
        ty,
        parse: parse::<T>,
        print: print::<T>,
    }
}

fn parse<T: Pod + Number>(
    p: &mut TextParser,
    piece: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<(), TextError> {
    let push = |v: T| out.extend_from_slice(bytemuck::bytes_of(&v));
    match piece {
        Some(bytes) => p.feed(bytes, push),
        None => p.end(push),
    }
}

fn print<T: Pod + Display>(bytes: &[u8], buf: &mut String) {
    // Writing to a String cannot fail.
    let _ = writeln!(buf, "{}", bytemuck::pod_read_unaligned::<T>(bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_primitive_parses_and_prints_its_own_bytes() {
        for ty in [
            Primitive::U8,
            Primitive::I16,
            Primitive::U64,
            Primitive::F32,
        ] {
            let n = Numbers::of(ty);
            let mut bytes = Vec::new();
            let mut p = TextParser::default();
            (n.parse)(&mut p, Some(b"1 2 "), &mut bytes).unwrap();
            (n.parse)(&mut p, Some(b"3"), &mut bytes).unwrap();
            assert_eq!(bytes.len(), 2 * ty.size() as usize, "{ty}: 3 may go on");
            (n.parse)(&mut p, None, &mut bytes).unwrap();
            assert_eq!(bytes.len(), 3 * ty.size() as usize, "{ty}");
            let mut text = String::new();
            for e in bytes.chunks_exact(ty.size() as usize) {
                (n.print)(e, &mut text);
            }
            assert_eq!(text, "1\n2\n3\n", "{ty}");
        }
        let e = (Numbers::of(Primitive::U8).parse)(
            &mut TextParser::default(),
            Some(b"256 "),
            &mut vec![],
        );
        assert!(matches!(e, Err(TextError::BadToken { ty: "u8", .. })));
    }
}
