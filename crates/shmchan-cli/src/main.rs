//! `shmchan`: see, feed, drain and clean shared-memory channels from a shell.
//!
//! Exit status: 0 on success, 1 on a channel error, 2 on a usage error.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use bytemuck::Pod;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shmchan::{
    Barrier, ChannelInfo, ChannelIo, ClaimError, EndInfo, GetError, OpenError, Options, Primitive,
    PutError, Removal, WriterState,
};

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
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
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
enum BarrierArg {
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
enum Format {
    /// Native-endian binary elements (for u8: the bytes as they are).
    #[default]
    Raw,
    /// One number per whitespace-separated token (in) / per line (out).
    Text,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Channel name (A-Z a-z 0-9 _ . -).
    name: String,
    /// Element type: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    ty: Primitive,
    /// Ring capacity in elements (rounded up to whole pages).
    #[arg(long)]
    capacity: usize,
    /// Schema tag both sides must agree on.
    #[arg(long)]
    schema: Option<String>,
    /// Permission bits, octal.
    #[arg(long, default_value = "0600", value_parser = parse_mode)]
    mode: u32,
    /// How put/get order the wake protocol (see `shmchan inspect`).
    #[arg(long, value_enum, default_value_t)]
    barrier: BarrierArg,
}

/// Default ring for `send`/`recv` when they create the channel: 16 MiB.
const DEFAULT_RING_BYTES: usize = 16 << 20;

/// What `send` and `recv` share: the channel and how to create it if it does not exist.
#[derive(Args, Debug)]
struct StreamArgs {
    /// Channel name.
    name: String,
    /// Element type, if the channel is created here (default u8); checked otherwise. One of
    /// u8 i8 u16 i16 u32 i32 u64 i64 f32 f64.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    ty: Option<Primitive>,
    /// Ring capacity in elements, if the channel is created here (default: 16 MiB of ring).
    #[arg(long)]
    capacity: Option<usize>,
    /// Schema tag: recorded if the channel is created here, checked otherwise.
    #[arg(long)]
    schema: Option<String>,
    /// Format of the data: raw native-endian elements, or text numbers.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Accept a channel that belongs to another user (shared on purpose, e.g. mode 0660).
    #[arg(long)]
    any_owner: bool,
    /// How put/get order the wake protocol, if the channel is created here.
    #[arg(long, value_enum, default_value_t)]
    barrier: BarrierArg,
}

#[derive(Args, Debug)]
struct SendArgs {
    #[command(flatten)]
    s: StreamArgs,
    /// Input file (default: stdin).
    file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RecvArgs {
    #[command(flatten)]
    s: StreamArgs,
    /// Output file (default: stdout).
    file: Option<PathBuf>,
    /// Stop after N items (then close the channel: the rest is discarded).
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Args, Debug)]
struct LsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// Channel name.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct RmArgs {
    /// Channel names.
    #[arg(required = true)]
    names: Vec<String>,
    /// Remove even if a live process has it open.
    #[arg(long, short)]
    force: bool,
}

#[derive(Args, Debug)]
struct GcArgs {
    /// Also remove persistent channels, channels waiting for their reader, and files under
    /// a channel's name that are not shmchan segments.
    #[arg(long)]
    all: bool,
    /// Only say what would be removed.
    #[arg(long, short = 'n')]
    dry_run: bool,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal mode like 0600"))
}

/// How a command failed: the message (one line) and the exit status.
struct Fail {
    code: u8,
    msg: String,
}

impl Fail {
    fn channel(msg: impl Display) -> Fail {
        Fail {
            code: 1,
            msg: msg.to_string(),
        }
    }
    fn usage(msg: impl Display) -> Fail {
        Fail {
            code: 2,
            msg: msg.to_string(),
        }
    }
}

macro_rules! from_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Fail {
            fn from(e: $t) -> Fail {
                Fail::channel(e)
            }
        }
    )*};
}
from_error!(ClaimError, PutError, GetError);

