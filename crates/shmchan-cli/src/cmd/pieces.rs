//! How `recv` writes items out: in pieces of at most [`PIECE`] bytes, one `write(2)` at a
//! time, consuming from the channel exactly the whole elements that each write took.
//!
//! A write that ends inside an element leaves that element in the channel; the next write
//! finishes its bytes, then it is consumed. So at any instant the output holds the consumed
//! items, plus at most one piece that was written but not yet consumed: what a kill at that
//! instant leaves for the next reader too (`recv --resume` cuts it off a regular file).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};

use indicatif::ProgressBar;
use shmchan::{Error, RawReader};

use super::numbers::Numbers;

/// The most bytes one write takes out of the ring.
pub(crate) const PIECE: usize = 64 << 10;

/// Why a drain stopped before its count of items was out.
pub(crate) enum Stop {
    /// The channel ended the stream (or failed): its error.
    Channel(Error),
    /// The reading side of the output went away (a broken pipe).
    Gone,
    /// Writing the output failed.
    Write(io::Error),
}

/// One write(2) of `bytes` (retried on EINTR); how many it took. Writing nothing is a
/// failure.
fn write_once(out: &mut File, bytes: &[u8]) -> Result<usize, Stop> {
    loop {
        match out.write(bytes) {
            Ok(0) => {
                return Err(Stop::Write(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "it took no bytes",
                )))
            }
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(Stop::Gone),
            Err(e) => return Err(Stop::Write(e)),
        }
    }
}

/// Raw elements of `size` bytes, written straight out of the ring, until `left` items are
/// out or the channel ends.
pub(crate) fn raw(
    r: &mut RawReader,
    size: usize,
    out: &mut File,
    left: &mut u64,
    bar: &ProgressBar,
) -> Result<(), Stop> {
    let piece = (PIECE / size).max(1);
    // Bytes of the first element in the ring that are already out.
    let mut partial = 0;
    while *left > 0 {
        let view = r.blocking_peek_some().map_err(Stop::Channel)?;
        let k = (view.elements() as u64).min(*left).min(piece as u64) as usize;
        let n = write_once(out, &view[partial..k * size])?;
        let done = partial + n;
        partial = done % size;
        view.consume(done / size);
        *left -= (done / size) as u64;
        bar.inc(n as u64);
    }
    Ok(())
}

/// Text, one number per line: a piece of lines is formatted from the items in the ring, and
/// each item is consumed once its whole line is out.
pub(crate) fn text(
    r: &mut RawReader,
    numbers: Numbers,
    out: &mut File,
    left: &mut u64,
    bar: &ProgressBar,
) -> Result<(), Stop> {
    let size = numbers.size();
    let mut buf = String::new();
    // Where each formatted item's line ends in `buf`, and how much of `buf` is out.
    let mut ends = VecDeque::new();
    let mut off = 0;
    loop {
        if buf.is_empty() {
            if *left == 0 {
                return Ok(());
            }
            let view = r.blocking_peek_some().map_err(Stop::Channel)?;
            let k = (view.elements() as u64).min(*left) as usize;
            for v in view[..k * size].chunks_exact(size) {
                (numbers.print)(v, &mut buf);
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
            r.try_peek_some().map_err(Stop::Channel)?.consume(lines);
            *left -= lines as u64;
        }
        if off == buf.len() {
            buf.clear();
            off = 0;
        }
    }
}
