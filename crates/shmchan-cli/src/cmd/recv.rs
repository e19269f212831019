//! `shmchan recv`: claims the reader end and writes everything to a file (or stdout), raw
//! elements written straight out of the ring or one number per line, until the writer
//! closes; ends quietly when the reading side of a pipe goes away.
//!
//! Exactly once into a file: items are consumed only as far as each write took them
//! ([`pieces`]), and FILE carries a start record ([`record`]) by which `--resume` cuts it
//! back to what was consumed. When the stream stops short (the writer went away,
//! `--timeout`, the output failed) the reader end is let go as a killed process would let it
//! go, so the channel stays resumable. A recv that fails before it consumes anything undoes
//! what it did ([`start`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::Path;

use indicatif::ProgressBar;
use shmchan::{ChannelInfo, ChannelIo, Context, End, Error, ErrorKind, Primitive, RawReader};

use super::numbers::Numbers;
use super::pieces::{self, Stop};
use super::record::{self, Ident, Role};
use super::stream::{progress, DeadPeer, Found, Target};
use super::Resume;
use crate::cli::{Format, RecvArgs};
use crate::fail::Fail;

pub(crate) fn run(a: RecvArgs) -> Result<(), Fail> {
    if a.s.format == Format::Lines {
        return super::lines::recv(&a);
    }
    if a.s.resume && a.file.is_none() {
        return Err(Fail::usage(
            "recv --resume needs FILE: what went to stdout cannot be cut back",
        ));
    }
    if a.s.resume && a.s.format == Format::Text {
        return Err(Fail::usage(
            "recv --resume needs --format raw: text lines do not map to item positions",
        ));
    }
    if let Some(p) = a.file.as_deref().filter(|_| a.s.resume) {
        if std::fs::metadata(p).is_ok_and(|m| !m.is_file()) {
            return Err(Fail::usage(format!(
                "recv --resume needs a regular file; {} is not one",
                p.display()
            )));
        }
    }
    let target = Target::of(&a.s);
    if let Some(done) = ended_already(&target, &a)? {
        eprintln!("shmchan: {done}");
        return Ok(());
    }
    let found = target.resolve()?;
    // FILE before the channel: a FILE that cannot be written fails before a channel is
    // created or claimed.
    let file = a.file.as_deref().map(OutFile::open).transpose()?;
    let bar = progress(a.s.quiet, None, "recv");
    let r = recv(&target, found, file, &a, &bar);
    bar.finish_and_clear();
    r
}

/// With --resume: FILE's record names this channel, and the channel is gone (read to its
/// end and removed) or its reader closed it: nothing is left to resume. Says so.
fn ended_already(target: &Target<'_>, a: &RecvArgs) -> Result<Option<String>, Fail> {
    let Some(path) = a.file.as_deref().filter(|_| a.s.resume) else {
        return Ok(None);
    };
    let Ok(f) = File::open(path) else {
        return Ok(None);
    };
    let Some(st) = record::read(Role::Recv, &f, path)? else {
        return Ok(None);
    };
    let ended = match ChannelIo::inspect(target.name) {
        Err(e) if e.kind() == ErrorKind::NotFound => st.ident.name == target.name,
        Ok(i) => i.reader_closed && Ident::of(&i) == st.ident,
        Err(_) => false,
    };
    Ok(ended.then(|| {
        format!(
            "channel '{}' was read to its end into {}: nothing to resume",
            target.name,
            path.display()
        )
    }))
}

/// Claims the reader and writes everything out until the writer closes (or `count` items).
fn recv(
    target: &Target<'_>,
    found: Found,
    file: Option<OutFile>,
    a: &RecvArgs,
    bar: &ProgressBar,
) -> Result<(), Fail> {
    let ty = found.ty;
    let (mut r, mut out, info) = start(target, found, file, a)?;
    let numbers = Numbers::of(ty);
    let mut left = a.count.unwrap_or(u64::MAX);
    let mut dead = DeadPeer::at_start(&info, true);
    loop {
        let end = match a.s.format {
            // Lines never come here (`run` reads them as messages).
            Format::Raw | Format::Lines => {
                pieces::raw(&mut r, numbers.size(), &mut out, &mut left, bar)
            }
            Format::Text => pieces::text(&mut r, numbers, &mut out, &mut left, bar),
        };
        // Drained what a writer that went away before we came committed: wait for its
        // restart.
        if matches!(&end, Err(Stop::Channel(e)) if e.kind() == ErrorKind::PeerGone)
            && dead.stale(target.name)
        {
            continue;
        }
        return finish(r, end, target.name, a);
    }
}

