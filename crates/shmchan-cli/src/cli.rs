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
  seq 1 1000 | shmchan send nums --type f64 --format text
  shmchan recv nums --format text --count 10
  shmchan ls
  shmchan inspect feed --json
  shmchan rm feed
  shmchan gc";

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
    #[command(
        after_help = "Creates the channel if it does not exist (with --type and \
                            --capacity), else opens it; `recv` does the same, so either can \
                            start first.\n\nExamples:\n  shmchan send feed data.bin\n  \
                            tar c dir | shmchan send backup\n  \
                            seq 1 100 | shmchan send nums --type f64 --format text"
    )]
    Send(SendArgs),
    /// Claim the reader end and write everything to FILE (or stdout) until the writer closes.
    #[command(
        after_help = "Creates the channel if it does not exist, else opens it, so either \
                            side can start first.\n\nExamples:\n  shmchan recv feed > copy.bin\n  \
                            shmchan recv nums --format text --count 10\n  \
                            shmchan recv feed | head -c 100"
    )]
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
    /// One number per whitespace-separated token (in) / per line (out).
    Text,
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
    /// Schema tag both sides must agree on.
    #[arg(long)]
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
    /// Ring capacity in elements, if the channel is created here (default: 16 MiB of ring).
    #[arg(long)]
    pub(crate) capacity: Option<usize>,
    /// Schema tag: recorded if the channel is created here, checked otherwise.
    #[arg(long)]
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
    #[arg(long)]
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
