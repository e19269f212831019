//! Error types, one per operation: opening a channel, claiming an end, putting, getting.
//!
//! Every message names the channel and, where there is one, says what to do about it.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::header::End;

/// A segment's contents make no sense: a field or index that no correct peer writes.
///
/// A corrupt or hostile peer can cause this; it never causes an access outside the mapping.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("channel '{name}' is corrupted: {field}: {detail}")]
pub struct Corruption {
    /// The channel's name.
    pub name: String,
    /// The header field (or index) that was refused.
    pub field: &'static str,
    /// What was found there.
    pub detail: String,
}

/// Why [`ChannelIo::create`](crate::ChannelIo::create), [`open`](crate::ChannelIo::open) or
/// [`create_or_open`](crate::ChannelIo::create_or_open) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is empty, too long, or has characters other than `A-Z a-z 0-9 _ . -`.
    #[error("invalid channel name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Capacity 0, or a ring larger than [`MAX_DATA_LEN`](crate::MAX_DATA_LEN) bytes.
    #[error("channel '{name}': invalid capacity {requested}: {reason}")]
    InvalidCapacity {
        /// The channel's name.
        name: String,
        /// The capacity asked for, in elements.
        requested: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The element type cannot live in a channel (zero-sized, or aligned beyond a page).
    #[error("channel '{name}': element type {type_name} is not supported: {reason}")]
    UnsupportedElement {
        /// The channel's name.
        name: String,
        /// `std::any::type_name` of the element type.
        type_name: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The schema tag is longer than [`SCHEMA_MAX`](crate::SCHEMA_MAX) bytes or has a NUL.
    #[error("channel '{name}': invalid schema tag {schema:?}: {reason}")]
    InvalidSchema {
        /// The channel's name.
        name: String,
        /// The tag as given.
        schema: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `create` found a channel (or another file) under that name.
    #[error(
        "channel '{name}' already exists ({path}); open it instead, or remove it first (`ChannelIo::remove`)"
    )]
    AlreadyExists {
        /// The channel's name.
        name: String,
        /// The path that exists.
        path: PathBuf,
    },
    /// `open` found no channel under that name.
    #[error("channel '{name}' does not exist (no {path}); create it first or check the name")]
    NotFound {
        /// The channel's name.
        name: String,
        /// The path that was looked for.
        path: PathBuf,
    },
    /// The segment or its directory belongs to another user, or its mode refuses us.
    #[error(
        "channel '{name}': permission denied on {path}; it belongs to another user or its mode \
         refuses this one (create it with a wider `Options::mode`)"
    )]
    PermissionDenied {
        /// The channel's name.
        name: String,
        /// The path that refused.
        path: PathBuf,
    },
    /// The channel belongs to another user (not root). Anyone can create a name in
    /// `/dev/shm`, so opening another user's channel is refused unless asked for with
    /// [`Options::accept_other_owner`](crate::Options::accept_other_owner).
    #[error(
        "channel '{name}' belongs to uid {owner}, not to this user (uid {uid}); if you mean to \
         share it, open it with Options::accept_other_owner(true)"
    )]
    ForeignOwner {
        /// The channel's name.
        name: String,
        /// The owner of the channel's directory.
        owner: u32,
        /// Our effective uid.
        uid: u32,
    },
    /// The segment holds elements of another size or alignment than `T`.
    #[error(
        "channel '{name}' holds {} of {found_size} bytes aligned to {found_align}, \
         but this side's element type {type_name} has {expected_size} bytes aligned to {expected_align}",
        found_type.map_or("elements".to_string(), |t| format!("{t} elements"))
    )]
    ElementMismatch {
        /// The channel's name.
        name: String,
        /// `std::any::type_name::<T>()` on this side.
        type_name: &'static str,
        /// `size_of::<T>()` on this side.
        expected_size: u32,
        /// `align_of::<T>()` on this side.
        expected_align: u32,
        /// Element size recorded in the segment.
        found_size: u32,
        /// Element alignment recorded in the segment.
        found_align: u32,
        /// The segment's element type, if it is a [`Primitive`](crate::Primitive).
        found_type: Option<&'static str>,
    },
    /// The segment's schema tag differs from this side's ([`Options::schema`](crate::Options::schema)).
    #[error("channel '{name}' has schema tag {found:?}, but this side expects {expected:?}")]
    SchemaMismatch {
        /// The channel's name.
        name: String,
        /// This side's tag.
        expected: Option<String>,
        /// The segment's tag.
        found: Option<String>,
    },
    /// The segment is smaller than a header.
    #[error(
        "channel '{name}': segment {path} has {size} bytes, fewer than the {needed} of a header"
    )]
    TooSmall {
        /// The channel's name.
        name: String,
        /// The segment file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The least a segment can have.
        needed: u64,
    },
    /// The file under the channel's name is not a shmchan segment (no magic).
    #[error("channel '{name}': {path} is not a shmchan segment; remove it or use another name")]
    Foreign {
        /// The channel's name.
        name: String,
        /// The file found.
        path: PathBuf,
    },
    /// The segment has another layout version than this build.
    #[error("channel '{name}' has layout version {found}; this build of shmchan reads version {supported}")]
    VersionMismatch {
        /// The channel's name.
        name: String,
        /// The segment's version.
        found: u32,
        /// This build's version.
        supported: u32,
    },
    /// The segment was made by a build of another endianness or pointer width.
    #[error("channel '{name}' was created by a build with ABI word {found:#x}; this build's is {expected:#x}")]
    AbiMismatch {
        /// The channel's name.
        name: String,
        /// The segment's word.
        found: u32,
        /// This build's word.
        expected: u32,
    },
    /// The segment's header is all zeros: its creator never initialised it.
    #[error("channel '{name}' is not initialised (its creator did not finish); remove it")]
    NotInitialized {
        /// The channel's name.
        name: String,
    },
    /// A header field makes no sense.
    #[error(transparent)]
    Corrupted(#[from] Corruption),
    /// The shared-memory file system has no room for the ring.
    #[error(
        "not enough shared memory for channel '{name}': {bytes} bytes do not fit in {dir} ({source}); \
         free space there or ask for a smaller capacity; in a container, raise its size (docker run --shm-size)"
    )]
    NoSpace {
        /// The channel's name.
        name: String,
        /// Bytes the segment needs.
        bytes: u64,
        /// The directory (normally `/dev/shm`).
        dir: PathBuf,
        /// The error from `fallocate`.
        source: io::Error,
    },
    /// The channel uses [`Barrier::Membarrier`](crate::Barrier::Membarrier) (or it was asked
    /// for at creation), and this process may not use `membarrier(2)`: a kernel before
    /// 4.16, a 5.4–5.11 kernel without the fix of its membarrier registration bug (5.4.106,
    /// 5.10.24, 5.11.7), or a seccomp filter that forbids the call.
    #[error(
        "channel '{name}' needs membarrier(2), which this process cannot use ({source}); \
         create the channel with Barrier::Fence for peers in such a sandbox"
    )]
    MembarrierUnavailable {
        /// The channel's name.
        name: String,
        /// The error from registering.
        source: io::Error,
    },
    /// Any other system error.
    #[error("channel '{name}': {op}: {source}")]
    Io {
        /// The channel's name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// Why [`ChannelIo::writer`](crate::ChannelIo::writer) or
/// [`reader`](crate::ChannelIo::reader) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// Another live holder has this end: in another process (its pid is given when known) or
    /// in this one.
    #[error("channel '{name}': the {end} end is held by {}; use another name or stop that holder", holder(*.pid))]
    EndTaken {
        /// The channel's name.
        name: String,
        /// Which end.
        end: End,
        /// The holder's pid as recorded in the segment.
        pid: Option<u32>,
    },
    /// The channel was closed (by the end named) and cannot be used for this end again.
    #[error("channel '{name}' was closed by its {by}; remove it and create a new one")]
    Closed {
        /// The channel's name.
        name: String,
        /// The end that closed it.
        by: End,
    },
    /// The segment's indices make no sense.
    #[error(transparent)]
    Corrupted(#[from] Corruption),
    /// Any other system error.
    #[error("channel '{name}': {op}: {source}")]
    Io {
        /// The channel's name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("a live process (pid {p})"),
        None => "a live holder".to_string(),
    }
}

/// Why a [`WriterFront::put`](crate::WriterFront::put) (or its twins) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PutError {
    /// The reader closed the channel; `accepted` items of this call were put before it did.
    #[error("channel '{name}': the reader closed the channel; {accepted} items of this put were accepted")]
    Closed {
        /// The channel's name.
        name: String,
        /// How many items of the slice were put (a prefix).
        accepted: usize,
    },
    /// This writer was already closed.
    #[error("channel '{name}': this writer is closed")]
    WriterClosed {
        /// The channel's name.
        name: String,
    },
    /// More slots were asked for at once than the ring has.
    #[error("channel '{name}': {requested} slots asked for, but the ring holds {capacity}")]
    Oversized {
        /// The channel's name.
        name: String,
        /// Slots asked for.
        requested: usize,
        /// The ring's capacity.
        capacity: usize,
    },
    /// The reader's process died while this put waited for room. Reported once per dead
    /// reader: a later `put` waits for a new reader (a restarted process resumes where the
    /// dead one stopped).
    #[error(
        "channel '{name}': the reader's process died; {accepted} items of this put were accepted"
    )]
    PeerGone {
        /// The channel's name.
        name: String,
        /// How many items of the slice were put (a prefix).
        accepted: usize,
    },
    /// The wait for room lasted longer than the writer's
    /// [`set_timeout`](crate::WriterFront::set_timeout) allows; `accepted` items of this
    /// call were put before.
    #[error(
        "channel '{name}': timed out waiting for room; {accepted} items of this put were accepted"
    )]
    TimedOut {
        /// The channel's name.
        name: String,
        /// How many items of the slice were put (a prefix).
        accepted: usize,
    },
    /// A raw end's buffer is not a whole number of elements (a
    /// [`RawChannel`](crate::RawChannel)'s slices are bytes).
    #[error(
        "channel '{name}': {len} bytes are not a whole number of {element_size}-byte elements"
    )]
    PartialElement {
        /// The channel's name.
        name: String,
        /// The buffer's length in bytes.
        len: usize,
        /// The channel's element size in bytes.
        element_size: usize,
    },
    /// The reader's index makes no sense.
    #[error(transparent)]
    Corrupted(#[from] Corruption),
    /// Waiting failed (for example: an async method called outside a tokio runtime).
    #[error("channel '{name}': {op}: {source}")]
    Io {
        /// The channel's name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl PutError {
    /// How many items of the failed call were put before it failed.
    pub fn accepted(&self) -> usize {
        match self {
            PutError::Closed { accepted, .. }
            | PutError::PeerGone { accepted, .. }
            | PutError::TimedOut { accepted, .. } => *accepted,
            _ => 0,
        }
    }
}

/// Why a [`ReaderFront::get`](crate::ReaderFront::get) (or its twins) failed.
///
/// `remaining` is how many items are still in the channel (they stay readable, e.g. with
/// [`get_some`](crate::ReaderFront::get_some)); `filled` is how many items of this call are
/// already in `to` (only a `get` into a buffer larger than the ring fills before it fails).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GetError {
    /// The writer closed the channel and fewer items remain than were asked for.
    #[error("channel '{name}': the writer closed the channel; {remaining} items remain, {filled} were filled in")]
    Closed {
        /// The channel's name.
        name: String,
        /// Items still in the channel.
        remaining: usize,
        /// Items of this call already copied into `to`.
        filled: usize,
    },
    /// The writer aborted with a reason, and fewer items remain than were asked for.
    #[error("channel '{name}': the writer aborted: {reason}; {remaining} items remain, {filled} were filled in")]
    Aborted {
        /// The channel's name.
        name: String,
        /// The writer's reason.
        reason: String,
        /// Items still in the channel.
        remaining: usize,
        /// Items of this call already copied into `to`.
        filled: usize,
    },
    /// The writer's process died without closing, and fewer items remain than were asked for.
    /// While its items remain, each waiting call that cannot be satisfied reports it (drain
    /// them with `get_some`); once nothing is left it is reported once more, with
    /// `remaining: 0`, and a later call waits for a new writer (a restarted process appends
    /// after the last item the dead one committed).
    #[error("channel '{name}': the writer's process died; {remaining} items remain, {filled} were filled in")]
    PeerGone {
        /// The channel's name.
        name: String,
        /// Items still in the channel.
        remaining: usize,
        /// Items of this call already copied into `to`.
        filled: usize,
    },
    /// The wait lasted longer than the reader's
    /// [`set_timeout`](crate::ReaderFront::set_timeout) allows, and fewer items than asked for
    /// are there. Nothing was removed (except the `filled` prefix of a `get` larger than the
    /// ring); the call can be made again.
    #[error("channel '{name}': timed out; {remaining} items are there, {filled} were filled in")]
    TimedOut {
        /// The channel's name.
        name: String,
        /// Items in the channel.
        remaining: usize,
        /// Items of this call already copied into `to`.
        filled: usize,
    },
    /// More items were asked for at once than the ring holds.
    #[error(
        "channel '{name}': {requested} items asked for at once, but the ring holds {capacity}"
    )]
    Oversized {
        /// The channel's name.
        name: String,
        /// Items asked for.
        requested: usize,
        /// The ring's capacity.
        capacity: usize,
    },
    /// This reader was already closed.
    #[error("channel '{name}': this reader is closed")]
    ReaderClosed {
        /// The channel's name.
        name: String,
    },
    /// A raw end's buffer is not a whole number of elements (a
    /// [`RawChannel`](crate::RawChannel)'s slices are bytes).
    #[error(
        "channel '{name}': {len} bytes are not a whole number of {element_size}-byte elements"
    )]
    PartialElement {
        /// The channel's name.
        name: String,
        /// The buffer's length in bytes.
        len: usize,
        /// The channel's element size in bytes.
        element_size: usize,
    },
    /// The writer's index makes no sense.
    #[error(transparent)]
    Corrupted(#[from] Corruption),
    /// Waiting failed (for example: an async method called outside a tokio runtime).
    #[error("channel '{name}': {op}: {source}")]
    Io {
        /// The channel's name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl GetError {
    /// Items of the failed call already copied into `to`.
    pub fn filled(&self) -> usize {
        match self {
            GetError::Closed { filled, .. }
            | GetError::Aborted { filled, .. }
            | GetError::PeerGone { filled, .. }
            | GetError::TimedOut { filled, .. } => *filled,
            _ => 0,
        }
    }

    /// Items still in the channel when the call failed, if the failure says.
    pub fn remaining(&self) -> usize {
        match self {
            GetError::Closed { remaining, .. }
            | GetError::Aborted { remaining, .. }
            | GetError::PeerGone { remaining, .. }
            | GetError::TimedOut { remaining, .. } => *remaining,
            _ => 0,
        }
    }

    /// True if the writer ended the stream (closed, aborted or died): no more items will come
    /// beyond the `remaining` ones.
    pub fn is_end_of_stream(&self) -> bool {
        matches!(
            self,
            GetError::Closed { .. } | GetError::Aborted { .. } | GetError::PeerGone { .. }
        )
    }

    pub(crate) fn add_filled(mut self, n: usize) -> Self {
        match &mut self {
            GetError::Closed { filled, .. }
            | GetError::Aborted { filled, .. }
            | GetError::PeerGone { filled, .. }
            | GetError::TimedOut { filled, .. } => *filled += n,
            _ => {}
        }
        self
    }
}

/// Why [`ChannelIo::remove`](crate::ChannelIo::remove) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// The name is invalid.
    #[error("invalid channel name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No channel by that name.
    #[error("channel '{name}' does not exist (no {path})")]
    NotFound {
        /// The channel's name.
        name: String,
        /// The path looked for.
        path: PathBuf,
    },
    /// A system error.
    #[error("channel '{name}': removing {path}: {source}")]
    Io {
        /// The channel's name.
        name: String,
        /// The path being removed.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}