impl From<OpenError> for Fail {
    fn from(e: OpenError) -> Fail {
        // What the user typed is wrong (exit 2), not the channel.
        let usage = matches!(
            e,
            OpenError::InvalidName { .. }
                | OpenError::InvalidCapacity { .. }
                | OpenError::InvalidSchema { .. }
        );
        // The library's texts name no command; the command adds its own hints.
        let hint = match &e {
            OpenError::AlreadyExists { name, .. }
            | OpenError::Foreign { name, .. }
            | OpenError::NotInitialized { name } => format!(" (`shmchan rm {name}`)"),
            OpenError::MembarrierUnavailable { .. } => {
                " (`shmchan create --barrier fence`)".to_string()
            }
            _ => String::new(),
        };
        let msg = format!("{e}{hint}");
        if usage {
            Fail::usage(msg)
        } else {
            Fail::channel(msg)
        }
    }
}

impl From<shmchan::RemoveError> for Fail {
    fn from(e: shmchan::RemoveError) -> Fail {
        match e {
            shmchan::RemoveError::InvalidName { .. } => Fail::usage(e),
            e => Fail::channel(e),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Send(_) | Cmd::Recv(_)) {
        // Listing commands die quietly when their reader goes away, like other Unix tools
        // (`shmchan ls | head -1`). send and recv keep Rust's SIGPIPE-ignored default: they
        // handle EPIPE themselves and close their end of the channel properly.
        // SAFETY: setting a signal's disposition to its default is async-signal-safe and
        // happens before any other thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let r = match cli.cmd {
        Cmd::Create(a) => create(a),
        Cmd::Send(a) => send(a),
        Cmd::Recv(a) => recv(a),
        Cmd::Ls(a) => ls(a),
        Cmd::Inspect(a) => inspect(a),
        Cmd::Rm(a) => rm(a),
        Cmd::Gc(a) => gc(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.msg.is_empty() {
                eprintln!("shmchan: {}", f.msg);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Runs `$f::<T>($args)` with `T` the Rust type of primitive `$p`.
macro_rules! with_type {
    ($p:expr, $f:ident ( $($a:expr),* )) => {
        match $p {
            Primitive::U8 => $f::<u8>($($a),*),
            Primitive::I8 => $f::<i8>($($a),*),
            Primitive::U16 => $f::<u16>($($a),*),
            Primitive::I16 => $f::<i16>($($a),*),
            Primitive::U32 => $f::<u32>($($a),*),
            Primitive::I32 => $f::<i32>($($a),*),
            Primitive::U64 => $f::<u64>($($a),*),
            Primitive::I64 => $f::<i64>($($a),*),
            Primitive::F32 => $f::<f32>($($a),*),
            Primitive::F64 => $f::<f64>($($a),*),
        }
    };
}

fn create(a: CreateArgs) -> Result<(), Fail> {
    fn go<T: Pod>(a: &CreateArgs) -> Result<(), Fail> {
        let mut o = Options::new()
            .capacity(a.capacity)
            .mode(a.mode)
            .barrier(a.barrier.into())
            .persist(true);
        if let Some(s) = &a.schema {
            o = o.schema(s.clone());
        }
        let chan = ChannelIo::<T>::create(&a.name, o)?;
        eprintln!(
            "created channel '{}': {} × {}, {} bytes of ring",
            a.name,
            chan.capacity(),
            a.ty,
            chan.capacity() * std::mem::size_of::<T>()
        );
        Ok(())
    }
    with_type!(a.ty, go(&a))
}

/// What `send`/`recv` need to open or create a channel.
struct Target<'a> {
    name: &'a str,
    ty: Option<Primitive>,
    capacity: Option<usize>,
    schema: Option<&'a str>,
    any_owner: bool,
    barrier: BarrierArg,
}

impl<'a> Target<'a> {
    fn of(s: &'a StreamArgs) -> Target<'a> {
        Target {
            name: &s.name,
            ty: s.ty,
            capacity: s.capacity,
            schema: s.schema.as_deref(),
            any_owner: s.any_owner,
            barrier: s.barrier,
        }
    }
}

impl Target<'_> {
    /// The element type to use: the channel's if it exists (checked against --type), else
    /// --type or u8. Also the schema tag to open it with.
    fn resolve(&self) -> Result<(Primitive, Option<String>), Fail> {
        match ChannelIo::inspect(self.name) {
            Ok(info) => {
                let Some(found) = info.elem_type else {
                    return Err(Fail::channel(format!(
                        "channel '{}' holds {}-byte elements of an application type; the \
                         command line reads only u8 i8 u16 i16 u32 i32 u64 i64 f32 f64",
                        self.name, info.elem_size
                    )));
                };
                if let Some(t) = self.ty {
                    if t != found {
                        return Err(Fail::channel(format!(
                            "channel '{}' holds {found}, not {t}; drop --type or use --type {found}",
                            self.name
                        )));
                    }
                }
                if let Some(s) = self.schema {
                    if info.schema.as_deref() != Some(s) {
                        return Err(Fail::channel(format!(
                            "channel '{}' has schema tag {:?}, not {s:?}",
                            self.name,
                            info.schema.as_deref().unwrap_or("")
                        )));
                    }
                }
                if self.capacity.is_some_and(|c| c as u64 > info.capacity) {
                    eprintln!(
                        "shmchan: channel '{}' exists with capacity {}; --capacity applies only \
                         when creating",
                        self.name, info.capacity
                    );
                }
                Ok((found, info.schema))
            }
            Err(OpenError::NotFound { .. }) => Ok((
                self.ty.unwrap_or(Primitive::U8),
                self.schema.map(str::to_string),
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn open<T: Pod>(&self, schema: Option<String>) -> Result<ChannelIo<T>, Fail> {
        let size = std::mem::size_of::<T>();
        let mut o = Options::new()
            .capacity(self.capacity.unwrap_or(DEFAULT_RING_BYTES / size))
            .accept_other_owner(self.any_owner)
            .barrier(self.barrier.into());
        if let Some(s) = schema {
            o = o.schema(s);
        }
        Ok(ChannelIo::<T>::create_or_open(self.name, o)?)
    }
}

fn progress(quiet: bool, total: Option<u64>, verb: &str) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} {spinner} {binary_bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(verb.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn send(a: SendArgs) -> Result<(), Fail> {
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
    // Whatever goes wrong, the reader must learn that the stream is incomplete: abort with
    // the reason (a plain close would look like a complete stream).
    match stream_in::<T>(&mut w, input, format, bar) {
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

fn stream_in<T>(
    w: &mut shmchan::WriterFront<T>,
    mut input: File,
    format: Format,
    bar: &ProgressBar,
) -> Result<(), Fail>
where
    T: Pod + FromStr,
{
    let type_name = Primitive::of::<T>().map_or("element", Primitive::name);
    match format {
        Format::Raw => {
            let size = std::mem::size_of::<T>();
            // Up to 1 MiB per read, and at most a quarter of the ring so the reader can
            // drain one part while we fill another.
            let chunk = ((1 << 20) / size).min(w.capacity() / 4).max(1);
            loop {
                let mut slots = w.blocking_reserve(chunk)?;
                let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut slots);
                let mut filled = 0;
                let mut end = Ok(false);
                // read(2) straight into the ring; publish after every read that ends on an
                // element boundary, so a slow producer's data flows at once.
                loop {
                    match input.read(&mut bytes[filled..]) {
                        Ok(0) => {
                            end = Ok(true);
                            break;
                        }
                        Ok(n) => {
                            filled += n;
                            if filled % size == 0 {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            end = Err(Fail::channel(format!("reading the input: {e}")));
                            break;
                        }
                    }
                }
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
        Format::Text => {
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
    }
}

fn recv(a: RecvArgs) -> Result<(), Fail> {
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
            Fail {
                code: 0,
                msg: String::new(),
            }
        } else {
            Fail::channel(format!("writing the output: {e}"))
        }
    })
}

fn flush_out(out: &mut impl Write) -> Result<(), Fail> {
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Fail {
            code: 0,
            msg: String::new(),
        }),
        Err(e) => Err(Fail::channel(format!("writing the output: {e}"))),
        Ok(()) => Ok(()),
    }
}

fn recv_typed<T>(
    target: &Target<'_>,
    schema: Option<String>,
    file: Option<&std::path::Path>,
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
    let raw = match file {
        Some(p) => File::create(p)
            .map_err(|e| Fail::channel(format!("cannot write {}: {e}", p.display())))?,
        None => File::from(
            io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Fail::channel(format!("stdout: {e}")))?,
        ),
    };
    let size = std::mem::size_of::<T>();
    let mut left = count.unwrap_or(u64::MAX);
    let mut raw = raw;
    let mut text = match format {
        Format::Text => Some(BufWriter::with_capacity(
            1 << 16,
            raw.try_clone().map_err(|e| Fail::channel(e.to_string()))?,
        )),
        Format::Raw => None,
    };
    let mut line = String::new();
    let end = loop {
        if left == 0 {
            break Ok(());
        }
        if let Some(out) = &mut text {
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
        match &mut text {
            // write(2) straight out of the ring.
            None => write_out(&mut raw, bytemuck::cast_slice(&view[..k]))?,
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

// ---------------------------------------------------------------------------------------
// ls / inspect

#[derive(serde::Serialize)]
struct EndJson {
    claims: u64,
    pid: Option<u32>,
    alive: bool,
}

#[derive(serde::Serialize)]
struct InfoJson {
    name: String,
    ok: bool,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<DetailJson>,
}

#[derive(serde::Serialize)]
struct DetailJson {
    path: String,
    owner_uid: u32,
    mode: String,
    version: u32,
    elem_type: Option<&'static str>,
    elem_size: u32,
    elem_align: u32,
    schema: Option<String>,
    capacity: u64,
    header_len: u32,
    data_len: u64,
    persist: bool,
    /// "fence" or "membarrier".
    barrier: &'static str,
    creator_pid: u32,
    /// Seconds since the Unix epoch (nanoseconds would exceed JSON's exact integers).
    created_unix: f64,
    tail: u64,
    head: u64,
    len: u64,
    writer: EndJson,
    reader: EndJson,
    writer_state: &'static str,
    abort_reason: Option<String>,
    reader_closed: bool,
    in_use: bool,
    state: &'static str,
}

fn end_json(e: &EndInfo) -> EndJson {
    EndJson {
        claims: e.claims,
        pid: e.pid,
        alive: e.held,
    }
}

/// One word for a channel's state.
fn state_word(i: &ChannelInfo) -> &'static str {
    if i.is_finished() {
        "finished"
    } else if matches!(i.writer_state, WriterState::Aborted(_)) {
        "aborted"
    } else if i.writer_state == WriterState::Closed {
        "closed"
    } else if !i.in_use && (i.writer.claims > 0 || i.reader.claims > 0) {
        "stale"
    } else if !i.in_use {
        "unused"
    } else {
        "open"
    }
}

fn detail(i: &ChannelInfo) -> DetailJson {
    DetailJson {
        path: i.dir.display().to_string(),
        owner_uid: i.owner_uid,
        mode: format!("{:04o}", i.mode),
        version: i.version,
        elem_type: i.elem_type.map(Primitive::name),
        elem_size: i.elem_size,
        elem_align: i.elem_align,
        schema: i.schema.clone(),
        capacity: i.capacity,
        header_len: i.header_len,
        data_len: i.data_len,
        persist: i.persist,
        barrier: if i.barrier == Barrier::Membarrier {
            "membarrier"
        } else {
            "fence"
        },
        creator_pid: i.creator_pid,
        created_unix: i.created_unix_ns as f64 / 1e9,
        tail: i.tail,
        head: i.head,
        len: i.len(),
        writer: end_json(&i.writer),
        reader: end_json(&i.reader),
        writer_state: match i.writer_state {
            WriterState::Open => "open",
            WriterState::Closed => "closed",
            WriterState::Aborted(_) => "aborted",
        },
        abort_reason: match &i.writer_state {
            WriterState::Aborted(r) => Some(r.clone()),
            _ => None,
        },
        reader_closed: i.reader_closed,
        in_use: i.in_use,
        state: state_word(i),
    }
}

fn to_json(name: &str, r: &Result<ChannelInfo, OpenError>) -> InfoJson {
    match r {
        Ok(i) => InfoJson {
            name: name.to_string(),
            ok: true,
            error: None,
            detail: Some(detail(i)),
        },
        Err(e) => InfoJson {
            name: name.to_string(),
            ok: false,
            error: Some(e.to_string()),
            detail: None,
        },
    }
}

fn end_cell(e: &EndInfo) -> String {
    match (e.pid, e.held) {
        (_, true) => format!("{} alive", e.pid.unwrap_or(0)),
        (Some(p), false) => format!("{p} gone"),
        (None, false) => "-".to_string(),
    }
}

fn ls(a: LsArgs) -> Result<(), Fail> {
    let all = ChannelIo::list().map_err(|e| {
        Fail::channel(format!(
            "cannot read {}: {e}",
            shmchan::base_dir().display()
        ))
    })?;
    if a.json {
        let v: Vec<InfoJson> = all.iter().map(|(n, r)| to_json(n, r)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(Fail::channel)?
        );
        return Ok(());
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<24} {:>5} {:>12} {:>12} {:>14} {:>14} {:<13}",
        "NAME", "TYPE", "CAPACITY", "FILL", "WRITER", "READER", "STATE"
    );
    for (name, r) in &all {
        let line = match r {
            Ok(i) => format!(
                "{:<24} {:>5} {:>12} {:>12} {:>14} {:>14} {:<13}",
                name,
                i.elem_type
                    .map_or_else(|| format!("{}B", i.elem_size), |t| t.name().to_string()),
                i.capacity,
                format!("{} ({}%)", i.len(), i.len() * 100 / i.capacity.max(1)),
                end_cell(&i.writer),
                end_cell(&i.reader),
                state_word(i),
            ),
            Err(e) => format!("{name:<24} unreadable: {e}"),
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<(), Fail> {
    let r = ChannelIo::inspect(&a.name);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&a.name, &r)).map_err(Fail::channel)?
        );
        return r.map(|_| ()).map_err(|e| Fail {
            code: 1,
            msg: format!("{e}"),
        });
    }
    let i = r?;
    let d = detail(&i);
    let created = UNIX_EPOCH + Duration::from_nanos(i.created_unix_ns);
    let age = created.elapsed().map(|a| a.as_secs()).unwrap_or(0);
    let end = |e: &EndJson| match (e.pid, e.alive) {
        (Some(p), true) => format!("pid {p}, alive ({} claims)", e.claims),
        (Some(p), false) => format!("pid {p}, not held ({} claims)", e.claims),
        (None, _) => "never claimed".to_string(),
    };
    println!("channel      {}", i.name);
    println!("path         {}", d.path);
    println!("owner        uid {}, mode {}", d.owner_uid, d.mode);
    println!("layout       version {}", d.version);
    println!(
        "elements     {} ({} bytes, aligned to {})",
        d.elem_type.unwrap_or("application type"),
        d.elem_size,
        d.elem_align
    );
    println!("schema       {}", d.schema.as_deref().unwrap_or("-"));
    println!(
        "ring         {} elements, {} bytes after a {}-byte header",
        d.capacity, d.data_len, d.header_len
    );
    println!(
        "fill         {} items (committed {}, consumed {})",
        d.len, d.tail, d.head
    );
    println!("writer       {}, {}", end(&d.writer), d.writer_state);
    if let Some(r) = &d.abort_reason {
        println!("abort reason {r}");
    }
    println!(
        "reader       {}, {}",
        end(&d.reader),
        if d.reader_closed { "closed" } else { "open" }
    );
    println!("in use       {}", if d.in_use { "yes" } else { "no" });
    println!("persist      {}", if d.persist { "yes" } else { "no" });
    println!("barrier      {}", d.barrier);
    println!("created      by pid {}, {age} s ago", d.creator_pid);
    println!("state        {}", d.state);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// rm / gc

fn holders(i: &ChannelInfo) -> String {
    let mut v = Vec::new();
    if i.writer.held {
        v.push(format!("writer pid {}", i.writer.pid.unwrap_or(0)));
    }
    if i.reader.held {
        v.push(format!("reader pid {}", i.reader.pid.unwrap_or(0)));
    }
    if v.is_empty() {
        "a live process has it open".to_string()
    } else {
        format!("held by a live {}", v.join(" and "))
    }
}

fn rm(a: RmArgs) -> Result<(), Fail> {
    for name in &a.names {
        if let Err(e) = shmchan::validate_name(name) {
            return Err(Fail::usage(format!("invalid channel name {name:?}: {e}")));
        }
    }
    let mut failed = false;
    for name in &a.names {
        let r = if a.force {
            match ChannelIo::remove(name) {
                Ok(()) => Ok(Removal::Removed),
                Err(shmchan::RemoveError::NotFound { .. }) => Ok(Removal::NotFound),
                Err(e) => Err(e),
            }
        } else {
            // Decided and removed under the channel's lock: nobody can open it in between.
            ChannelIo::remove_unused(name, |_| true)
        };
        match r {
            Ok(Removal::Removed) => {}
            Ok(Removal::NotFound) if a.force => {}
            Ok(Removal::NotFound) => {
                eprintln!(
                    "shmchan: channel '{name}' does not exist (no {})",
                    shmchan::channel_dir(name).display()
                );
                failed = true;
            }
            Ok(_) => {
                let who = ChannelIo::inspect(name)
                    .map(|i| holders(&i))
                    .unwrap_or_else(|_| "open in a live process".to_string());
                eprintln!("shmchan: channel '{name}' is {who}; stop it first, or use --force");
                failed = true;
            }
            Err(e) => {
                eprintln!("shmchan: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Fail::channel("")); // each failure was reported above
    }
    Ok(())
}

fn gc(a: GcArgs) -> Result<(), Fail> {
    let names: Vec<String> = ChannelIo::list()
        .map_err(|e| {
            Fail::channel(format!(
                "cannot read {}: {e}",
                shmchan::base_dir().display()
            ))
        })?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let me = rustix::process::geteuid().as_raw();
    let mut out = io::stdout().lock();
    let mut errors = 0;
    for name in &names {
        let mut why = String::new();
        let mut removable = false;
        // Decided under the channel's lock, on the header as it is then.
        let decide = |r: Result<&ChannelInfo, &OpenError>| {
            let keep = match r {
                Ok(i) if i.owner_uid != me && me != 0 => Some("another user's".to_string()),
                Ok(i) if i.persist && !a.all => {
                    Some(format!("persistent (use --all, or shmchan rm {name})"))
                }
                Ok(i) if i.has_undelivered() && !a.all => Some(format!(
                    "{} items{} wait for a reader (use --all)",
                    i.len(),
                    if i.writer_state == WriterState::Open {
                        ""
                    } else {
                        " and the end of stream"
                    }
                )),
                Ok(_) => None,
                Err(e) if !a.all => Some(format!("not a readable channel ({e}); use --all")),
                Err(_) => None,
            };
            match keep {
                Some(k) => {
                    why = k;
                    false
                }
                None => {
                    why = match r {
                        Ok(i) => state_word(i).to_string(),
                        Err(_) => "not a readable channel".to_string(),
                    };
                    removable = true;
                    !a.dry_run
                }
            }
        };
        let r = ChannelIo::remove_unused(name, decide);
        let line = match r {
            Ok(Removal::Removed) => format!("removed {name} ({why})"),
            Ok(Removal::Kept) if removable => {
                format!("would remove {name} ({why})")
            }
            Ok(Removal::Kept) => format!("kept    {name}: {why}"),
            Ok(Removal::InUse) => format!("kept    {name}: open in a live process"),
            Ok(Removal::NotFound) | Ok(_) => continue,
            Err(e) => {
                eprintln!("shmchan: {e}");
                errors += 1;
                continue;
            }
        };
        if writeln!(out, "{line}").is_err() {
            return Ok(());
        }
    }
    for dir in ChannelIo::leftovers().unwrap_or_default() {
        if a.dry_run {
            let _ = writeln!(
                out,
                "would remove {} (left by a killed process)",
                dir.display()
            );
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                let _ = writeln!(out, "removed {} (left by a killed process)", dir.display());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!("shmchan: removing {}: {e}", dir.display());
                errors += 1;
            }
        }
    }
    if errors > 0 {
        return Err(Fail::channel(format!("{errors} removals failed")));
    }
    Ok(())
}
