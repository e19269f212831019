//! `shmchan send`: claims the writer end and streams a file (or stdin) into the channel, raw
//! elements read straight into the ring or text numbers parsed; closes the channel at the
//! end, or aborts it with the reason.
//!
//! A stream stopped by its reader going away (see [`finish`]) or by `--timeout` is not
//! aborted: the writer end is let go as a killed process would let it go, and `send FILE
//! --resume` reads FILE on from the channel's committed count (where FILE's stream started:
//! see [`record`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::Path;

use indicatif::ProgressBar;
use shmchan::{
    ChannelInfo, ChannelIo, Error, ErrorKind, Primitive, RawChannel, RawWriter, WriterState,
};

use super::numbers::Numbers;
use super::record::{self, Ident, Role};
use super::stream::{progress, DeadPeer, Target};
use super::Resume;
use crate::cli::{Format, SendArgs};
use crate::fail::Fail;
use crate::text::{TextError, TextParser};

/// Why streaming stopped before the end of the input.
enum Stop {
    /// A put failed: the channel's error.
    Put(Error),
    /// The input failed, or holds what the channel cannot take.
    Input(BadInput),
}

/// What is wrong with the input. Its words are the abort reason the reader sees.
enum BadInput {
    /// Reading it failed.
    Read(io::Error),
    /// It ends with this many bytes, fewer than an element of the primitive.
    Partial(usize, Primitive),
    /// Text was refused (a token is not a number of the primitive, or not UTF-8).
    Text(TextError),
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadInput::Read(e) => write!(f, "reading the input: {e}"),
            BadInput::Partial(n, ty) => write!(
                f,
                "the input ends with {n} bytes, not a whole {ty} ({} bytes)",
                ty.size()
            ),
            BadInput::Text(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Put(e)
    }
}

impl From<BadInput> for Stop {
    fn from(b: BadInput) -> Stop {
        Stop::Input(b)
    }
}

pub(crate) fn run(a: SendArgs) -> Result<(), Fail> {
    if a.s.format == Format::Lines {
        return super::lines::send(&a);
    }
    let target = Target::of(&a.s);
    if a.s.resume {
        check_resumable(&a, &target)?;
    }
    let found = target.resolve()?;
    let ty = found.ty;
    let (input, total) = input(&a)?;
    let (chan, _) = target.open(found)?;
    let bar = progress(a.s.quiet, total, "send");
    let r = send(&chan, ty, input, &a, &bar);
    bar.finish_and_clear();
    r
}

/// FILE or stdin, as a raw descriptor (not Stdin's buffer: the bytes are read straight into
/// the ring), and its length if it is a regular file.
fn input(a: &SendArgs) -> Result<(File, Option<u64>), Fail> {
    let Some(p) = &a.file else {
        let fd = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Fail::channel(format!("stdin: {e}")))?;
        return Ok((File::from(fd), None));
    };
    let f =
        File::open(p).map_err(|e| Fail::channel(format!("cannot read {}: {e}", p.display())))?;
    let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    if a.s.resume && len.is_none() {
        return Err(Fail::usage(format!(
            "send --resume needs a regular file to read on from; {} is not one",
            p.display()
        )));
    }
    Ok((f, len))
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

/// Claims the writer of `chan` (elements of `ty`), puts the input in place and streams it
/// in, then ends the stream by how that went.
fn send(
    chan: &RawChannel,
    ty: Primitive,
    mut input: File,
    a: &SendArgs,
    bar: &ProgressBar,
) -> Result<(), Fail> {
    let mut w = match chan.writer() {
        Err(e) if a.s.resume && e.kind() == ErrorKind::Closed => return sent_already(chan.name()),
        w => w?,
    };
    w.set_timeout(a.s.timeout);
    // If the input cannot be put in place, nothing was committed: the channel stays as it
    // was (a close would tell the reader that the stream is complete).
    let info = match place(&mut input, chan.name(), ty, a, bar) {
        Ok(info) => info,
        Err(f) => {
            w.leave();
            return Err(f);
        }
    };
    let streamed = match a.s.format {
        // Lines never come here (`run` sends them as messages).
        Format::Raw | Format::Lines => raw_waiting(&mut w, &mut input, ty, &info, bar),
        Format::Text => text_in(&mut w, input, Numbers::of(ty), bar),
    };
    finish(w, streamed, chan.name(), a)
}

/// The channel as found now that the writer end is held (its committed count cannot move),
/// with FILE put where the stream goes on in it.
fn place(
    input: &mut File,
    name: &str,
    ty: Primitive,
    a: &SendArgs,
    bar: &ProgressBar,
) -> Result<ChannelInfo, Fail> {
    let info = ChannelIo::inspect(name)?;
    if let Some(p) = a.file.as_deref() {
        position(input, p, &info, a.s.resume, ty.size() as usize, bar)?;
    }
    Ok(info)
}

