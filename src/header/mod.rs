//! The shared layout: the first bytes of every channel segment.
//!
//! This is a wire format between processes that may run different builds, so it is
//! `#[repr(C)]`, uses only fixed-width atomics (never `usize`), and every offset is asserted at
//! compile time below. Both sides hold `&Header` only: every field is an atomic, so a reference
//! to memory that the other process writes concurrently is sound (atomics are `UnsafeCell`s and
//! valid for any bit pattern). Nothing read from here is trusted; [`Snapshot::validate`] checks
//! the identity fields once at open, and the ring re-checks every index it reads.
//!
//! | offset | size | field             | written by            | invariant                              |
//! |-------:|-----:|-------------------|-----------------------|----------------------------------------|
//! |      0 |    8 | `magic`           | creator, before publish | [`MAGIC`]                            |
//! |      8 |    4 | `version`         | creator               | [`VERSION`]                            |
//! |     12 |    4 | `header_len`      | creator               | page multiple, ≥ `HEADER_SIZE + descr_len`, ≤ 1 MiB |
//! |     16 |    4 | `elem_size`       | creator               | `size_of::<T>()`, > 0                  |
//! |     20 |    4 | `elem_align`      | creator               | `align_of::<T>()`, power of two ≤ page |
//! |     24 |    8 | `capacity`        | creator               | elements; `capacity * elem_size == data_len` |
//! |     32 |    8 | `data_len`        | creator               | bytes of the ring, page multiple       |
//! |     40 |    4 | `abi`             | creator               | [`abi_word`] of the creating build     |
//! |     44 |    4 | `flags`           | creator               | bit 0 persist, bit 1 membarrier        |
//! |     48 |    4 | `schema_len`      | creator               | ≤ [`SCHEMA_MAX`]                       |
//! |     52 |    4 | `creator_pid`     | creator               | informative                            |
//! |     56 |    8 | `created_unix_ns` | creator               | informative                            |
//! |     64 |   48 | `schema`          | creator               | UTF-8 tag, `schema_len` bytes used     |
//! |    112 |    4 | `elem_kind`       | creator               | [`Primitive`] code, [`MESSAGE_KIND`] for messages, 0 for other types |
//! |    116 |    4 | `descr_len`       | creator               | ≤ [`DESCR_MAX`], `HEADER_SIZE + descr_len ≤ header_len` |
//! |    128 |    8 | `tail`            | writer                | items ever committed; `head ≤ tail ≤ head + capacity` |
//! |    256 |    8 | `head`            | reader                | items ever consumed                    |
//! |    384 |    4 | `data_waiting`    | reader sets, writer clears | 1 while the reader may sleep for data |
//! |    512 |    4 | `room_waiting`    | writer sets, reader clears | 1 while the writer may sleep for room |
//! |    640 |    4 | `writer_state`    | writer                | 0 open, 1 closed, 2 aborted            |
//! |    644 |    4 | `reader_state`    | reader                | 0 open, 1 closed                       |
//! |    648 |    4 | `reason_len`      | writer                | ≤ [`REASON_MAX`], valid once `writer_state == 2` |
//! |    652 |  256 | `reason`          | writer                | UTF-8 abort reason                     |
//! |    912 |    8 | `origin_stream`   | creator               | the stream the channel continues, 0 for none ([`Origin`](crate::Origin)) |
//! |    920 |    8 | `origin_first`    | creator               | that stream's number of the channel's item 0 |
//! |   1024 |  128 | `ends[0]`         | writer end's holder   | [`EndRecord`]                          |
//! |   1152 |  128 | `ends[1]`         | reader end's holder   | [`EndRecord`]                          |
//! |   1280 | `descr_len` | `descr`    | creator               | the element's canonical [`Descr`]; empty only for an undescribed record |
//!
//! The description follows the fixed fields, inside the header region (`header_len` grows by
//! pages to hold a long one). It is not part of [`Header`]: it is written with `pwrite` before
//! the channel is published and read with `pread` at open, never through the mapping.
//!
//! `tail`, `head` and the two waiting words each own a 128-byte line (two cache lines, so the
//! adjacent-line prefetcher does not make them share), so the producer's and consumer's hot
//! stores never invalidate each other's lines.

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

mod descr;
mod primitive;
mod snapshot;

pub use descr::{Descr, DescrError, DESCR_MAX};
pub use primitive::Primitive;
pub(crate) use snapshot::{Dynamic, Invalid, Snapshot};

/// `b"SHMCHAN\0"` read as a little-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMCHAN\0");
/// Bumped on any change of this layout. 2: the element description (`descr_len`, `descr`).
pub(crate) const VERSION: u32 = 2;
/// Longest schema tag, in bytes.
pub const SCHEMA_MAX: usize = 48;
/// Longest abort reason kept, in bytes (longer reasons are cut at a character boundary).
pub const REASON_MAX: usize = 256;
/// `flags` bit: keep the segment even when it is finished or unused.
pub(crate) const FLAG_PERSIST: u32 = 1;
/// `flags` bit: the wake protocol uses the asymmetric barrier (see `barrier`): fast paths
/// have no fence, sleepers call `membarrier(2)`.
pub(crate) const FLAG_MEMBARRIER: u32 = 2;