/// Everything before the first item is consumed: the channel opened (or created), its
/// reader claimed, the output put in place; the channel as found then. A failure undoes
/// what was done: the reader end is let go (a channel that existed stays as it was), a
/// channel created here is removed (unless another process has opened it since), and so is
/// a FILE made here. A failing recv leaves no channel or file that was not there before.
fn start(
    target: &Target<'_>,
    found: Found,
    file: Option<OutFile>,
    a: &RecvArgs,
) -> Result<(RawReader, File, ChannelInfo), Fail> {
    let ty = found.ty;
    let made = file.as_ref().is_some_and(|f| f.made);
    let undo = |created: bool| {
        if created {
            // Nothing was consumed; a writer that came meanwhile keeps it.
            let _ = ChannelIo::remove_unused(target.name, |i| {
                i.is_ok_and(|i| i.writer.claims == 0 && i.tail == 0)
            });
        }
        if let Some(p) = a.file.as_deref().filter(|_| made) {
            let _ = std::fs::remove_file(p);
        }
    };
    let (chan, created) = target.open(found).inspect_err(|_| undo(false))?;
    let claimed = match chan.reader() {
        Err(e) if a.s.resume && e.context() == &Context::ClosedBy(End::Reader) => {
            Err(Fail::channel(format!(
                "channel '{}' was closed by its reader: nothing to resume",
                target.name
            )))
        }
        r => r.map_err(Fail::from),
    };
    let mut r = match claimed {
        Ok(r) => r,
        Err(f) => {
            drop(chan);
            undo(created);
            return Err(f);
        }
    };
    drop(chan); // the reader keeps the channel open
    r.set_timeout(a.s.timeout);
    // Only now that the reader end is ours is FILE cut or given its record: a failed claim
    // must not truncate a good file. If the output cannot be put in place, nothing was
    // consumed: the channel stays as it was.
    match output(target.name, ty, file, a) {
        Ok((out, info)) => Ok((r, out, info)),
        Err(f) => {
            r.leave();
            undo(created);
            Err(f)
        }
    }
}

/// Claimed, and before anything is consumed: the output (FILE put in place, or stdout),
/// and the channel as found then.
fn output(
    name: &str,
    ty: Primitive,
    file: Option<OutFile>,
    a: &RecvArgs,
) -> Result<(File, ChannelInfo), Fail> {
    // Holding the reader end, the consumed count cannot move under us.
    let info = ChannelIo::inspect(name)?;
    let out = match (file, a.file.as_deref()) {
        (Some(f), Some(p)) => {
            let at = At {
                ident: Ident::of(&info),
                head: info.head,
                size: ty.size() as usize,
                // Text lines do not map to items: no record to resume by.
                record: a.s.format == Format::Raw,
            };
            place(f.file, p, a.s.resume, &at)?
        }
        _ => stdout()?,
    };
    Ok((out, info))
}

/// Ends the command by how the drain ended: a complete stream closes the channel, and so
/// does a reader of our output that went away (which tells the writer); a stream that
/// stopped short leaves it resumable.
fn finish(r: RawReader, end: Result<(), Stop>, name: &str, a: &RecvArgs) -> Result<(), Fail> {
    match end {
        Ok(()) => {
            r.close();
            Ok(())
        }
        Err(Stop::Gone) => {
            r.close();
            Err(Fail::quiet())
        }
        Err(Stop::Write(e)) => {
            r.leave();
            Err(Fail::channel(format!(
                "channel '{name}': writing the output: {e}; {}",
                Resume::recv(name, a.file.as_deref())
            )))
        }
        Err(Stop::Channel(e)) => ended(r, e, name, a),
    }
}

