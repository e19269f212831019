//! The command line: every clap type of `shmchan` (the subcommands, their flags and the
//! value parsers), and nothing that runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shmchan::{Barrier, Primitive};

const EXAMPLES: &str = "\
Examples:
  shmchan create imu --type f32 --capacity 1048576
  shmchan send feed data.bin &           # stream a file into channel 'feed'
  shmchan recv feed > copy.bin           # and out again, in another process
  shmchan recv feed copy.bin --resume    # a killed recv (or send) goes on where it stopped
  seq 1 1000 | shmchan send nums --type f64 --format text
  shmchan recv nums --format text --count 10
  shmchan ls
  shmchan inspect feed --json
  shmchan rm feed
  shmchan gc";

const SEND_HELP: &str = "\
Creates the channel if it does not exist (with --type and --capacity), else opens it, so
either side can start first.

--format text: numbers separated by whitespace (spaces, tabs, newlines: lines do not
matter), parsed as the input comes (a line is not held whole). A token longer than 1024
bytes is refused as soon as it is that long: no number needs more. Floats are range-checked
like integers: a finite number too large for the type (it would be infinity, e.g. 1e400)
or nonzero and too small (it would be 0, e.g. 1e-400) is refused; inf, -inf, infinity and
nan (any case) are read as written. A refused token, or input that is not UTF-8, aborts
the stream after the numbers before it; the message shows the token's first 40 characters.

If the reader goes away without closing the channel (its process is killed, or a recv
stops on an error, e.g. a full disk), send exits 1 and leaves the channel as it is (not
aborted): run `recv --resume` again, and `send --resume` if send had to stop. A reader
found gone when send starts is waited for like one that has not come yet (bound it with
--timeout).

--resume: continue the stream of a send that was killed (or stopped because its reader
went away), from the first item the channel did not commit: the channel's committed count,
counted from where FILE's stream started in it, times the element size, is the byte
offset at which FILE is read on. FILE must be a regular file read with --format raw; the
channel must exist. A channel whose stream was already sent whole exits 0. Stdin cannot
resume (what the dead send read from it is gone): `send --resume` without FILE is a usage
error (exit 2). Where FILE's stream started is 0 unless the channel already held items when
it started; then it is recorded in FILE's extended attribute user.shmchan.send-start (or in
FILE.shmchan-send-start beside it).

--format lines: a message channel; each line of the input (without its newline) is one
message, of any bytes. --capacity counts bytes of ring; --type and --resume do not apply. A
line longer than the ring takes aborts the stream after the lines before it.

Examples:
  shmchan send feed data.bin
  shmchan send feed data.bin --resume    # after it was killed
  tar c dir | shmchan send backup
  seq 1 100 | shmchan send nums --type f64 --format text";

const RECV_HELP: &str = "\
Creates the channel if it does not exist, else opens it, so either side can start first.

Items are written in pieces of at most 64 KiB, and each piece is consumed from the channel
only as far as the write(2) took it (whole elements): into a regular FILE nothing is ever
written twice across kills when restarted with --resume. Into a pipe or a terminal, a recv
killed between a write and its consumption leaves that piece to the next recv too: at most
one piece (64 KiB) is duplicated per kill.

If the writer goes away without closing the channel (its process is killed, or a send
stops short), recv writes out everything committed, exits 1 and leaves the channel as it
is: restart `send --resume` and `recv --resume`, in either order (a writer found gone when
recv starts is waited for like one that has not come yet; bound it with --timeout).

FILE is opened before the channel is touched: a FILE that cannot be written fails before a
channel is created or claimed. A recv that fails before it consumes anything leaves no
channel and no FILE that was not there before, and a channel that was there as it was.

--resume: FILE continues the stream of a recv that was killed (or stopped). When recv
starts on a regular FILE it records the channel's consumed count at which FILE starts, in
FILE's extended attribute user.shmchan.start (or, where the file system has none, in
FILE.shmchan-start beside it). --resume cuts FILE to (consumed count now - start) x element
size bytes, which drops what the dead recv wrote but had not consumed, and appends. FILE
without a record starts afresh, as without --resume. A FILE whose channel has been read to
its end and removed exits 0. Needs --format raw, and excludes --count.