/// `elem_kind` of a message channel: its elements are 8-byte words that frame messages (a
/// length word, then the bytes; see `crate::message`), so no other kind of channel may open
/// it. Its elements are 8 bytes aligned to 8, and it has no description.
pub(crate) const MESSAGE_KIND: u32 = 0x100;
/// What errors call a message channel's elements.
pub(crate) const MESSAGE_TYPE: &str = "message";

/// Values of `writer_state` and `reader_state`: open, closed; and for the writer aborted
/// (with `reason`). Written by [`Header::end_stream`] (the writer) and by the reader's close,
/// decoded by [`writer_state`] alone.
pub(crate) const OPEN: u32 = 0;
pub(crate) const CLOSED: u32 = 1;
pub(crate) const ABORTED: u32 = 2;

/// Decodes a `writer_state` value; `reason` gives the abort reason's bytes, read only for an
/// aborted stream. `Err` is the detail of a corrupt value.
pub(crate) fn writer_state(
    state: u32,
    reason: impl FnOnce() -> Vec<u8>,
) -> Result<WriterState, String> {
    match state {
        OPEN => Ok(WriterState::Open),
        CLOSED => Ok(WriterState::Closed),
        ABORTED => Ok(WriterState::Aborted(
            String::from_utf8_lossy(&reason()).into_owned(),
        )),
        other => Err(format!(
            "{other} is not 0 (open), 1 (closed) or 2 (aborted)"
        )),
    }
}

/// Endianness and pointer width of this build: byte 0 is 1 for little endian, 2 for big;
/// byte 1 is the pointer width in bytes. The ring itself uses fixed-width atomics, but `T`'s
/// bytes are native, so both sides must agree.
pub(crate) const fn abi_word() -> u32 {
    let endian: u32 = if cfg!(target_endian = "little") { 1 } else { 2 };
    endian | ((size_of::<usize>() as u32) << 8)
}

/// One of the two ends of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The writing end ([`WriterFront`](crate::WriterFront)).
    Writer,
    /// The reading end ([`ReaderFront`](crate::ReaderFront)).
    Reader,
}

impl End {
    pub(crate) fn index(self) -> usize {
        match self {
            End::Writer => 0,
            End::Reader => 1,
        }
    }
    pub(crate) fn peer(self) -> End {
        match self {
            End::Writer => End::Reader,
            End::Reader => End::Writer,
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::Writer => "writer",
            End::Reader => "reader",
        })
    }
}

/// The writer's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriterState {
    /// Writing (or not started).
    Open,
    /// Closed: the reader gets `Closed` after the last item.
    Closed,
    /// Aborted with a reason.
    Aborted(String),
}

/// Who holds (or last held) one end. Written only by that end's holder, after it took the
/// end's lock; read by the peer to find the process to watch and by the CLI to report it.
#[repr(C, align(128))]
pub(crate) struct EndRecord {
    /// Pid of the holder, in the holder's pid namespace. Written before `claims` is bumped.
    pub pid: AtomicU32,
    /// Unused; an atomic like every other field, since the peer can write it.
    _pad: AtomicU32,
    /// The holder's start time (`/proc/PID/stat` field 22, clock ticks since boot); with the
    /// pid it names one process even after pid reuse.
    pub start_time: AtomicU64,
    /// How many times this end was claimed. 0: never. Bumped with Release after `pid` and
    /// `start_time` are written, so a peer that reads `claims` with Acquire sees this holder's
    /// pid.
    pub claims: AtomicU64,
}

/// One 128-byte line holding a single hot word.
#[repr(C, align(128))]
pub(crate) struct Line<A>(pub A);

/// The header at offset 0 of every segment. See the module docs for the table.
#[repr(C)]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub header_len: AtomicU32,
    pub elem_size: AtomicU32,
    pub elem_align: AtomicU32,
    pub capacity: AtomicU64,
    pub data_len: AtomicU64,
    pub abi: AtomicU32,
    pub flags: AtomicU32,
    pub schema_len: AtomicU32,
    pub creator_pid: AtomicU32,
    pub created_unix_ns: AtomicU64,
    pub schema: [AtomicU8; SCHEMA_MAX],
    pub elem_kind: AtomicU32,
    pub descr_len: AtomicU32,
    _pad0: [AtomicU32; 2],
    pub tail: Line<AtomicU64>,
    pub head: Line<AtomicU64>,
    pub data_waiting: Line<AtomicU32>,
    pub room_waiting: Line<AtomicU32>,
    pub writer_state: AtomicU32,
    pub reader_state: AtomicU32,
    pub reason_len: AtomicU32,
    pub reason: [AtomicU8; REASON_MAX],
    _pad1: AtomicU32,
    pub origin_stream: AtomicU64,
    pub origin_first: AtomicU64,
    pub ends: [EndRecord; 2],
}