/// Ends the command by the channel's error `e`: the writer closed (done), aborted, went away
/// or was not heard from in time (--timeout). Dropping `r` closes the channel.
fn ended(r: RawReader, e: Error, name: &str, a: &RecvArgs) -> Result<(), Fail> {
    let file = a.file.as_deref();
    match e.kind() {
        ErrorKind::Closed => {
            r.close();
            Ok(())
        }
        ErrorKind::Aborted => Err(Fail::channel(format!(
            // main escapes what it prints.
            "channel '{name}': the writer aborted: {} (everything it committed was \
             written out)",
            e.reason().unwrap_or_default()
        ))),
        // The writer's end was let go without a close or an abort: its process ended,
        // killed or not (a send that stops short, on its reader going away or --timeout,
        // lets go the same way). Nothing tells which.
        ErrorKind::PeerGone => {
            r.leave();
            // A channel a bridge's pull feeds records the stream it continues: its writer is
            // the bridge, which `send --resume` does not restart.
            let bridged = shmchan::ChannelIo::inspect(name).is_ok_and(|i| i.origin.is_some());
            let what = if bridged {
                "its writer, a bridge's pull, let it go (the push went, or the writer behind \
                 it died)"
            } else {
                "the writer went away without closing the channel (its process was killed, or \
                 it stopped on an error and left the stream to resume)"
            };
            let advice = if bridged {
                Resume::bridged(name, file)
            } else {
                Resume::both(name, file)
            };
            Err(Fail::channel(format!(
                "channel '{name}': {what}; everything it committed was written out; {advice}"
            )))
        }
        ErrorKind::TimedOut => {
            r.leave();
            Err(Fail::channel(format!(
                "channel '{name}': no item came for {:?} (--timeout); {}",
                a.s.timeout.unwrap_or_default(),
                Resume::recv(name, file)
            )))
        }
        _ => Err(e.into()),
    }
}

/// Where the output starts in the channel's stream, as the claimed reader found it.
struct At {
    ident: Ident,
    /// Items consumed so far.
    head: u64,
    /// Bytes per item.
    size: usize,
    /// Whether a fresh FILE gets a start record.
    record: bool,
}

/// FILE (at `p`), opened for reading and writing before the channel is touched, and
/// whether this recv made it (then a failure before anything is consumed removes it).
struct OutFile {
    file: File,
    made: bool,
}

impl OutFile {
    /// Opens FILE as it is (nothing cut yet), or makes it.
    fn open(p: &Path) -> Result<OutFile, Fail> {
        let cannot = |e: io::Error| Fail::channel(format!("cannot write {}: {e}", p.display()));
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        match o.clone().create_new(true).open(p) {
            Ok(file) => Ok(OutFile { file, made: true }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => o
                .open(p)
                .map(|file| OutFile { file, made: false })
                .map_err(cannot),
            Err(e) => Err(cannot(e)),
        }
    }
}

/// FILE `f` (at `p`), positioned where the stream goes on: a regular file is cut back to
/// what was consumed into it (--resume with a record of this channel) or started afresh
/// with a new record; anything else (a FIFO, a device) is written as it is.
fn place(mut f: File, p: &Path, resume: bool, at: &At) -> Result<File, Fail> {
    let cannot = |e: io::Error| Fail::channel(format!("cannot write {}: {e}", p.display()));
    if !f.metadata().map_err(cannot)?.is_file() {
        if resume {
            return Err(Fail::usage(format!(
                "recv --resume needs a regular file; {} is not one",
                p.display()
            )));
        }
        return Ok(f);
    }
    if let Some(st) = resume
        .then(|| record::read(Role::Recv, &f, p))
        .transpose()?
        .flatten()
    {
        let keep = resume_len(p, &f, &st, at)?;
        f.set_len(keep).map_err(cannot)?;
        f.seek(SeekFrom::End(0)).map_err(cannot)?;
        return Ok(f);
    }
    // The record first: a kill after it and before the truncation leaves a file that
    // --resume cuts to the (zero) items consumed since.
    if at.record {
        record::write(Role::Recv, &f, p, &at.ident, at.head)?;
    }
    f.set_len(0).map_err(cannot)?;
    Ok(f)
}

/// How many bytes of FILE (record `st`) hold consumed items, now that `head` items of the
/// channel are consumed.
fn resume_len(p: &Path, f: &File, st: &record::Start, at: &At) -> Result<u64, Fail> {
    let (ident, head, size) = (&at.ident, at.head, at.size);
    if st.ident != *ident {
        return Err(Fail::channel(format!(
            "{} holds the stream of another channel '{}' (created earlier under that name, or \
             another name): nothing to resume here; run without --resume to start it afresh",
            p.display(),
            st.ident.name
        )));
    }
    let items = head.checked_sub(st.start).ok_or_else(|| {
        Fail::channel(format!(
            "{} starts at item {} of channel '{}', which has consumed only {head}",
            p.display(),
            st.start,
            ident.name
        ))
    })?;
    let keep = items.saturating_mul(size as u64);
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < keep {
        return Err(Fail::channel(format!(
            "{} has {len} bytes, but {keep} were consumed into it: the file lost data, and \
             resuming would leave a gap",
            p.display()
        )));
    }
    Ok(keep)
}

/// Stdout as a raw descriptor.
pub(super) fn stdout() -> Result<File, Fail> {
    Ok(File::from(
        io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Fail::channel(format!("stdout: {e}")))?,
    ))
}