--format lines: each message of a message channel is written as a line (the message, then a
newline), whole lines at most 64 KiB at a time (a longer line alone), consumed once
written: a kill loses nothing, and may leave that batch, or part of it, written twice. --count counts lines; --resume does not apply.

Examples:
  shmchan recv feed > copy.bin
  shmchan recv feed copy.bin --resume    # after it was killed
  shmchan recv nums --format text --count 10
  shmchan recv feed | head -c 100";

/// See, feed, drain and clean shared-memory channels (shmchan).
#[derive(Parser, Debug)]
#[command(name = "shmchan", version, after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Create a persistent channel and return at once.
    #[command(
        after_help = "Examples:\n  shmchan create imu --type f32 --capacity 1048576\n  \
                            shmchan create frames --type u8 --capacity 67108864 --schema rgb8/v1 --mode 0660"
    )]
    Create(CreateArgs),
    /// Claim the writer end and stream FILE (or stdin) into the channel, then close it.
    #[command(after_help = SEND_HELP)]
    Send(SendArgs),
    /// Claim the reader end and write everything to FILE (or stdout) until the writer closes.
    #[command(after_help = RECV_HELP)]
    Recv(RecvArgs),
    /// List every channel on this machine.
    #[command(after_help = "Examples:\n  shmchan ls\n  shmchan ls --json | jq '.[].name'")]
    Ls(LsArgs),
    /// Show one channel's header in detail, validated.
    #[command(
        after_help = "A corrupt, foreign or unreadable segment is reported as such (exit 1).\n\n\
                            Examples:\n  shmchan inspect feed\n  shmchan inspect feed --json"
    )]
    Inspect(InspectArgs),
    /// Remove a channel and all its files.
    #[command(
        after_help = "Refuses a channel that a live process has open, unless --force.\n\n\
                            Examples:\n  shmchan rm feed\n  shmchan rm feed --force"
    )]
    Rm(RmArgs),
    /// Remove every channel that no live process holds.
    #[command(
        after_help = "Keeps persistent channels and channels whose writer finished but \
                            whose reader has not come yet, unless --all. Also removes \
                            temporary directories left by killed creators.\n\n\
                            Examples:\n  shmchan gc --dry-run\n  shmchan gc"
    )]
    Gc(GcArgs),
}

/// `--type`: one of u8 i8 u16 i16 u32 i32 u64 i64 f32 f64.
fn parse_type(s: &str) -> Result<Primitive, String> {
    s.parse()
}

/// `--barrier`: how a channel created here orders its wake protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum BarrierArg {
    /// membarrier(2) where this process may use it, else fence.
    #[default]
    Auto,
    /// A fence on every put/get; for peers in sandboxes that forbid membarrier(2).
    Fence,
    /// No fence on put/get; sleepers call membarrier(2). Fails where it is not allowed.
    Membarrier,
}

