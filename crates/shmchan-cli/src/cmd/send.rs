//! `shmchan send`: claims the writer end and streams a file (or stdin) into the channel, raw
//! elements read straight into the ring or text numbers parsed; closes the channel at the
//! end, or aborts it with the reason.
//!
//! A stream stopped by its reader's death or by `--timeout` is not aborted: the writer end
//! is let go as a killed process would let it go, and `send FILE --resume` reads FILE on
//! from the channel's committed count (where FILE's stream started: see
//! [`record`]).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::Path;
use std::str::FromStr;

use bytemuck::Pod;
use indicatif::ProgressBar;
use shmchan::{ChannelInfo, ChannelIo, Error, ErrorKind, Primitive, WriterFront, WriterState};

use super::record::{self, Ident, Role};
use super::stream::{progress, DeadPeer, Target};
use super::Resume;
use crate::cli::{Format, SendArgs};
use crate::fail::Fail;
use crate::text::{TextError, TextParser};

/// Why streaming stopped: the channel's put failed, or the input (or its parsing) did.
enum Stop {
    Put(Error),
    Input(Fail),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Put(e)
    }
}

pub(crate) fn run(a: SendArgs) -> Result<(), Fail> {
    let target = Target::of(&a.s);
    if a.s.resume {
        check_resumable(&a, &target)?;
    }
    let (ty, schema) = target.resolve()?;
    // Raw descriptors, not Stdin's buffer: the bytes are read straight into the ring.
    let (input, total) = match &a.file {
        Some(p) => {
            let f = File::open(p)
                .map_err(|e| Fail::channel(format!("cannot read {}: {e}", p.display())))?;
            let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            if a.s.resume && len.is_none() {
                return Err(Fail::usage(format!(
                    "send --resume needs a regular file to read on from; {} is not one",
                    p.display()
                )));
            }
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
    let r = with_type!(ty, send_typed(&target, schema, input, &a, &bar));
    bar.finish_and_clear();
    r
}

/// What --resume needs before anything is opened: FILE, raw, and an existing channel.
fn check_resumable(a: &SendArgs, target: &Target<'_>) -> Result<(), Fail> {
    if a.file.is_none() {
        return Err(Fail::usage(
            "send --resume needs FILE: a stream from stdin cannot resume (what the stopped \
             send read from it is gone)",
        ));
    }
    if a.s.format == Format::Text {
        return Err(Fail::usage(
            "send --resume needs --format raw: text tokens do not map to item positions",
        ));
    }
    match ChannelIo::inspect(target.name) {
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Fail::channel(format!(
            "channel '{}' does not exist: nothing to resume (a channel read to its end is \
             removed; a send stopped before it created the channel starts without --resume)",
            target.name
        ))),
        _ => Ok(()),
    }
}

/// Claims the writer and streams `input` in; aborts the stream with the reason if that fails
/// (but leaves it resumable if the reader died or did not answer in time).
fn send_typed<T>(
    target: &Target<'_>,
    schema: Option<String>,
    mut input: File,
    a: &SendArgs,
    bar: &ProgressBar,
) -> Result<(), Fail>
where
    T: Pod + FromStr,
{
    let chan = target.open::<T>(schema)?;
    let mut w = match chan.writer() {
        Err(e) if a.s.resume && e.kind() == ErrorKind::Closed => return sent_already(target.name),
        w => w?,
    };
    w.set_timeout(a.s.timeout);
    // Holding the writer end, the committed count cannot move under us. If the input cannot
    // be put in place, nothing was committed: the channel stays as it was (a close would
    // tell the reader that the stream is complete).
    let info = match ChannelIo::inspect(target.name)
        .map_err(Fail::from)
        .and_then(|info| {
            if let Some(p) = a.file.as_deref() {
                position(&mut input, p, &info, a.s.resume, size_of::<T>(), bar)?;
            }
            Ok(info)
        }) {
        Ok(info) => info,
        Err(f) => {
            w.leave();
            return Err(f);
        }
    };
    let type_name = Primitive::of::<T>().map_or("element", Primitive::name);
    let streamed = match a.s.format {
        Format::Raw => {
            let mut dead = DeadPeer::at_start(&info, false);
            raw_waiting(&mut w, &mut input, bar, type_name, &mut dead)
        }
        Format::Text => text_in(&mut w, input, bar, type_name),
    };
    let name = target.name;
    let (reason, resumable) = match streamed {
        Ok(()) => {
            w.close();
            return Ok(());
        }
        Err(Stop::Put(e)) if e.kind() == ErrorKind::PeerGone => (e.to_string(), true),
        Err(Stop::Put(e)) if e.kind() == ErrorKind::TimedOut => (
            format!(
                "channel '{name}': no room came for {:?} (--timeout)",
                a.s.timeout.unwrap_or_default()
            ),
            true,
        ),
        Err(Stop::Put(e)) => (e.to_string(), false),
        Err(Stop::Input(f)) if f.msg.starts_with("channel '") => (f.msg, false),
        Err(Stop::Input(f)) => (format!("channel '{name}': {}", f.msg), false),
    };
    if resumable {
        w.leave();
        return Err(Fail::channel(format!(
            "{reason}; {}",
            Resume::send(name, a.file.as_deref())
        )));
    }
    // The reader must learn that the stream is incomplete: abort with the reason (a plain
    // close would look like a complete stream).
    let bare = reason
        .strip_prefix(&format!("channel '{name}': "))
        .unwrap_or(&reason);
    w.abort(bare);
    Err(Fail::channel(reason))
}

/// A resumed send whose channel is closed: done if its writer closed it (the stream went
/// in whole), else an error.
fn sent_already(name: &str) -> Result<(), Fail> {
    let i = ChannelIo::inspect(name)?;
    if i.writer_state == WriterState::Closed {
        eprintln!("shmchan: channel '{name}' was already sent whole: nothing to resume");
        return Ok(());
    }
    Err(Fail::channel(format!(
        "channel '{name}' is closed ({}): nothing to resume",
        if i.reader_closed {
            "its reader closed it"
        } else {
            "its writer aborted"
        }
    )))
}

/// Puts `input` (at `path`) where the stream goes on. Fresh: records where FILE starts, if
/// that is not item 0. --resume: seeks to the bytes of the items committed since FILE's
/// start.
fn position(
    input: &mut File,
    path: &Path,
    info: &ChannelInfo,
    resume: bool,
    size: usize,
    bar: &ProgressBar,
) -> Result<(), Fail> {
    let (name, ident) = (&info.name, Ident::of(info));
    if !resume {
        if info.tail != 0 && input.metadata().is_ok_and(|m| m.is_file()) {
            if let Err(f) = record::write(Role::Send, input, path, &ident, info.tail) {
                eprintln!(
                    "shmchan: {}; --resume will not find where it started",
                    f.msg
                );
            }
        }
        return Ok(());
    }
    // A record of another channel (an earlier one under this name) says nothing here.
    let start = record::read(Role::Send, input, path)?
        .filter(|s| s.ident == ident)
        .map_or(0, |s| s.start);
    let skip = info.tail.saturating_sub(start).saturating_mul(size as u64);
    let len = input.metadata().map(|m| m.len()).unwrap_or(0);
    if info.tail < start || skip > len {
        return Err(Fail::channel(format!(
            "channel '{name}' committed {} items since {} started ({} bytes), more than it \
             holds ({len} bytes): not the file that was sent",
            info.tail.saturating_sub(start),
            path.display(),
            skip
        )));
    }
    input
        .seek(SeekFrom::Start(skip))
        .map_err(|e| Fail::channel(format!("cannot seek in {}: {e}", path.display())))?;
    bar.set_position(skip);
    Ok(())
}

/// [`raw_in`], which goes on from where it stopped (a reservation that failed read nothing),
/// again after the death of a reader that was dead before we came: its restart is awaited.
fn raw_waiting<T: Pod>(
    w: &mut WriterFront<T>,
    input: &mut File,
    bar: &ProgressBar,
    type_name: &str,
    dead: &mut DeadPeer,
) -> Result<(), Stop> {
    loop {
        match raw_in(w, input, bar, type_name) {
            Err(Stop::Put(e)) if e.kind() == ErrorKind::PeerGone && dead.stale(w.name()) => {}
            r => return r,
        }
    }
}

/// Raw elements, read(2) straight into the ring's slots.
fn raw_in<T: Pod>(
    w: &mut WriterFront<T>,
    input: &mut File,
    bar: &ProgressBar,
    type_name: &str,
) -> Result<(), Stop> {
    let size = std::mem::size_of::<T>();
    // Up to 1 MiB per read, and at most a quarter of the ring so the reader can
    // drain one part while we fill another.
    let chunk = ((1 << 20) / size).min(w.capacity() / 4).max(1);
    loop {
        let mut slots = w.blocking_reserve(chunk)?;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut slots);
        let (filled, end) = read_some(input, bytes, size);
        // Whole elements read so far are delivered even if the input then failed.
        let whole = filled / size;
        slots.commit(whole);
        bar.inc((whole * size) as u64);
        if end.map_err(Stop::Input)? {
            if filled % size != 0 {
                return Err(Stop::Input(Fail::channel(format!(
                    "the input ends with {} bytes, not a whole {type_name} ({size} bytes)",
                    filled % size
                ))));
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

/// Text: one number per whitespace-separated token (parsed by [`TextParser`]), sent in
/// batches and at each line's end.
fn text_in<T: Pod + FromStr>(
    w: &mut WriterFront<T>,
    input: File,
    bar: &ProgressBar,
    type_name: &str,
) -> Result<(), Stop> {
    let mut batch: Vec<T> = Vec::with_capacity(4096);
    let mut reader = BufReader::new(input);
    let mut bytes = Vec::new();
    let mut parser = TextParser::default();
    loop {
        bytes.clear();
        match reader.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                w.blocking_put(&batch)?;
                return Err(Stop::Input(Fail::channel(format!(
                    "reading the input: {e}"
                ))));
            }
        }
        bar.inc(bytes.len() as u64);
        if let Err(e) = parser.line(&bytes, &mut batch) {
            // What the input held before the bad spot goes out first.
            w.blocking_put(&batch)?;
            let what = match e {
                TextError::BadToken { .. } => format!("{e} is not a valid {type_name}"),
                TextError::NotUtf8 { .. } => e.to_string(),
            };
            return Err(Stop::Input(Fail::channel(what)));
        }
        // A line is a natural unit for a live text stream: send what it held (and a long
        // line in batches).
        if batch.len() >= batch.capacity() || (!batch.is_empty() && reader.buffer().is_empty()) {
            w.blocking_put(&batch)?;
            batch.clear();
        }
    }
    w.blocking_put(&batch)?;
    Ok(())
}