/// Ends the stream by how it went: closes the channel after the whole input; lets go of
/// the writer end, leaving the stream resumable, if the reader went away or no room came in time
/// (--timeout); else aborts with the reason, so that the reader learns that the stream is
/// incomplete (a plain close would look like a complete stream).
fn finish(w: RawWriter, streamed: Result<(), Stop>, name: &str, a: &SendArgs) -> Result<(), Fail> {
    let resumable = |w: RawWriter, what: String| {
        w.leave();
        Err(Fail::channel(format!(
            "{what}; {}",
            Resume::send(name, a.file.as_deref())
        )))
    };
    match streamed {
        Ok(()) => {
            w.close();
            Ok(())
        }
        // The reader's end was let go without a close: its process ended, killed or not
        // (a recv that stops short, on a failed write or --timeout, lets go the same way).
        // Nothing tells which.
        Err(Stop::Put(e)) if e.kind() == ErrorKind::PeerGone => resumable(
            w,
            format!(
                "channel '{name}': the reader went away without closing the channel (its \
                 process was killed, or it stopped on an error and left the stream to resume)"
            ),
        ),
        Err(Stop::Put(e)) if e.kind() == ErrorKind::TimedOut => resumable(
            w,
            format!(
                "channel '{name}': no room came for {:?} (--timeout)",
                a.s.timeout.unwrap_or_default()
            ),
        ),
        Err(Stop::Put(e)) => {
            w.abort(&e.to_string());
            Err(e.into())
        }
        Err(Stop::Input(bad)) => {
            let reason = bad.to_string();
            w.abort(&reason);
            Err(Fail::channel(format!("channel '{name}': {reason}")))
        }
    }
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
/// again after the death of a reader that was dead before we came (as found in `info`): its
/// restart is awaited.
fn raw_waiting(
    w: &mut RawWriter,
    input: &mut File,
    ty: Primitive,
    info: &ChannelInfo,
    bar: &ProgressBar,
) -> Result<(), Stop> {
    let mut dead = DeadPeer::at_start(info, false);
    loop {
        match raw_in(w, input, ty, bar) {
            Err(Stop::Put(e)) if e.kind() == ErrorKind::PeerGone && dead.stale(w.name()) => {}
            r => return r,
        }
    }
}

/// Raw elements of `ty`, read(2) straight into the ring's slots.
fn raw_in(
    w: &mut RawWriter,
    input: &mut File,
    ty: Primitive,
    bar: &ProgressBar,
) -> Result<(), Stop> {
    let size = ty.size() as usize;
    // Up to 1 MiB per read, and at most a quarter of the ring so the reader can
    // drain one part while we fill another.
    let chunk = ((1 << 20) / size).min(w.capacity() / 4).max(1);
    loop {
        let mut slots = w.blocking_reserve(chunk)?;
        let (filled, end) = read_some(input, &mut slots, size);
        // Whole elements read so far are delivered even if the input then failed.
        let whole = filled / size;
        slots.commit(whole);
        bar.inc((whole * size) as u64);
        if end.map_err(BadInput::Read)? {
            if filled % size != 0 {
                return Err(BadInput::Partial(filled % size, ty).into());
            }
            return Ok(());
        }
    }
}

/// Reads into `bytes` until a read ends on an element boundary (of `size` bytes), the input
/// ends or fails; returns the bytes filled and whether the input ended.
fn read_some(input: &mut File, bytes: &mut [u8], size: usize) -> (usize, io::Result<bool>) {
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
            Err(e) => return (filled, Err(e)),
        }
    }
}

/// The most bytes of text input read (and parsed) at a time.
const TEXT_PIECE: usize = 64 << 10;

/// Text: one number per whitespace-separated token, parsed by [`TextParser`] as `numbers`
/// says, as the input comes: read at most [`TEXT_PIECE`] bytes at a time, whatever its
/// lines (a line without a newline is not held whole), and the numbers of each read sent at
/// once, so that a live text stream flows.
fn text_in(
    w: &mut RawWriter,
    mut input: File,
    numbers: Numbers,
    bar: &ProgressBar,
) -> Result<(), Stop> {
    let mut piece = vec![0u8; TEXT_PIECE];
    let mut batch: Vec<u8> = Vec::new();
    let mut parser = TextParser::default();
    loop {
        let n = match input.read(&mut piece) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BadInput::Read(e).into()),
        };
        bar.inc(n as u64);
        let more = n > 0;
        let parsed = (numbers.parse)(&mut parser, more.then(|| &piece[..n]), &mut batch);
        // What the input held before a bad spot goes out first.
        w.blocking_put(&batch)?;
        batch.clear();
        parsed.map_err(BadInput::Text)?;
        if !more {
            return Ok(());
        }
    }
}
