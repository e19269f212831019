//! [`Error`]: why a call on a channel failed, as a kind to match on plus what the call knew.
//!
//! One type for every operation (opening, claiming an end, putting, getting, removing), as
//! [`std::io::Error`] is one type for every system call: [`Error::kind`] says what went
//! wrong, [`Error::context`] carries the facts that go with that kind (a path, the two
//! element layouts, the holder's pid, the writer's reason), and the progress counts
//! ([`accepted`](Error::accepted), [`filled`](Error::filled), [`remaining`](Error::remaining))
//! say how much of the call was done. Its `Display` states the facts in plain words and
//! names no API of any front; the fronts (the CLI, the Python package) add their own hints
//! from the kind.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::header::End;

/// What went wrong, for matching. Each front words its own advice from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The channel name is empty, too long, or has characters other than `A-Z a-z 0-9 _ . -`.
    InvalidName,
    /// Capacity 0, or a ring larger than [`MAX_DATA_LEN`](crate::MAX_DATA_LEN) bytes.
    InvalidCapacity,
    /// The schema tag is longer than [`SCHEMA_MAX`](crate::SCHEMA_MAX) bytes or has a NUL.
    InvalidSchema,
    /// The element type cannot live in a channel (zero-sized, or aligned beyond a page).
    UnsupportedElement,
    /// Creating found a channel (or another file) under that name. Open it instead, or
    /// remove it first ([`ChannelIo::remove`](crate::ChannelIo::remove)).
    AlreadyExists,
    /// Opening (or removing) found no channel under that name.
    NotFound,
    /// The channel's files belong to another user, or their mode refuses this one (create
    /// the channel with a wider [`Options::mode`](crate::Options::mode)).
    PermissionDenied,
    /// The channel belongs to another user (not root). Anyone can create a name in
    /// `/dev/shm`, so opening another user's channel is refused unless asked for with
    /// [`Options::accept_other_owner`](crate::Options::accept_other_owner).
    ForeignOwner,
    /// The channel holds elements of another size or alignment (or primitive kind) than
    /// this side's; [`Context::Element`] has both.
    ElementMismatch,
    /// The channel's schema tag differs from this side's ([`Options::schema`](crate::Options::schema)).
    SchemaMismatch,
    /// The segment file is smaller than a header.
    TooSmall,
    /// The file under the channel's name is not a shmchan segment.
    NotAChannel,
    /// The segment has another layout version than this build reads.
    VersionMismatch,
    /// The segment was made by a build of another endianness or pointer width.
    AbiMismatch,
    /// The segment's header is all zeros: its creator never finished. Remove it.
    NotInitialized,
    /// A field or index of the segment makes no sense: no correct peer writes it. A corrupt
    /// or hostile peer can cause this; it never causes an access outside the mapping.
    Corrupted,
    /// The shared-memory file system has no room for the ring.
    NoSpace,
    /// The channel uses [`Barrier::Membarrier`](crate::Barrier::Membarrier) (or it was asked
    /// for at creation), and this process may not use `membarrier(2)`: a kernel before
    /// 4.16, a 5.4–5.11 kernel without the fix of its membarrier registration bug (5.4.106,
    /// 5.10.24, 5.11.7), or a seccomp filter that forbids the call. Channels created with
    /// [`Barrier::Fence`](crate::Barrier::Fence) work in such a sandbox.
    MembarrierUnavailable,
    /// Another live holder has this end: in another process (its [pid](Error::pid) when
    /// known) or in this one.
    EndTaken,
    /// The channel is closed: for a `put`, by its reader; for a `get`, by its writer (fewer
    /// items than asked for remain); for claiming an end, by either, and a closed channel
    /// takes no new end (remove it and create a new one).
    Closed,
    /// The writer aborted with a [reason](Error::reason), and fewer items remain than were
    /// asked for.
    Aborted,
    /// The peer's process died while this call waited. A `put` reports it once per dead
    /// reader, and a later `put` waits for a new reader. A `get` reports it while the dead
    /// writer's items remain and a call cannot be satisfied (drain them with `get_some`),
    /// then once more with nothing remaining; a later call waits for a new writer.
    PeerGone,
    /// The wait lasted longer than the end's `set_timeout` allows. Nothing was removed
    /// (except the filled prefix of a `get` larger than the ring); the call can be made again.
    TimedOut,
    /// More items (or slots) were asked for at once than the ring holds.
    Oversized,
    /// This end was already closed.
    EndClosed,
    /// A raw end's buffer is not a whole number of elements (a
    /// [`RawChannel`](crate::RawChannel)'s slices are bytes).
    PartialElement,
    /// Any other system error; [`Error::source`](std::error::Error::source) has it.
    Io,
}