impl From<BarrierArg> for Barrier {
    fn from(b: BarrierArg) -> Barrier {
        match b {
            BarrierArg::Auto => Barrier::Auto,
            BarrierArg::Fence => Barrier::Fence,
            BarrierArg::Membarrier => Barrier::Membarrier,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum Format {
    /// Native-endian binary elements (for u8: the bytes as they are).
    #[default]
    Raw,
    /// One number per whitespace-separated token (in; at most 1024 bytes each) / per line
    /// (out).
    Text,
    /// A message channel: one message per line (in: the line without its newline; out: the
    /// message and a newline). --capacity counts bytes of ring.
    Lines,
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Channel name (A-Z a-z 0-9 _ . -).
    pub(crate) name: String,
    /// Element type: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub(crate) ty: Primitive,
    /// Ring capacity in elements (rounded up to whole pages).
    #[arg(long)]
    pub(crate) capacity: usize,
    /// Schema tag both sides must agree on (printable: no control characters).
    #[arg(long, value_parser = parse_schema)]
    pub(crate) schema: Option<String>,
    /// Permission bits, octal.
    #[arg(long, default_value = "0600", value_parser = parse_mode)]
    pub(crate) mode: u32,
    /// How put/get order the wake protocol (see `shmchan inspect`).
    #[arg(long, value_enum, default_value_t)]
    pub(crate) barrier: BarrierArg,
}

/// What `send` and `recv` share: the channel and how to create it if it does not exist.
#[derive(Args, Debug)]
pub(crate) struct StreamArgs {
    /// Channel name.
    pub(crate) name: String,
    /// Element type, if the channel is created here (default u8); checked otherwise. One of
    /// u8 i8 u16 i16 u32 i32 u64 i64 f32 f64.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub(crate) ty: Option<Primitive>,
    /// Ring capacity in elements, if the channel is created here (default: 16 MiB of ring),
    /// rounded up to whole pages; a channel that exists must have what that makes, else exit 1.
    #[arg(long)]
    pub(crate) capacity: Option<usize>,
    /// Schema tag: recorded if the channel is created here, checked otherwise.
    #[arg(long, value_parser = parse_schema)]
    pub(crate) schema: Option<String>,
    /// Format of the data: raw native-endian elements, or text numbers.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: Format,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Accept a channel that belongs to another user (shared on purpose, e.g. mode 0660).
    #[arg(long)]
    pub(crate) any_owner: bool,
    /// How put/get order the wake protocol, if the channel is created here.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) barrier: BarrierArg,
    /// Continue the stream of a killed send or recv on the same FILE (see below).
    #[arg(long)]
    pub(crate) resume: bool,
    /// Give up (exit 1) when the peer has not answered for SECS seconds: neither items
    /// (recv) nor room (send) came. The channel is left as a killed process leaves it,
    /// so the command can be run again with --resume.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub(crate) timeout: Option<std::time::Duration>,
}

#[derive(Args, Debug)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) s: StreamArgs,
    /// Input file (default: stdin).
    pub(crate) file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct RecvArgs {
    #[command(flatten)]
    pub(crate) s: StreamArgs,
    /// Output file (default: stdout).
    pub(crate) file: Option<PathBuf>,
    /// Stop after N items (then close the channel: the rest is discarded).
    #[arg(long, conflicts_with = "resume")]
    pub(crate) count: Option<u64>,
}

#[derive(Args, Debug)]
pub(crate) struct LsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Channel name.
    pub(crate) name: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RmArgs {
    /// Channel names.
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
    /// Remove even if a live process has it open.
    #[arg(long, short)]
    pub(crate) force: bool,
}

#[derive(Args, Debug)]
pub(crate) struct GcArgs {
    /// Also remove persistent channels, channels waiting for their reader, and files under
    /// a channel's name that are not shmchan segments.
    #[arg(long)]
    pub(crate) all: bool,
    /// Only say what would be removed.
    #[arg(long, short = 'n')]
    pub(crate) dry_run: bool,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal mode like 0600"))
}

/// `--timeout`: seconds, fractions allowed, more than 0.
fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e9)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds like 5 or 0.5"))
}

/// `--schema`: a tag without control characters (others print it on terminals).
fn parse_schema(s: &str) -> Result<String, String> {
    match s.char_indices().find(|(_, c)| c.is_control()) {
        Some((i, c)) => Err(format!(
            "the schema tag has a control character ({}) at byte {i}; tags are printed by \
             `shmchan ls` and `inspect`, so they must be printable",
            c.escape_unicode()
        )),
        None => Ok(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help states the parser's bound as it is.
    #[test]
    fn help_states_the_token_bound() {
        let bound = crate::text::MAX_TOKEN.to_string();
        assert!(SEND_HELP.contains(&format!("longer than {bound}\nbytes")));
        let text = Format::Text
            .to_possible_value()
            .and_then(|v| v.get_help().cloned());
        assert!(text.is_some_and(|h| h.to_string().contains(&format!("at most {bound} bytes"))));
    }
}
