//! The CLI's text parser (`send --format text`), on any bytes: `crates/shmchan-cli/src/text.rs`
//! is included as it is built. Every input must parse or be refused with an error that
//! points inside the input; never a panic. The input is fed whole and again in pieces (of a
//! length the first byte picks), which must come out alike.
//!
//! `cargo +nightly fuzz run text fuzz/corpus/text -- -max_total_time=60`

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/shmchan-cli/src/text.rs"]
#[allow(dead_code)]
mod text;

use text::{Number, TextError, TextParser, MAX_TOKEN};

/// Feeds `data` to a parser for `T` in pieces of `piece` bytes, then ends it: the numbers
/// (as text, so that NaNs compare) and the error.
fn parse<T: Number + std::fmt::Debug>(
    data: &[u8],
    piece: usize,
) -> (Vec<String>, Option<TextError>) {
    let mut p = TextParser::default();
    let mut out = Vec::new();
    for chunk in data.chunks(piece.max(1)) {
        if let Err(e) = p.feed(chunk, |v: T| out.push(format!("{v:?}"))) {
            return (out, Some(e));
        }
    }
    let e = p.end(|v: T| out.push(format!("{v:?}"))).err();
    (out, e)
}

/// Checks what parsing `data` as `T` says.
fn run<T: Number + std::fmt::Debug>(data: &[u8], piece: usize) {
    let (out, err) = parse::<T>(data, data.len());
    let split = parse::<T>(data, piece);
    assert_eq!((&out, &err), (&split.0, &split.1), "whole, and in pieces of {piece}");
    let lines = data.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    match err {
        None => {
            // Everything parsed: one value per whitespace-separated token.
            let tokens = std::str::from_utf8(data)
                .expect("parsed input is UTF-8")
                .split_whitespace()
                .count();
            assert_eq!(out.len(), tokens);
        }
        Some(TextError::NotUtf8 { byte, offset, line }) => {
            let at = usize::try_from(offset).expect("offset fits");
            assert_eq!(data[at], byte, "the byte named is the one at its offset");
            assert!(std::str::from_utf8(&data[..at]).is_ok(), "the first bad byte");
            let before = data[..at].iter().filter(|b| **b == b'\n').count() as u64;
            assert_eq!(line, before + 1);
        }
        Some(TextError::BadToken { line, text, .. }) => {
            assert!(line <= lines);
            assert!(!text.is_empty() && !text.contains(char::is_whitespace));
            assert!(text.len() <= MAX_TOKEN);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let piece = data.first().map_or(1, |b| usize::from(*b % 16) + 1);
    run::<u8>(data, piece);
    run::<i64>(data, piece);
    run::<f32>(data, piece);
    run::<f64>(data, piece);
});