/// The facts that go with an error's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Context {
    /// Nothing beyond the kind and the channel.
    None,
    /// A value the caller gave (a name, a capacity, a schema tag, an element type), and why
    /// it is refused.
    Invalid {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file or directory concerned.
    Path(PathBuf),
    /// A segment file too small to be one.
    TooSmall {
        /// The segment file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The least a segment has.
        needed: u64,
    },
    /// Who owns the channel, and who we are.
    Owner {
        /// The owner of the channel's directory.
        owner: u32,
        /// Our effective uid.
        uid: u32,
    },
    /// The element layout this side has and the one the channel records.
    Element {
        /// This side's element type name.
        type_name: &'static str,
        /// This side's element size.
        expected_size: u32,
        /// This side's element alignment.
        expected_align: u32,
        /// The channel's element size.
        found_size: u32,
        /// The channel's element alignment.
        found_align: u32,
        /// The channel's element type, if it is a [`Primitive`](crate::Primitive).
        found_type: Option<&'static str>,
    },
    /// The schema tag this side expects and the one the channel has.
    Schema {
        /// This side's tag.
        expected: Option<String>,
        /// The channel's tag.
        found: Option<String>,
    },
    /// A version (or ABI word) found and the one this build has.
    Version {
        /// The segment's.
        found: u32,
        /// This build's.
        supported: u32,
    },
    /// A field that makes no sense.
    Field {
        /// The header field (or index) refused.
        field: &'static str,
        /// What was found there.
        detail: String,
    },
    /// Room the ring needs, and where.
    Space {
        /// Bytes the segment needs.
        bytes: u64,
        /// The directory (normally `/dev/shm`).
        dir: PathBuf,
    },
    /// The end asked for and its holder.
    Holder {
        /// Which end.
        end: End,
        /// The holder's pid as recorded in the segment.
        pid: Option<u32>,
    },
    /// The end that closed the channel.
    ClosedBy(End),
    /// The writer's reason for aborting.
    Reason(String),
    /// A request larger than the ring.
    Limit {
        /// Items or slots asked for.
        requested: usize,
        /// The ring's capacity.
        capacity: usize,
    },
    /// A byte buffer that is not a whole number of elements.
    Partial {
        /// The buffer's length in bytes.
        len: usize,
        /// The channel's element size in bytes.
        element_size: usize,
    },
    /// What was being done when a system call failed, and on which file if one.
    Op {
        /// What was being done.
        op: &'static str,
        /// The file, if one.
        path: Option<PathBuf>,
    },
}

/// Why a call on a channel failed.
///
/// Match on [`kind`](Self::kind); read the facts from [`context`](Self::context) or the
/// accessors; after a `put`, [`accepted`](Self::accepted) items of the call were put (a
/// prefix: resend the rest), and after a `get`, [`filled`](Self::filled) items are already
/// in the buffer and [`remaining`](Self::remaining) are still in the channel.
///
/// ```
/// use shmchan::{ChannelIo, ErrorKind, Options};
/// # let name = format!("doc-error-{}", std::process::id());
/// let chan = ChannelIo::<u32>::create(&name, Options::new())?;
/// let mut w = chan.writer()?;
/// let mut r = chan.reader()?;
/// w.blocking_put(&[1, 2])?;
/// w.close();
/// let mut three = [0u32; 3];
/// let e = r.blocking_get(&mut three).unwrap_err();
/// assert_eq!(e.kind(), ErrorKind::Closed);
/// assert_eq!((e.remaining(), e.filled()), (2, 0)); // nothing removed
/// assert_eq!(e.channel(), name);
/// # Ok::<(), shmchan::Error>(())
/// ```
pub struct Error(Box<Repr>);

