//! How `recv` writes items out: in pieces of at most [`PIECE`] bytes, one `write(2)` at a
//! time, consuming from the channel exactly the whole elements that each write took.
//!
//! A write that ends inside an element leaves that element in the channel; the next write
//! finishes its bytes, then it is consumed. So at any instant the output holds the consumed
//! items, plus at most one piece that was written but not yet consumed: what a kill at that
//! instant leaves for the next reader too (`recv --resume` cuts it off a regular file).

use std::collections::VecDeque;
use std::fmt::Display;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};

use bytemuck::Pod;
use indicatif::ProgressBar;
use shmchan::{Error, ReaderFront};

use crate::fail::Fail;

/// The most bytes one write takes out of the ring.
pub(crate) const PIECE: usize = 64 << 10;

/// How a drain ended, if not by a failure of the output.
pub(crate) type Ended = Result<(), Error>;

/// One write(2) of `bytes` (retried on EINTR); how many it took. A broken pipe is a quiet
/// end; writing nothing is a failure.
fn write_once(out: &mut File, bytes: &[u8]) -> Result<usize, Fail> {
    loop {
        match out.write(bytes) {
            Ok(0) => return Err(Fail::channel("writing the output: it took no bytes")),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(Fail::quiet()),
            Err(e) => return Err(Fail::channel(format!("writing the output: {e}"))),
        }
    }
}

/// Raw elements, written straight out of the ring, until `left` items are out or the
/// channel ends.
pub(crate) fn raw<T: Pod>(
    r: &mut ReaderFront<T>,
    out: &mut File,
    left: &mut u64,
    bar: &ProgressBar,
) -> Result<Ended, Fail> {
    let size = std::mem::size_of::<T>();
    let piece = (PIECE / size).max(1);
    // Bytes of the first element in the ring that are already out.
    let mut partial = 0;
    while *left > 0 {
        let view = match r.blocking_peek_some() {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let k = (view.len() as u64).min(*left).min(piece as u64) as usize;
        let bytes: &[u8] = bytemuck::cast_slice(&view[..k]);
        let n = write_once(out, &bytes[partial..])?;
        let done = partial + n;
        partial = done % size;
        view.consume(done / size);
        *left -= (done / size) as u64;
        bar.inc(n as u64);
    }
    Ok(Ok(()))
}

/// Text, one number per line: a piece of lines is formatted from the items in the ring,
/// and each item is consumed once its whole line is out.
pub(crate) fn text<T: Pod + Display>(
    r: &mut ReaderFront<T>,
    out: &mut File,
    left: &mut u64,
    bar: &ProgressBar,
) -> Result<Ended, Fail> {
    let mut buf = String::new();
    // Where each formatted item's line ends in `buf`, and how much of `buf` is out.
    let mut ends = VecDeque::new();
    let mut off = 0;
    loop {
        if buf.is_empty() {
            if *left == 0 {
                return Ok(Ok(()));
            }
            let view = match r.blocking_peek_some() {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            let k = (view.len() as u64).min(*left) as usize;
            for v in &view[..k] {
                let _ = writeln!(buf, "{v}");
                ends.push_back(buf.len());
                if buf.len() >= PIECE {
                    break;
                }
            }
            // Not consumed yet: each item goes once its line is out.
        }
        let n = write_once(out, &buf.as_bytes()[off..])?;
        off += n;
        bar.inc(n as u64);
        let mut lines = 0;
        while ends.front().is_some_and(|&e| e <= off) {
            ends.pop_front();
            lines += 1;
        }
        if lines > 0 {
            match r.try_peek_some() {
                Ok(v) => v.consume(lines),
                Err(e) => return Ok(Err(e)),
            };
            *left -= lines as u64;
        }
        if off == buf.len() {
            buf.clear();
            off = 0;
        }
    }
}
