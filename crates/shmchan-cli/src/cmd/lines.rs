//! `send` and `recv` with `--format lines`: a message channel, one message per line of the
//! input (the line without its newline), one line per message of the output.
//!
//! `recv` writes a batch of whole lines (at most [`PIECE`] bytes, or one longer message) with
//! one `write_all`, then consumes those messages: a recv killed before it consumed leaves
//! that batch to the next reader too, so a kill loses nothing, and the output may hold the
//! part of the batch written before the kill (possibly a part of a line), then the whole
//! batch again. There is no `--resume` for lines: a line's position in a file is not a
//! count of the channel's.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

use indicatif::ProgressBar;
use shmchan::{ChannelIo, Error, ErrorKind, MessageReader, MessageWriter};

use super::pieces::PIECE;
use super::stream::{progress, DeadPeer, Target};
use crate::cli::{RecvArgs, SendArgs};
use crate::fail::Fail;

/// The most lines `send` puts with one call.
const BATCH_LINES: usize = 1024;

/// Why `send` stopped before the end of its input.
enum SendStop {
    /// A put failed: the channel's error.
    Channel(Error),
    /// The input failed, or holds a line the channel cannot take: the abort reason.
    Input(String),
}

impl From<Error> for SendStop {
    fn from(e: Error) -> SendStop {
        SendStop::Channel(e)
    }
}

/// Why `recv` stopped before its count of lines was out.
enum RecvStop {
    /// A get failed, or the stream ended: the channel's error.
    Channel(Error),
    /// The reading side of our output went away (a broken pipe).
    Gone,
    /// Writing the output failed.
    Write(io::Error),
}

impl From<Error> for RecvStop {
    fn from(e: Error) -> RecvStop {
        RecvStop::Channel(e)
    }
}

pub(crate) fn send(a: &SendArgs) -> Result<(), Fail> {
    if a.s.resume {
        return Err(Fail::usage(
            "send --resume needs --format raw: lines do not map to item positions",
        ));
    }
    let (input, total): (Box<dyn Read>, Option<u64>) = match &a.file {
        Some(p) => {
            let f = File::open(p)
                .map_err(|e| Fail::channel(format!("cannot read {}: {e}", p.display())))?;
            let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            (Box::new(f), len)
        }
        None => (Box::new(io::stdin()), None),
    };
    let chan = Target::of(&a.s).open_messages()?;
    let mut w = chan.writer()?;
    w.set_timeout(a.s.timeout);
    // A reader that went away before we came: its restart is waited for.
    let dead = DeadPeer::at_start(&ChannelIo::inspect(chan.name())?, false);
    let bar = progress(a.s.quiet, total, "send");
    let mut sent = 0u64;
    let input = BufReader::with_capacity(PIECE, input);
    let streamed = lines_in(&mut w, input, dead, &bar, &mut sent);
    bar.finish_and_clear();
    let name = chan.name();
    let stopped = |w: MessageWriter, what: String| {
        w.leave();
        Err(Fail::channel(format!(
            "channel '{name}': {what}; {sent} lines were sent (lines cannot resume: send the \
             rest again)"
        )))
    };
    match streamed {
        Ok(()) => {
            w.close();
            Ok(())
        }
        Err(SendStop::Channel(e)) if e.kind() == ErrorKind::PeerGone => stopped(
            w,
            "the reader went away without closing the channel".to_string(),
        ),
        Err(SendStop::Channel(e)) if e.kind() == ErrorKind::TimedOut => stopped(
            w,
            format!(
                "no room came for {:?} (--timeout)",
                a.s.timeout.unwrap_or_default()
            ),
        ),
        Err(SendStop::Channel(e)) => {
            w.abort(&e.to_string());
            Err(e.into())
        }
        Err(SendStop::Input(reason)) => {
            w.abort(&reason);
            Err(Fail::channel(format!("channel '{name}': {reason}")))
        }
    }
}