// The byte offsets are the wire format: a change here is a new VERSION.
const _: () = {
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, header_len) == 12);
    assert!(offset_of!(Header, elem_size) == 16);
    assert!(offset_of!(Header, elem_align) == 20);
    assert!(offset_of!(Header, capacity) == 24);
    assert!(offset_of!(Header, data_len) == 32);
    assert!(offset_of!(Header, abi) == 40);
    assert!(offset_of!(Header, flags) == 44);
    assert!(offset_of!(Header, schema_len) == 48);
    assert!(offset_of!(Header, creator_pid) == 52);
    assert!(offset_of!(Header, created_unix_ns) == 56);
    assert!(offset_of!(Header, schema) == 64);
    assert!(offset_of!(Header, elem_kind) == 112);
    assert!(offset_of!(Header, descr_len) == 116);
    assert!(offset_of!(Header, tail) == 128);
    assert!(offset_of!(Header, head) == 256);
    assert!(offset_of!(Header, data_waiting) == 384);
    assert!(offset_of!(Header, room_waiting) == 512);
    assert!(offset_of!(Header, writer_state) == 640);
    assert!(offset_of!(Header, reader_state) == 644);
    assert!(offset_of!(Header, reason_len) == 648);
    assert!(offset_of!(Header, reason) == 652);
    assert!(offset_of!(Header, origin_stream) == 912);
    assert!(offset_of!(Header, origin_first) == 920);
    assert!(offset_of!(Header, ends) == 1024);
    assert!(size_of::<EndRecord>() == 128);
    assert!(offset_of!(EndRecord, pid) == 0);
    assert!(offset_of!(EndRecord, start_time) == 8);
    assert!(offset_of!(EndRecord, claims) == 16);
    assert!(size_of::<Header>() == 1280);
};

/// Bytes of the header struct; the data region starts at `header_len` ≥ this, page aligned.
pub(crate) const HEADER_SIZE: usize = size_of::<Header>();
/// Where the element description starts: right after the fixed fields.
pub(crate) const DESCR_OFFSET: usize = HEADER_SIZE;

// The longest description fits in the largest header region we accept.
const _: () = assert!(((DESCR_OFFSET + DESCR_MAX) as u64) < MAX_HEADER_LEN);

impl Header {
    pub(crate) fn end(&self, end: End) -> &EndRecord {
        &self.ends[end.index()]
    }

    /// Ends the stream (the writer's close): closed, or aborted with `reason` (cut to
    /// [`REASON_MAX`] bytes at a character boundary).
    pub(crate) fn end_stream(&self, abort: Option<&str>) {
        let state = match abort {
            None => CLOSED,
            Some(reason) => {
                let mut cut = reason.len().min(REASON_MAX);
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                Header::write_bytes(&self.reason, &reason.as_bytes()[..cut]);
                // Relaxed: published by the Release store of the state below.
                self.reason_len.store(cut as u32, Ordering::Relaxed);
                ABORTED
            }
        };
        // Release: a reader that loads this state with Acquire sees our last tail store and
        // the reason bytes above.
        self.writer_state.store(state, Ordering::Release);
    }

    /// The writer's state `state` (as loaded with Acquire by the caller), decoded; see
    /// [`writer_state`].
    pub(crate) fn writer_end(&self, state: u32) -> Result<WriterState, String> {
        writer_state(state, || {
            // Relaxed: written before the writer's Release store of `state`, which the caller
            // loaded with Acquire.
            let len = self.reason_len.load(Ordering::Relaxed) as usize;
            Header::read_bytes(&self.reason, len.min(REASON_MAX))
        })
    }

    /// The waiting word of `waiter`'s eventcount (see `notify`): `data_waiting` for the
    /// reader, `room_waiting` for the writer.
    pub(crate) fn waiting_word(&self, waiter: End) -> &AtomicU32 {
        match waiter {
            End::Reader => &self.data_waiting.0,
            End::Writer => &self.room_waiting.0,
        }
    }

    /// Copies a byte string out of an atomic byte array (Relaxed: these fields are written
    /// before the value that publishes them, and read after an Acquire of that value).
    pub(crate) fn read_bytes(src: &[AtomicU8], len: usize) -> Vec<u8> {
        src[..len.min(src.len())]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    pub(crate) fn write_bytes(dst: &[AtomicU8], bytes: &[u8]) {
        for (d, s) in dst.iter().zip(bytes) {
            d.store(*s, Ordering::Relaxed);
        }
    }
}

/// Largest header region we accept from a segment (its fields fit in one page; a larger
/// value is nonsense, and bounding it bounds the mapping we make).
pub(crate) const MAX_HEADER_LEN: u64 = 1 << 20;
/// Largest ring, in bytes: 1 TiB (the mirror mapping reserves twice this in address space).
pub const MAX_DATA_LEN: u64 = 1 << 40;
