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
    /// A channel of messages ([`MessageChannel`](crate::MessageChannel)): its elements are
    /// the 8-byte words that frame them, and `capacity`, `head` and `tail` count words.
    pub messages: bool,
    /// The whole messages in a message channel, counted by walking their length words
    /// between `head` and `tail` (a snapshot); `None` for other channels, for a ring of
    /// more than 64 MiB in use, or when the ends moved while it was read.
    pub message_count: Option<u64>,
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
    /// The stream the channel continues ([`Origin`](crate::Origin)), if its creator recorded one.
    pub origin: Option<crate::Origin>,
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

    /// The channel's state in one word, as `shmchan ls` shows it: the first of finished,
    /// aborted, closed, stale (claimed before, open in no process now), unused (never
    /// claimed, open in no process), open.
    ///
    /// ```
    /// use shmchan::{ChannelIo, ChannelState, Options};
    /// # let name = format!("doc-state-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// assert_eq!(ChannelIo::inspect(&name)?.state(), ChannelState::Open); // open here
    /// let w = chan.writer()?;
    /// w.close();
    /// assert_eq!(ChannelIo::inspect(&name)?.state(), ChannelState::Closed);
    /// # ChannelIo::remove(&name)?;
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    pub fn state(&self) -> ChannelState {
        if self.is_finished() {
            ChannelState::Finished
        } else if matches!(self.writer_state, WriterState::Aborted(_)) {
            ChannelState::Aborted
        } else if self.writer_state == WriterState::Closed {
            ChannelState::Closed
        } else if !self.in_use && (self.writer.claims > 0 || self.reader.claims > 0) {
            ChannelState::Stale
        } else if !self.in_use {
            ChannelState::Unused
        } else {
            ChannelState::Open
        }
    }
}

/// A channel's state in one word ([`ChannelInfo::state`]); `Display` writes the word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelState {
    /// Open in some process, its stream neither ended nor finished.
    Open,
    /// The writer closed the stream; the reader has not read its end yet.
    Closed,
    /// The writer aborted the stream; the reader has not read its end yet.
    Aborted,
    /// The reader closed the channel: it delivered everything it will.
    Finished,
    /// An end was claimed before, and no process has the channel open now (its holders
    /// died or let go without closing).
    Stale,
    /// Never claimed, and no process has the channel open.
    Unused,
}

impl ChannelState {
    /// The word: `open`, `closed`, `aborted`, `finished`, `stale` or `unused`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Open => "open",
            ChannelState::Closed => "closed",
            ChannelState::Aborted => "aborted",
            ChannelState::Finished => "finished",
            ChannelState::Stale => "stale",
            ChannelState::Unused => "unused",
        }
    }
}

impl std::fmt::Display for ChannelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
