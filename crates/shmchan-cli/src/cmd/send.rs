//! `shmchan send`: claims the writer end and streams a file (or stdin) into the channel, raw
//! elements read straight into the ring or text numbers parsed; closes the channel at the
//! end, or aborts it with the reason.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::str::FromStr;

use bytemuck::Pod;
use indicatif::ProgressBar;
use shmchan::{Primitive, WriterFront};

use super::stream::{progress, Target};
use crate::cli::{Format, SendArgs};
use crate::fail::Fail;

pub(crate) fn run(a: SendArgs) -> Result<(), Fail> {
    let target = Target::of(&a.s);
    let (ty, schema) = target.resolve()?;
    // Raw descriptors, not Stdin's buffer: the bytes are read straight into the ring.
    let (input, total) = match &a.file {
        Some(p) => {
            let f = File::open(p)
                .map_err(|e| Fail::channel(format!("cannot read {}: {e}", p.display())))?;
            let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            (f, len)
        }
        None => {
            let fd = io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Fail::channel(format!("stdin: {e}")))?;
            (File::from(fd), None)
        }
    };
    let bar = progress(a.s.quiet, total, "send");
    let r = with_type!(ty, send_typed(&target, schema, input, a.s.format, &bar));
    bar.finish_and_clear();
    r
}

/// Claims the writer and streams `input` in; aborts the stream with the reason if that fails.
fn send_typed<T>(
    target: &Target<'_>,
    schema: Option<String>,
    input: File,
    format: Format,
    bar: &ProgressBar,
) -> Result<(), Fail>
where
    T: Pod + FromStr,
{
    let chan = target.open::<T>(schema)?;
    let mut w = chan.writer()?;
    let type_name = Primitive::of::<T>().map_or("element", Primitive::name);
    let streamed = match format {
        Format::Raw => raw_in(&mut w, input, bar, type_name),
        Format::Text => text_in(&mut w, input, bar, type_name),
    };
    // Whatever goes wrong, the reader must learn that the stream is incomplete: abort with
    // the reason (a plain close would look like a complete stream).
    match streamed {
        Ok(()) => {
            w.close();
            Ok(())
        }
        Err(f) => {
            w.abort(&f.msg);
            let msg = if f.msg.starts_with("channel '") {
                f.msg
            } else {
                format!("channel '{}': {}", target.name, f.msg)
            };
            Err(Fail { code: f.code, msg })
        }
    }
}

/// Raw elements, read(2) straight into the ring's slots.
fn raw_in<T: Pod>(
    w: &mut WriterFront<T>,
    mut input: File,
    bar: &ProgressBar,
    type_name: &str,
) -> Result<(), Fail> {
    let size = std::mem::size_of::<T>();
    // Up to 1 MiB per read, and at most a quarter of the ring so the reader can
    // drain one part while we fill another.
    let chunk = ((1 << 20) / size).min(w.capacity() / 4).max(1);
    loop {
        let mut slots = w.blocking_reserve(chunk)?;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut slots);
        let (filled, end) = read_some(&mut input, bytes, size);
        // Whole elements read so far are delivered even if the input then failed.
        let whole = filled / size;
        slots.commit(whole);
        bar.inc((whole * size) as u64);
        if end? {
            if filled % size != 0 {
                return Err(Fail::channel(format!(
                    "the input ends with {} bytes, not a whole {type_name} ({size} bytes)",
                    filled % size
                )));
            }
            return Ok(());
        }
    }
}

/// Reads into `bytes` until a read ends on an element boundary (of `size` bytes), the input
/// ends or fails; returns the bytes filled and whether the input ended.
fn read_some(input: &mut File, bytes: &mut [u8], size: usize) -> (usize, Result<bool, Fail>) {
    let mut filled = 0;
    // read(2) straight into the ring; publish after every read that ends on an
    // element boundary, so a slow producer's data flows at once.
    loop {
        match input.read(&mut bytes[filled..]) {
            Ok(0) => return (filled, Ok(true)),
            Ok(n) => {
                filled += n;
                if filled % size == 0 {
                    return (filled, Ok(false));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return (
                    filled,
                    Err(Fail::channel(format!("reading the input: {e}"))),
                )
            }
        }
    }
}

/// Text: one number per whitespace-separated token, sent in batches and at each line's end.
fn text_in<T: Pod + FromStr>(
    w: &mut WriterFront<T>,
    input: File,
    bar: &ProgressBar,
    type_name: &str,
) -> Result<(), Fail> {
    let mut batch: Vec<T> = Vec::with_capacity(4096);
    let mut reader = BufReader::new(input);
    let mut line = String::new();
    let (mut line_no, mut token_no) = (0u64, 0u64);
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(n) => bar.inc(n as u64),
            Err(e) => {
                w.blocking_put(&batch)?;
                return Err(Fail::channel(format!("reading the input: {e}")));
            }
        }
        line_no += 1;
        for tok in line.split_whitespace() {
            token_no += 1;
            match tok.parse::<T>() {
                Ok(v) => batch.push(v),
                Err(_) => {
                    w.blocking_put(&batch)?;
                    return Err(Fail::channel(format!(
                        "token {token_no} (line {line_no}) {tok:?} is not a valid {type_name}"
                    )));
                }
            }
            if batch.len() == batch.capacity() {
                w.blocking_put(&batch)?;
                batch.clear();
            }
        }
        // A line is a natural unit for a live text stream: send what it held.
        if !batch.is_empty() && reader.buffer().is_empty() {
            w.blocking_put(&batch)?;
            batch.clear();
        }
    }
    w.blocking_put(&batch)?;
    Ok(())
}
