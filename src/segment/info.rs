//! What a channel's header says, for tools: [`ChannelIo::inspect`](crate::ChannelIo::inspect)
//! and [`ChannelIo::list`](crate::ChannelIo::list).

use std::path::PathBuf;

use crate::barrier::Barrier;
use crate::header::{Primitive, WriterState};

/// A snapshot of a channel's header, validated, read without opening the channel for use.
///
/// The index and state fields are read one by one while the ends may be working: each is a
/// value it had, not necessarily all at the same instant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// The channel's name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Owner of the segment file.
    pub owner_uid: u32,
    /// Permission bits of the segment file.
    pub mode: u32,
    /// Layout version.
    pub version: u32,
    /// Element size in bytes.
    pub elem_size: u32,
    /// Element alignment in bytes.
    pub elem_align: u32,
    /// The element type, if the creator's was a [`Primitive`].
    pub elem_type: Option<Primitive>,
    /// The element's description (canonical, see [`Descr`](crate::Descr)): a primitive's
    /// own, a described record's, `None` for a record created without one.
    pub descr: Option<String>,
    /// The schema tag, if any.
    pub schema: Option<String>,
    /// Ring capacity in elements.
    pub capacity: u64,
    /// Bytes of the header region.
    pub header_len: u32,
    /// Bytes of the ring.
    pub data_len: u64,
    /// Kept even when finished or unused.
    pub persist: bool,
    /// How the channel's wake protocol orders its stores and loads: [`Barrier::Fence`](crate::Barrier::Fence) or
    /// [`Barrier::Membarrier`](crate::Barrier::Membarrier) (never `Auto`).
    pub barrier: Barrier,
    /// Pid of the creator (in its pid namespace).
    pub creator_pid: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// Items ever committed.
    pub tail: u64,
    /// Items ever consumed.
    pub head: u64,
    /// The writing end.
    pub writer: EndInfo,
    /// The reading end.
    pub reader: EndInfo,
    /// Whether the writer closed or aborted.
    pub writer_state: WriterState,
    /// Whether the reader closed (the channel then takes no more items).
    pub reader_closed: bool,
    /// Some process has the channel open (holds a `ChannelIo` or an end).
    pub in_use: bool,
}

impl ChannelInfo {
    /// Items committed and not yet consumed.
    pub fn len(&self) -> u64 {
        self.tail - self.head
    }

    /// True if no item waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the channel delivered everything it will: its reader closed (after reading
    /// to the end, or early, discarding the rest).
    pub fn is_finished(&self) -> bool {
        self.reader_closed
    }

    /// True if a reader that comes would still get something: committed items, or the
    /// writer's end of stream (close or abort reason). Such a channel is not removed by its
    /// last handle, even when its writer died; tools that sweep stale channels should keep it
    /// unless told otherwise.
    pub fn has_undelivered(&self) -> bool {
        !self.reader_closed && (!self.is_empty() || self.writer_state != WriterState::Open)
    }
}

/// One end of a channel, as the header and its lock say.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndInfo {
    /// How many times the end was claimed (0: never).
    pub claims: u64,
    /// Pid of the last holder, if the end was ever claimed.
    pub pid: Option<u32>,
    /// The last holder's start time (clock ticks since boot), 0 if unknown.
    pub start_time: u64,
    /// A live process holds the end now (its lock is held).
    pub held: bool,
}
