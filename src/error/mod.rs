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
    /// The element description ([`Options::descr`](crate::Options::descr)) is not one
    /// [`Descr::parse`](crate::Descr::parse) reads, or does not fit the element type (another
    /// size, or not a primitive's own description).
    InvalidDescr,
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
    /// The channel holds elements of another size or alignment than this side's, or both
    /// sides describe their elements and the descriptions differ (a primitive always has
    /// its own); [`Context::Element`] has both.
    ElementMismatch,
    /// The channel's schema tag differs from this side's ([`Options::schema`](crate::Options::schema)).
    SchemaMismatch,
    /// `create_or_open` was asked for a capacity ([`Options::capacity`](crate::Options::capacity)),
    /// and the channel that exists has another than a create with that request would make;
    /// [`Context::Capacity`] has both. Open it without asking for a capacity to use it as it
    /// is, or remove it to create it anew.
    CapacityMismatch,
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
    /// This end was claimed by another process, and this one inherited it through `fork`
    /// (without exec); or, when claiming, the channel handle was opened by another process
    /// and inherited the same way. An inherited end cannot be used: its positions are the
    /// claimant's as of the fork, and the claimant still owns it (its
    /// [pid](Error::pid) is in [`Context::Holder`]). Open the channel by name in this
    /// process and claim an end of its own.
    ///
    /// Dropping (or closing) an inherited end does nothing to the channel: the stream is
    /// not closed, and the claimant keeps its end.
    Forked,
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
    /// The element layout this side has and the one the channel records: sizes,
    /// alignments and descriptions.
    Element {
        /// This side's element type name.
        type_name: &'static str,
        /// This side's element size.
        expected_size: u32,
        /// This side's element alignment.
        expected_align: u32,
        /// This side's element description (canonical), if it has one.
        expected_descr: Option<String>,
        /// The channel's element size.
        found_size: u32,
        /// The channel's element alignment.
        found_align: u32,
        /// The channel's element type, if it is a [`Primitive`](crate::Primitive).
        found_type: Option<&'static str>,
        /// The channel's element description, if its creator gave one.
        found_descr: Option<String>,
    },
    /// The schema tag this side expects and the one the channel has.
    Schema {
        /// This side's tag.
        expected: Option<String>,
        /// The channel's tag.
        found: Option<String>,
    },
    /// The capacity this side asked for and the one the channel has
    /// ([`ErrorKind::CapacityMismatch`]), in elements.
    Capacity {
        /// What this side asked for.
        requested: u64,
        /// What a create with that request makes: rounded up to whole pages.
        rounded: u64,
        /// The channel's capacity.
        found: u64,
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
    /// The end asked for and its holder ([`ErrorKind::EndTaken`]), or the end used and the
    /// process that claimed it ([`ErrorKind::Forked`]).
    Holder {
        /// Which end.
        end: End,
        /// The holder's pid: as recorded in the segment, or the claimant's.
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
    /// A message longer than a message channel takes ([`ErrorKind::Oversized`]).
    MessageLimit {
        /// The message's length in bytes.
        len: usize,
        /// The longest message the channel takes, in bytes.
        max: usize,
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
        // A claim refused because the channel is closed (`Context::ClosedBy`) is no get.
        self.0.end == Some(End::Reader)
            && !matches!(self.0.context, Context::ClosedBy(_))
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

    /// The holder's pid: for [`ErrorKind::EndTaken`], when the segment records it; for
    /// [`ErrorKind::Forked`], the process that claimed the end.
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
            | ErrorKind::InvalidDescr
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

mod display;
#[cfg(test)]
mod tests;