struct Repr {
    kind: ErrorKind,
    channel: String,
    context: Context,
    /// The end whose call failed: the writer's (a put) or the reader's (a get), or the end
    /// being claimed; `None` for opening and removing.
    end: Option<End>,
    /// Items of the call already done: accepted by a put, filled in by a get.
    done: usize,
    /// Items still in the channel (a get).
    remaining: usize,
    source: Option<io::Error>,
}

impl Error {
    /// An error of `kind` on channel `channel`, with no context yet. The library makes its
    /// own; a front that waits in a loop of its own makes the errors its loop ends with
    /// (a deadline that passed, a request larger than the ring), so that its users see one
    /// kind of error.
    ///
    /// ```
    /// use shmchan::{End, Error, ErrorKind};
    /// let e = Error::new(ErrorKind::TimedOut, "imu").by(End::Writer).with_progress(12);
    /// assert_eq!(e.accepted(), 12);
    /// assert_eq!(e.to_string(), "channel 'imu': timed out waiting for room; 12 items of this put were accepted");
    /// ```
    #[cold]
    pub fn new(kind: ErrorKind, channel: &str) -> Error {
        Error(Box::new(Repr {
            kind,
            channel: channel.to_string(),
            context: Context::None,
            end: None,
            done: 0,
            remaining: 0,
            source: None,
        }))
    }

    /// A system error while doing `op` on channel `channel`.
    #[cold]
    pub(crate) fn io(channel: &str, op: &'static str, source: io::Error) -> Error {
        Error::new(ErrorKind::Io, channel)
            .with_context(Context::Op { op, path: None })
            .with_source(source)
    }

    /// An error of `kind` about file `path` of channel `channel`.
    #[cold]
    pub(crate) fn at(kind: ErrorKind, channel: &str, path: impl Into<PathBuf>) -> Error {
        Error::new(kind, channel).with_context(Context::Path(path.into()))
    }