/// Puts each line of `input` as one message, in batches of what was read at once; counts
/// the lines put in `sent`.
/// A line longer than the channel's largest message stops the stream (nothing of it is put).
fn lines_in(
    w: &mut MessageWriter,
    mut input: BufReader<Box<dyn Read>>,
    mut dead: DeadPeer,
    bar: &ProgressBar,
    sent: &mut u64,
) -> Result<(), SendStop> {
    let max = w.max_message_len();
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    let mut lines = 0u64;
    let mut put = |w: &mut MessageWriter, batch: &mut Vec<Vec<u8>>, bytes: &mut usize| {
        let mut at = 0;
        let r = loop {
            match w.blocking_put(&batch[at..]) {
                Ok(()) => break Ok(()),
                // The reader found dead at start: its restart is waited for.
                Err(e) if e.kind() == ErrorKind::PeerGone && dead.stale(w.name()) => {
                    at += e.accepted();
                }
                Err(e) => {
                    at += e.accepted();
                    break Err(e);
                }
            }
        };
        *sent += match &r {
            Ok(()) => batch.len() as u64,
            Err(_) => at as u64,
        };
        batch.clear();
        *bytes = 0;
        r
    };
    loop {
        let mut line = Vec::new();
        // At most one byte more than the longest message: a line is never held whole past
        // what the channel could take.
        let n = (&mut input)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| SendStop::Input(format!("reading the input: {e}")))?;
        if n == 0 {
            break;
        }
        lines += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.len() > max {
            put(w, &mut batch, &mut bytes)?;
            return Err(SendStop::Input(format!(
                "line {lines} is longer than the channel's longest message ({max} bytes)"
            )));
        }
        bar.inc(n as u64);
        bytes += line.len();
        batch.push(line);
        // Put the batch when it is full, and when no more input is there now (the next read
        // may wait): a line goes out as soon as it is read, never held for later ones.
        if bytes >= PIECE || batch.len() >= BATCH_LINES || input.buffer().is_empty() {
            put(w, &mut batch, &mut bytes)?;
        }
    }
    put(w, &mut batch, &mut bytes)?;
    Ok(())
}

pub(crate) fn recv(a: &RecvArgs) -> Result<(), Fail> {
    if a.s.resume {
        return Err(Fail::usage(
            "recv --resume needs --format raw: lines do not map to item positions",
        ));
    }
    let mut out = match &a.file {
        Some(p) => File::create(p)
            .map_err(|e| Fail::channel(format!("cannot write {}: {e}", p.display())))?,
        None => super::recv::stdout()?,
    };
    let chan = Target::of(&a.s).open_messages()?;
    let mut r = chan.reader()?;
    r.set_timeout(a.s.timeout);
    // A writer that went away before we came: once its lines are out, its restart is
    // waited for.
    let dead = DeadPeer::at_start(&ChannelIo::inspect(chan.name())?, true);
    let bar = progress(a.s.quiet, None, "recv");
    let drained = lines_out(&mut r, &mut out, a.count, dead, &bar);
    bar.finish_and_clear();
    let name = chan.name();
    match drained {
        Ok(()) => {
            r.close();
            Ok(())
        }
        Err(RecvStop::Gone) => {
            r.close();
            Err(Fail::quiet())
        }
        Err(RecvStop::Write(e)) => {
            r.leave();
            Err(Fail::channel(format!(
                "channel '{name}': writing the output: {e}"
            )))
        }
        Err(RecvStop::Channel(e)) if e.kind() == ErrorKind::Closed => {
            r.close();
            Ok(())
        }
        Err(RecvStop::Channel(e)) if e.kind() == ErrorKind::Aborted => Err(Fail::channel(format!(
            "channel '{name}': the writer aborted: {} (every line it sent was written out)",
            e.reason().unwrap_or_default()
        ))),
        Err(RecvStop::Channel(e))
            if matches!(e.kind(), ErrorKind::PeerGone | ErrorKind::TimedOut) =>
        {
            r.leave();
            let what = if e.kind() == ErrorKind::PeerGone {
                "the writer went away without closing the channel".to_string()
            } else {
                format!(
                    "no line came for {:?} (--timeout)",
                    a.s.timeout.unwrap_or_default()
                )
            };
            Err(Fail::channel(format!(
                "channel '{name}': {what}; every line it sent was written out, and a new \
                 recv reads on"
            )))
        }
        Err(RecvStop::Channel(e)) => Err(e.into()),
    }
}

/// Writes each message as a line, a batch of whole lines per write, consuming the messages
/// only once written; stops after `count` messages if given.
fn lines_out(
    r: &mut MessageReader,
    out: &mut File,
    count: Option<u64>,
    mut dead: DeadPeer,
    bar: &ProgressBar,
) -> Result<(), RecvStop> {
    let mut left = count.unwrap_or(u64::MAX);
    let mut buf = Vec::with_capacity(PIECE);
    let name = r.name().to_string();
    while left > 0 {
        let msgs = match r.blocking_peek_some() {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::PeerGone && dead.stale(&name) => continue,
            Err(e) => return Err(e.into()),
        };
        buf.clear();
        let mut k = 0;
        for m in msgs.iter() {
            if k as u64 == left || (k > 0 && buf.len() + m.len() >= PIECE) {
                break;
            }
            buf.extend_from_slice(m);
            buf.push(b'\n');
            k += 1;
        }
        match out.write_all(&buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(RecvStop::Gone),
            Err(e) => return Err(RecvStop::Write(e)),
        }
        msgs.consume(k);
        left -= k as u64;
        bar.inc(buf.len() as u64);
    }
    Ok(())
}
