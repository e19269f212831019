//! The CLI's text parser (`send --format text`), on any bytes: `crates/shmchan-cli/src/text.rs`
//! is included as it is built. Every input must parse or be refused with an error that
//! points inside the input; never a panic.
//!
//! `cargo +nightly fuzz run text fuzz/corpus/text -- -max_total_time=60`

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/shmchan-cli/src/text.rs"]
#[allow(dead_code)]
mod text;

use text::{TextError, TextParser};

/// Feeds `data` line by line to a parser for `T`; checks what an error says.
fn run<T: std::str::FromStr>(data: &[u8]) {
    let mut p = TextParser::default();
    let mut out: Vec<T> = Vec::new();
    let (mut lines, mut start) = (0u64, 0usize);
    for line in data.split_inclusive(|b| *b == b'\n') {
        lines += 1;
        match p.line(line, |v: T| out.push(v)) {
            Ok(()) => {}
            Err(TextError::NotUtf8 { byte, offset, line: l }) => {
                let at = usize::try_from(offset).expect("offset fits");
                assert!(at >= start && at < start + line.len(), "offset outside the line");
                assert_eq!(data[at], byte, "the byte named is the one at its offset");
                assert_eq!(l, lines);
                return;
            }
            Err(TextError::BadToken { line: l, text, .. }) => {
                assert_eq!(l, lines);
                assert!(!text.is_empty() && !text.contains(char::is_whitespace));
                return;
            }
        }
        start += line.len();
    }
    // Everything parsed: one value per whitespace-separated token.
    let tokens = std::str::from_utf8(data)
        .expect("parsed input is UTF-8")
        .split_whitespace()
        .count();
    assert_eq!(out.len(), tokens);
}

fuzz_target!(|data: &[u8]| {
    run::<u8>(data);
    run::<i64>(data);
    run::<f32>(data);
    run::<f64>(data);
});