    /// A value given for channel `channel` that `kind` refuses, and why.
    #[cold]
    pub(crate) fn invalid(
        kind: ErrorKind,
        channel: &str,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Error {
        Error::new(kind, channel).with_context(Context::Invalid {
            value: value.to_string(),
            reason: reason.into(),
        })
    }

    /// A field or index of channel `channel` that makes no sense.
    #[cold]
    pub(crate) fn corrupted(channel: &str, field: &'static str, detail: String) -> Error {
        Error::new(ErrorKind::Corrupted, channel).with_context(Context::Field { field, detail })
    }

    /// With the facts that go with its kind.
    #[must_use]
    pub fn with_context(mut self, context: Context) -> Error {
        self.0.context = context;
        self
    }

    /// With the system error that caused it.
    #[must_use]
    pub fn with_source(mut self, source: io::Error) -> Error {
        self.0.source = Some(source);
        self
    }

    /// The error of a call made by `end`'s front: a put for the writer, a get for the
    /// reader (or of claiming that end).
    #[must_use]
    pub fn by(mut self, end: End) -> Error {
        self.0.end = Some(end);
        self
    }

    /// With `remaining` items still in the channel.
    #[must_use]
    pub fn with_remaining(mut self, remaining: usize) -> Error {
        self.0.remaining = remaining;
        self
    }

    /// Counts `n` more items of the failed call as done: accepted by a put, filled in by a
    /// get. For a front that makes one call of several smaller ones (as a `get` into a
    /// buffer larger than the ring does, or a front of another language that waits in its own
    /// loop): the error of the last part then tells the whole call's progress.
    #[must_use]
    pub fn with_progress(mut self, n: usize) -> Error {
        self.0.done += n;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The channel's name (as given, for [`ErrorKind::InvalidName`]).
    pub fn channel(&self) -> &str {
        &self.0.channel
    }

    /// The facts that go with the kind.
    pub fn context(&self) -> &Context {
        &self.0.context
    }

    /// The end whose call failed (the writer's for a put, the reader's for a get), or the
    /// end being claimed; `None` for opening and removing.
    pub fn end(&self) -> Option<End> {
        self.0.end
    }

    /// Items of a failed put that were put before it failed (a prefix of its slice).
    pub fn accepted(&self) -> usize {
        match self.0.end {
            Some(End::Writer) => self.0.done,
            _ => 0,
        }
    }

    /// Items of a failed get already copied into its buffer (only a `get` into a buffer
    /// larger than the ring, or a front's own loop, fills some before it fails).
    pub fn filled(&self) -> usize {
        match self.0.end {
            Some(End::Reader) => self.0.done,
            _ => 0,
        }
    }

    /// Items still in the channel when a get failed (they stay readable, e.g. with
    /// `get_some`).
    pub fn remaining(&self) -> usize {
        self.0.remaining
    }

    /// True if the writer ended the stream (closed, aborted or died) and a get failed for
    /// it: no more items will come beyond the [`remaining`](Self::remaining) ones.
    pub fn is_end_of_stream(&self) -> bool {
        self.0.end == Some(End::Reader)
            && matches!(
                self.0.kind,
                ErrorKind::Closed | ErrorKind::Aborted | ErrorKind::PeerGone
            )
    }

    /// The writer's reason, for [`ErrorKind::Aborted`].
    pub fn reason(&self) -> Option<&str> {
        match &self.0.context {
            Context::Reason(r) => Some(r),
            _ => None,
        }
    }

    /// The holder's pid, for [`ErrorKind::EndTaken`], when the segment records it.
    pub fn pid(&self) -> Option<u32> {
        match self.0.context {
            Context::Holder { pid, .. } => pid,
            _ => None,
        }
    }

    /// The file concerned, if the error names one.
    pub fn path(&self) -> Option<&Path> {
        match &self.0.context {
            Context::Path(p) | Context::TooSmall { path: p, .. } => Some(p),
            Context::Space { dir, .. } => Some(dir),
            Context::Op { path, .. } => path.as_deref(),
            _ => None,
        }
    }

    /// The operation's word for the failed call, by the end that made it.
    fn call(&self) -> &'static str {
        match self.0.end {
            Some(End::Writer) => "put",
            _ => "get",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.0;
        let mut d = f.debug_struct("Error");
        d.field("kind", &r.kind).field("channel", &r.channel);
        if r.context != Context::None {
            d.field("context", &r.context);
        }
        if let Some(end) = r.end {
            d.field("end", &end);
        }
        if r.done != 0 {
            d.field("done", &r.done);
        }
        if r.remaining != 0 {
            d.field("remaining", &r.remaining);
        }
        if let Some(s) = &r.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for io::Error {
    /// The error as an `io::Error` of the nearest kind, for code that speaks `io::Result`
    /// (a system error keeps its own kind); the message and the shmchan error (as the
    /// source) stay with it.
    fn from(e: Error) -> io::Error {
        let kind = match e.kind() {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied | ErrorKind::ForeignOwner => {
                io::ErrorKind::PermissionDenied
            }
            ErrorKind::InvalidName
            | ErrorKind::InvalidCapacity
            | ErrorKind::InvalidSchema
            | ErrorKind::UnsupportedElement
            | ErrorKind::Oversized
            | ErrorKind::PartialElement => io::ErrorKind::InvalidInput,
            ErrorKind::TimedOut => io::ErrorKind::TimedOut,
            ErrorKind::Closed | ErrorKind::Aborted | ErrorKind::PeerGone => {
                io::ErrorKind::BrokenPipe
            }
            ErrorKind::NoSpace => io::ErrorKind::StorageFull,
            ErrorKind::Corrupted | ErrorKind::NotAChannel | ErrorKind::TooSmall => {
                io::ErrorKind::InvalidData
            }
            ErrorKind::Io => {
                e.0.source
                    .as_ref()
                    .map_or(io::ErrorKind::Other, io::Error::kind)
            }
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// A schema tag as the messages show it.
struct Tag<'a>(&'a Option<String>);

impl fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "{t:?}"),
            None => f.write_str("no tag"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            ErrorKind::EndTaken
            | ErrorKind::Closed
            | ErrorKind::Aborted
            | ErrorKind::PeerGone
            | ErrorKind::TimedOut
            | ErrorKind::Oversized
            | ErrorKind::EndClosed
            | ErrorKind::PartialElement => self.fmt_call(f),
            _ => self.fmt_channel(f),
        }
    }
}

impl Error {
    /// The message of an error in opening, creating or removing a channel.
    fn fmt_channel(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.0;
        let name = &r.channel;
        let source = r.source.as_ref().map(|s| s.to_string()).unwrap_or_default();
        match (r.kind, &r.context) {
            (ErrorKind::InvalidName, Context::Invalid { reason, .. }) => {
                write!(f, "invalid channel name {name:?}: {reason}")
            }
            (ErrorKind::InvalidCapacity, Context::Invalid { value, reason }) => {
                write!(f, "channel '{name}': invalid capacity {value}: {reason}")
            }
            (ErrorKind::InvalidSchema, Context::Invalid { value, reason }) => {
                write!(
                    f,
                    "channel '{name}': invalid schema tag {value:?}: {reason}"
                )
            }
            (ErrorKind::UnsupportedElement, Context::Invalid { value, reason }) => write!(
                f,
                "channel '{name}': element type {value} is not supported: {reason}"
            ),
            (ErrorKind::AlreadyExists, Context::Path(p)) => {
                write!(f, "channel '{name}' already exists ({})", p.display())
            }
            (ErrorKind::NotFound, Context::Path(p)) => {
                write!(f, "channel '{name}' does not exist (no {})", p.display())
            }
            (ErrorKind::PermissionDenied, Context::Path(p)) => write!(
                f,
                "channel '{name}': permission denied on {}; it belongs to another user or its \
                 mode refuses this one",
                p.display()
            ),
            (ErrorKind::ForeignOwner, Context::Owner { owner, uid }) => write!(
                f,
                "channel '{name}' belongs to uid {owner}, not to this user (uid {uid})"
            ),
            (
                ErrorKind::ElementMismatch,
                Context::Element {
                    type_name,
                    expected_size,
                    expected_align,
                    found_size,
                    found_align,
                    found_type,
                },
            ) => write!(
                f,
                "channel '{name}' holds {} of {found_size} bytes aligned to {found_align}, but \
                 this side's element type {type_name} has {expected_size} bytes aligned to \
                 {expected_align}",
                found_type.map_or("elements".to_string(), |t| format!("{t} elements"))
            ),
            (ErrorKind::SchemaMismatch, Context::Schema { expected, found }) => write!(
                f,
                "channel '{name}' has schema tag {}, but this side expects {}",
                Tag(found),
                Tag(expected)
            ),
            (ErrorKind::TooSmall, Context::TooSmall { path, size, needed }) => write!(
                f,
                "channel '{name}': segment {} has {size} bytes, fewer than the {needed} of a \
                 header",
                path.display()
            ),
            (ErrorKind::NotAChannel, Context::Path(p)) => write!(
                f,
                "channel '{name}': {} is not a shmchan segment",
                p.display()
            ),
            (ErrorKind::VersionMismatch, Context::Version { found, supported }) => write!(
                f,
                "channel '{name}' has layout version {found}; this build of shmchan reads \
                 version {supported}"
            ),
            (ErrorKind::AbiMismatch, Context::Version { found, supported }) => write!(
                f,
                "channel '{name}' was created by a build with ABI word {found:#x}; this \
                 build's is {supported:#x}"
            ),
            (ErrorKind::NotInitialized, _) => write!(
                f,
                "channel '{name}' is not initialised (its creator did not finish)"
            ),
            (ErrorKind::Corrupted, Context::Field { field, detail }) => {
                write!(f, "channel '{name}' is corrupted: {field}: {detail}")
            }
            (ErrorKind::NoSpace, Context::Space { bytes, dir }) => write!(
                f,
                "not enough shared memory for channel '{name}': {bytes} bytes do not fit in {} \
                 ({source}); free space there or ask for a smaller capacity; in a container, \
                 raise its size (docker run --shm-size)",
                dir.display()
            ),
            (ErrorKind::MembarrierUnavailable, _) => write!(
                f,
                "channel '{name}' needs membarrier(2), which this process cannot use \
                 ({source}); a channel created with fences instead works here"
            ),
            _ => self.fmt_other(f),
        }
    }

    /// The message of an error in a call of an end: claiming it, a put, a get.
    fn fmt_call(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.0;
        let name = &r.channel;
        match (r.kind, &r.context) {
            (ErrorKind::EndTaken, Context::Holder { end, pid }) => {
                write!(f, "channel '{name}': the {end} end is held by ")?;
                match pid {
                    Some(p) => write!(f, "a live process (pid {p})"),
                    None => f.write_str("a live holder"),
                }
            }
            (ErrorKind::Closed, Context::ClosedBy(by)) => write!(
                f,
                "channel '{name}' was closed by its {by}; remove it and create a new one"
            ),
            (ErrorKind::Closed, _) if r.end == Some(End::Writer) => write!(
                f,
                "channel '{name}': the reader closed the channel; {} items of this put were \
                 accepted",
                r.done
            ),
            (ErrorKind::Closed, _) => write!(
                f,
                "channel '{name}': the writer closed the channel; {} items remain, {} were \
                 filled in",
                r.remaining, r.done
            ),
            (ErrorKind::Aborted, Context::Reason(reason)) => write!(
                f,
                "channel '{name}': the writer aborted: {reason}; {} items remain, {} were \
                 filled in",
                r.remaining, r.done
            ),
            (ErrorKind::PeerGone, _) if r.end == Some(End::Writer) => write!(
                f,
                "channel '{name}': the reader's process died; {} items of this put were \
                 accepted",
                r.done
            ),
            (ErrorKind::PeerGone, _) => write!(
                f,
                "channel '{name}': the writer's process died; {} items remain, {} were filled \
                 in",
                r.remaining, r.done
            ),
            (ErrorKind::TimedOut, _) if r.end == Some(End::Writer) => write!(
                f,
                "channel '{name}': timed out waiting for room; {} items of this put were \
                 accepted",
                r.done
            ),
            (ErrorKind::TimedOut, _) => write!(
                f,
                "channel '{name}': timed out; {} items are there, {} were filled in",
                r.remaining, r.done
            ),
            (
                ErrorKind::Oversized,
                Context::Limit {
                    requested,
                    capacity,
                },
            ) => write!(
                f,
                "channel '{name}': {requested} {} asked for at once, but the ring holds \
                 {capacity}",
                if r.end == Some(End::Writer) {
                    "slots"
                } else {
                    "items"
                }
            ),
            (ErrorKind::EndClosed, _) => write!(
                f,
                "channel '{name}': this {} is closed",
                r.end.unwrap_or(End::Writer)
            ),
            (ErrorKind::PartialElement, Context::Partial { len, element_size }) => write!(
                f,
                "channel '{name}': {len} bytes are not a whole number of {element_size}-byte \
                 elements"
            ),
            _ => self.fmt_other(f),
        }
    }

    /// The message of a system error, or of a kind with a context it is never built with.
    fn fmt_other(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.0;
        let name = &r.channel;
        let source = r.source.as_ref().map(|s| s.to_string()).unwrap_or_default();
        match (r.kind, &r.context) {
            (_, Context::Op { op, path: Some(p) }) => {
                write!(f, "channel '{name}': {op} {}: {source}", p.display())
            }
            (_, Context::Op { op, path: None }) => write!(f, "channel '{name}': {op}: {source}"),
            // A kind with a context it is never built with: still say what is known.
            (kind, context) => {
                write!(f, "channel '{name}': {kind:?} in a {}", self.call())?;
                if *context != Context::None {
                    write!(f, " ({context:?})")?;
                }
                if r.source.is_some() {
                    write!(f, ": {source}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Context, Error, ErrorKind};
    use crate::header::End;

    /// One error of each kind, with the context the library builds it with.
    fn one_of_each() -> Vec<Error> {
        let path = || Context::Path(PathBuf::from("/dev/shm/shmchan.x"));
        let invalid = || Context::Invalid {
            value: "v".into(),
            reason: "why".into(),
        };
        let io = || std::io::Error::from_raw_os_error(1);
        let mut all = vec![
            Error::new(ErrorKind::InvalidName, "x").with_context(invalid()),
            Error::new(ErrorKind::InvalidCapacity, "x").with_context(invalid()),
            Error::new(ErrorKind::InvalidSchema, "x").with_context(invalid()),
            Error::new(ErrorKind::UnsupportedElement, "x").with_context(invalid()),
            Error::new(ErrorKind::AlreadyExists, "x").with_context(path()),
            Error::new(ErrorKind::NotFound, "x").with_context(path()),
            Error::new(ErrorKind::PermissionDenied, "x").with_context(path()),
            Error::new(ErrorKind::NotAChannel, "x").with_context(path()),
            Error::new(ErrorKind::ForeignOwner, "x")
                .with_context(Context::Owner { owner: 1, uid: 2 }),
            Error::new(ErrorKind::SchemaMismatch, "x").with_context(Context::Schema {
                expected: Some("imu/v1".into()),
                found: None,
            }),
            Error::new(ErrorKind::NotInitialized, "x"),
            Error::new(ErrorKind::NoSpace, "x")
                .with_context(Context::Space {
                    bytes: 1,
                    dir: "/dev/shm".into(),
                })
                .with_source(io()),
            Error::new(ErrorKind::MembarrierUnavailable, "x").with_source(io()),
            Error::io("x", "opening", io()),
        ];
        for end in [End::Writer, End::Reader] {
            all.extend([
                Error::new(ErrorKind::EndTaken, "x")
                    .with_context(Context::Holder { end, pid: Some(7) })
                    .by(end),
                Error::new(ErrorKind::Closed, "x")
                    .with_context(Context::ClosedBy(end))
                    .by(end),
                Error::new(ErrorKind::Closed, "x").by(end),
                Error::new(ErrorKind::PeerGone, "x").by(end),
                Error::new(ErrorKind::TimedOut, "x").by(end),
                Error::new(ErrorKind::EndClosed, "x").by(end),
            ]);
        }
        all
    }

    /// The library's messages state facts: no front's API (a Rust path, a builder, an
    /// `Option`'s debug form), which each front adds in its own words.
    #[test]
    fn messages_name_no_api_of_any_front() {
        for e in one_of_each() {
            let msg = e.to_string();
            for word in ["::", "Options", "Some(", "None", "(true)", "Barrier", "`"] {
                assert!(!msg.contains(word), "{msg:?} contains {word:?}");
            }
            assert!(msg.contains("'x'") || msg.contains("\"x\""), "{msg:?}");
        }
    }

    /// Progress is counted as the end's: accepted by a put, filled in by a get.
    #[test]
    fn progress_is_the_calls() {
        let put = Error::new(ErrorKind::PeerGone, "x")
            .by(End::Writer)
            .with_progress(3)
            .with_progress(4);
        assert_eq!((put.accepted(), put.filled()), (7, 0));
        assert!(put
            .to_string()
            .contains("7 items of this put were accepted"));
        let get = Error::new(ErrorKind::Closed, "x")
            .by(End::Reader)
            .with_remaining(2)
            .with_progress(5);
        assert_eq!((get.accepted(), get.filled(), get.remaining()), (0, 5, 2));
        assert!(get.is_end_of_stream());
        assert!(!put.is_end_of_stream());
    }

    /// As an `io::Error`: the nearest kind, and the shmchan error inside.
    #[test]
    fn converts_to_io_errors() {
        let e: std::io::Error = Error::new(ErrorKind::NotFound, "x").into();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let inner = e.into_inner().unwrap().downcast::<Error>().unwrap();
        assert_eq!(inner.kind(), ErrorKind::NotFound);
        // A system error keeps its kind.
        let os = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e: std::io::Error = Error::io("x", "opening", os).into();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
