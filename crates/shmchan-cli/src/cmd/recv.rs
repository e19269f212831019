//! `shmchan recv`: claims the reader end and writes everything to a file (or stdout), raw
//! elements written straight out of the ring or one number per line, until the writer
//! closes; ends quietly when the reading side of a pipe goes away.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::Path;

use bytemuck::Pod;
use indicatif::ProgressBar;
use shmchan::{GetError, ReaderFront};

use super::stream::{progress, Target};
use crate::cli::{Format, RecvArgs};
use crate::fail::Fail;

pub(crate) fn run(a: RecvArgs) -> Result<(), Fail> {
    let target = Target::of(&a.s);
    let (ty, schema) = target.resolve()?;
    let bar = progress(a.s.quiet, None, "recv");
    let r = with_type!(
        ty,
        recv_typed(
            &target,
            schema,
            a.file.as_deref(),
            a.s.format,
            a.count,
            &bar
        )
    );
    bar.finish_and_clear();
    r
}

/// Output that ends quietly when the reading side of a pipe goes away.
fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<(), Fail> {
    out.write_all(bytes).map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Fail::quiet()
        } else {
            Fail::channel(format!("writing the output: {e}"))
        }
    })
}

/// Flushes formatted output; ends quietly, as [`write_out`], on a broken pipe.
fn flush_out(out: &mut impl Write) -> Result<(), Fail> {
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Fail::quiet()),
        Err(e) => Err(Fail::channel(format!("writing the output: {e}"))),
        Ok(()) => Ok(()),
    }
}

/// Claims the reader and writes everything out until the writer closes (or `count` items).
fn recv_typed<T>(
    target: &Target<'_>,
    schema: Option<String>,
    file: Option<&Path>,
    format: Format,
    count: Option<u64>,
    bar: &ProgressBar,
) -> Result<(), Fail>
where
    T: Pod + Display,
{
    let chan = target.open::<T>(schema)?;
    let mut r = chan.reader()?;
    // Only now that the reader end is ours: a failed claim must not truncate a good file.
    let mut raw = open_output(file)?;
    let mut text = match format {
        Format::Text => Some(BufWriter::with_capacity(
            1 << 16,
            raw.try_clone().map_err(|e| Fail::channel(e.to_string()))?,
        )),
        Format::Raw => None,
    };
    let end = drain(&mut r, &mut raw, &mut text, count, bar)?;
    if let Some(out) = &mut text {
        flush_out(out)?;
    }
    match end {
        Ok(()) | Err(GetError::Closed { .. }) => Ok(()),
        Err(GetError::Aborted { reason, .. }) => Err(Fail::channel(format!(
            "channel '{}': the writer aborted: {reason} (everything it committed was written out)",
            target.name
        ))),
        Err(GetError::PeerGone { .. }) => Err(Fail::channel(format!(
            "channel '{}': the writer's process died (everything it committed was written out)",
            target.name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// FILE, created (truncated), or stdout as a raw descriptor.
fn open_output(file: Option<&Path>) -> Result<File, Fail> {
    Ok(match file {
        Some(p) => File::create(p)
            .map_err(|e| Fail::channel(format!("cannot write {}: {e}", p.display())))?,
        None => File::from(
            io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Fail::channel(format!("stdout: {e}")))?,
        ),
    })
}

/// Writes items out, raw to `raw` or as text lines to `text`, until `count` items are out or
/// the channel ends; returns how it ended (an output failure is the outer error).
fn drain<T: Pod + Display>(
    r: &mut ReaderFront<T>,
    raw: &mut File,
    text: &mut Option<BufWriter<File>>,
    count: Option<u64>,
    bar: &ProgressBar,
) -> Result<Result<(), GetError>, Fail> {
    let size = std::mem::size_of::<T>();
    let mut left = count.unwrap_or(u64::MAX);
    let mut line = String::new();
    let end = loop {
        if left == 0 {
            break Ok(());
        }
        if let Some(out) = text.as_mut() {
            // About to wait: what was formatted so far goes out first (a slow live stream
            // shows up line by line, not in 64 KiB lumps).
            if r.try_peek_some().is_ok_and(|v| v.is_empty()) {
                flush_out(out)?;
            }
        }
        let view = match r.blocking_peek_some() {
            Ok(v) => v,
            Err(e) => break Err(e),
        };
        let k = (view.len() as u64).min(left) as usize;
        match text.as_mut() {
            // write(2) straight out of the ring.
            None => write_out(raw, bytemuck::cast_slice(&view[..k]))?,
            Some(out) => {
                for v in &view[..k] {
                    use std::fmt::Write as _;
                    line.clear();
                    let _ = writeln!(line, "{v}");
                    write_out(out, line.as_bytes())?;
                }
            }
        }
        view.consume(k);
        left -= k as u64;
        bar.inc((k * size) as u64);
    };
    Ok(end)
}
