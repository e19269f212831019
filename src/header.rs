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
//! |     12 |    4 | `header_len`      | creator               | page multiple, ≥ `size_of::<Header>()` |
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
//! |    112 |    4 | `elem_kind`       | creator               | [`Primitive`] code, 0 for other types  |
//! |    128 |    8 | `tail`            | writer                | items ever committed; `head ≤ tail ≤ head + capacity` |
//! |    256 |    8 | `head`            | reader                | items ever consumed                    |
//! |    384 |    4 | `data_waiting`    | reader sets, writer clears | 1 while the reader may sleep for data |
//! |    512 |    4 | `room_waiting`    | writer sets, reader clears | 1 while the writer may sleep for room |
//! |    640 |    4 | `writer_state`    | writer                | 0 open, 1 closed, 2 aborted            |
//! |    644 |    4 | `reader_state`    | reader                | 0 open, 1 closed                       |
//! |    648 |    4 | `reason_len`      | writer                | ≤ [`REASON_MAX`], valid once `writer_state == 2` |
//! |    652 |  256 | `reason`          | writer                | UTF-8 abort reason                     |
//! |   1024 |  128 | `ends[0]`         | writer end's holder   | [`EndRecord`]                          |
//! |   1152 |  128 | `ends[1]`         | reader end's holder   | [`EndRecord`]                          |
//!
//! `tail`, `head` and the two waiting words each own a 128-byte line (two cache lines, so the
//! adjacent-line prefetcher does not make them share), so the producer's and consumer's hot
//! stores never invalidate each other's lines.

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::info::WriterState;

/// `b"SHMCHAN\0"` read as a little-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMCHAN\0");
/// Bumped on any change of this layout.
pub(crate) const VERSION: u32 = 1;
/// Longest schema tag, in bytes.
pub const SCHEMA_MAX: usize = 48;
/// Longest abort reason kept, in bytes (longer reasons are cut at a character boundary).
pub const REASON_MAX: usize = 256;
/// `flags` bit: keep the segment even when it is finished or unused.
pub(crate) const FLAG_PERSIST: u32 = 1;
/// `flags` bit: the wake protocol uses the asymmetric barrier (see `barrier`): fast paths
/// have no fence, sleepers call `membarrier(2)`.
pub(crate) const FLAG_MEMBARRIER: u32 = 2;

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
    _pad0: [AtomicU32; 3],
    pub tail: Line<AtomicU64>,
    pub head: Line<AtomicU64>,
    pub data_waiting: Line<AtomicU32>,
    pub room_waiting: Line<AtomicU32>,
    pub writer_state: AtomicU32,
    pub reader_state: AtomicU32,
    pub reason_len: AtomicU32,
    pub reason: [AtomicU8; REASON_MAX],
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
    assert!(offset_of!(Header, tail) == 128);
    assert!(offset_of!(Header, head) == 256);
    assert!(offset_of!(Header, data_waiting) == 384);
    assert!(offset_of!(Header, room_waiting) == 512);
    assert!(offset_of!(Header, writer_state) == 640);
    assert!(offset_of!(Header, reader_state) == 644);
    assert!(offset_of!(Header, reason_len) == 648);
    assert!(offset_of!(Header, reason) == 652);
    assert!(offset_of!(Header, ends) == 1024);
    assert!(size_of::<EndRecord>() == 128);
    assert!(offset_of!(EndRecord, pid) == 0);
    assert!(offset_of!(EndRecord, start_time) == 8);
    assert!(offset_of!(EndRecord, claims) == 16);
    assert!(size_of::<Header>() == 1280);
};

/// Bytes of the header struct; the data region starts at `header_len` ≥ this, page aligned.
pub(crate) const HEADER_SIZE: usize = size_of::<Header>();

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

/// The identity fields, read once from a segment's first bytes and validated. After
/// validation the channel uses only these copies, never the live header fields, so a peer
/// that rewrites them later cannot change the bounds we compute with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub magic: u64,
    pub version: u32,
    pub header_len: u32,
    pub elem_size: u32,
    pub elem_align: u32,
    pub capacity: u64,
    pub data_len: u64,
    pub abi: u32,
    pub flags: u32,
    pub schema_len: u32,
    pub creator_pid: u32,
    pub created_unix_ns: u64,
    pub schema: Vec<u8>,
    pub elem_kind: u32,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// The fields the ends change while they work, as read at one moment (each field on its own;
/// for reporting only, never for bounds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dynamic {
    pub tail: u64,
    pub head: u64,
    pub writer_state: u32,
    pub reader_state: u32,
    pub reason: Vec<u8>,
    /// pid, start time, claims — writer, then reader.
    pub ends: [(u32, u64, u64); 2],
}

impl Dynamic {
    pub(crate) fn parse(bytes: &[u8; HEADER_SIZE]) -> Dynamic {
        let r = offset_of!(Header, reason);
        let reason_len = (u32_at(bytes, offset_of!(Header, reason_len)) as usize).min(REASON_MAX);
        let end = |i: usize| {
            let base = offset_of!(Header, ends) + i * size_of::<EndRecord>();
            (
                u32_at(bytes, base + offset_of!(EndRecord, pid)),
                u64_at(bytes, base + offset_of!(EndRecord, start_time)),
                u64_at(bytes, base + offset_of!(EndRecord, claims)),
            )
        };
        Dynamic {
            tail: u64_at(bytes, offset_of!(Header, tail)),
            head: u64_at(bytes, offset_of!(Header, head)),
            writer_state: u32_at(bytes, offset_of!(Header, writer_state)),
            reader_state: u32_at(bytes, offset_of!(Header, reader_state)),
            reason: bytes[r..r + reason_len].to_vec(),
            ends: [end(0), end(1)],
        }
    }
}

/// Why a segment's identity fields were refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Every byte zero: created but never initialised.
    Uninitialised,
    Foreign,
    Version(u32),
    Abi(u32),
    Field(&'static str, String),
}

impl Snapshot {
    /// Parses the first [`HEADER_SIZE`] bytes of a segment (native endianness; a foreign
    /// endianness shows up as a bad magic or ABI word).
    pub(crate) fn parse(bytes: &[u8; HEADER_SIZE]) -> Snapshot {
        let schema_len = u32_at(bytes, offset_of!(Header, schema_len));
        let s = offset_of!(Header, schema);
        let used = (schema_len as usize).min(SCHEMA_MAX);
        Snapshot {
            magic: u64_at(bytes, offset_of!(Header, magic)),
            version: u32_at(bytes, offset_of!(Header, version)),
            header_len: u32_at(bytes, offset_of!(Header, header_len)),
            elem_size: u32_at(bytes, offset_of!(Header, elem_size)),
            elem_align: u32_at(bytes, offset_of!(Header, elem_align)),
            capacity: u64_at(bytes, offset_of!(Header, capacity)),
            data_len: u64_at(bytes, offset_of!(Header, data_len)),
            abi: u32_at(bytes, offset_of!(Header, abi)),
            flags: u32_at(bytes, offset_of!(Header, flags)),
            schema_len,
            creator_pid: u32_at(bytes, offset_of!(Header, creator_pid)),
            created_unix_ns: u64_at(bytes, offset_of!(Header, created_unix_ns)),
            schema: bytes[s..s + used].to_vec(),
            elem_kind: u32_at(bytes, offset_of!(Header, elem_kind)),
        }
    }

    /// Checks every identity field for internal consistency against this machine's page
    /// size. Does not compare with the caller's element type (the caller does, to name both
    /// sides in its error).
    pub(crate) fn validate(&self, page: u64, file_len: u64) -> Result<(), Invalid> {
        if self.magic == 0 && self.version == 0 && self.header_len == 0 && self.capacity == 0 {
            return Err(Invalid::Uninitialised);
        }
        if self.magic != MAGIC {
            return Err(Invalid::Foreign);
        }
        if self.version != VERSION {
            return Err(Invalid::Version(self.version));
        }
        if self.abi != abi_word() {
            return Err(Invalid::Abi(self.abi));
        }
        let field = |name: &'static str, what: String| Err(Invalid::Field(name, what));
        let hl = u64::from(self.header_len);
        if hl < HEADER_SIZE as u64 || hl % page != 0 || hl > MAX_HEADER_LEN {
            return field(
                "header_len",
                format!(
                    "{hl} is not a multiple of the page size {page} between {HEADER_SIZE} and {MAX_HEADER_LEN}"
                ),
            );
        }
        if self.elem_size == 0 {
            return field("elem_size", "0".into());
        }
        let a = u64::from(self.elem_align);
        if !a.is_power_of_two() || a > page || u64::from(self.elem_size) % a != 0 {
            return field(
                "elem_align",
                format!("{a} (element size {})", self.elem_size),
            );
        }
        if self.capacity == 0 {
            return field("capacity", "0".into());
        }
        if self.capacity.checked_mul(u64::from(self.elem_size)) != Some(self.data_len) {
            return field(
                "data_len",
                format!(
                    "{} is not capacity {} × element size {}",
                    self.data_len, self.capacity, self.elem_size
                ),
            );
        }
        if self.data_len % page != 0 || self.data_len > MAX_DATA_LEN {
            return field(
                "data_len",
                format!(
                    "{} is not a page multiple of at most {MAX_DATA_LEN}",
                    self.data_len
                ),
            );
        }
        if self.schema_len as usize > SCHEMA_MAX {
            return field("schema_len", format!("{} > {SCHEMA_MAX}", self.schema_len));
        }
        if std::str::from_utf8(&self.schema).is_err() {
            return field("schema", "not UTF-8".into());
        }
        if self.elem_kind != 0 {
            match Primitive::from_code(self.elem_kind) {
                Some(p) if p.size() == self.elem_size => {}
                _ => {
                    return field(
                        "elem_kind",
                        format!(
                            "{} does not name a {}-byte primitive",
                            self.elem_kind, self.elem_size
                        ),
                    )
                }
            }
        }
        if self.flags & !(FLAG_PERSIST | FLAG_MEMBARRIER) != 0 {
            return field("flags", format!("unknown bits {:#x}", self.flags));
        }
        let needed = hl + self.data_len;
        if file_len < needed {
            return field(
                "size",
                format!("segment has {file_len} bytes, its header describes {needed}"),
            );
        }
        Ok(())
    }

    pub(crate) fn schema_str(&self) -> Option<String> {
        if self.schema.is_empty() {
            None
        } else {
            Some(String::from_utf8_lossy(&self.schema).into_owned())
        }
    }
}

/// The element types the header names by a code (so that `u32`, `i32` and `f32`, all four
/// bytes, are told apart, and tools like the CLI know how to print them). Any other
/// [`Pod`](bytemuck::Pod) type is recorded as code 0 and told apart only by size, alignment
/// and [schema tag](crate::Options::schema).
///
/// ```
/// use shmchan::Primitive;
/// assert_eq!(Primitive::of::<f32>(), Some(Primitive::F32));
/// assert_eq!(Primitive::of::<[u8; 3]>(), None);
/// assert_eq!("i16".parse::<Primitive>(), Ok(Primitive::I16));
/// assert_eq!(Primitive::F64.size(), 8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Primitive {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Primitive {
    /// All of them, in code order.
    pub const ALL: [Primitive; 10] = [
        Primitive::U8,
        Primitive::I8,
        Primitive::U16,
        Primitive::I16,
        Primitive::U32,
        Primitive::I32,
        Primitive::U64,
        Primitive::I64,
        Primitive::F32,
        Primitive::F64,
    ];

    /// The primitive `T` is, if it is one.
    pub fn of<T: 'static>() -> Option<Primitive> {
        use std::any::TypeId;
        let t = TypeId::of::<T>();
        let ids = [
            TypeId::of::<u8>(),
            TypeId::of::<i8>(),
            TypeId::of::<u16>(),
            TypeId::of::<i16>(),
            TypeId::of::<u32>(),
            TypeId::of::<i32>(),
            TypeId::of::<u64>(),
            TypeId::of::<i64>(),
            TypeId::of::<f32>(),
            TypeId::of::<f64>(),
        ];
        ids.iter()
            .position(|id| *id == t)
            .map(|i| Primitive::ALL[i])
    }

    /// The header code (1..=10).
    pub(crate) fn code(self) -> u32 {
        Primitive::ALL.iter().position(|p| *p == self).unwrap_or(0) as u32 + 1
    }

    pub(crate) fn from_code(code: u32) -> Option<Primitive> {
        (code as usize)
            .checked_sub(1)
            .and_then(|i| Primitive::ALL.get(i).copied())
    }

    /// Size in bytes.
    pub fn size(self) -> u32 {
        match self {
            Primitive::U8 | Primitive::I8 => 1,
            Primitive::U16 | Primitive::I16 => 2,
            Primitive::U32 | Primitive::I32 | Primitive::F32 => 4,
            Primitive::U64 | Primitive::I64 | Primitive::F64 => 8,
        }
    }

    /// The Rust name: `"u8"`, `"f64"`, ...
    pub fn name(self) -> &'static str {
        [
            "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64",
        ][self.code() as usize - 1]
    }
}

impl std::fmt::Display for Primitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Primitive {
    type Err = String;
    fn from_str(s: &str) -> Result<Primitive, String> {
        Primitive::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown element type {s:?} (one of u8 i8 u16 i16 u32 i32 u64 i64 f32 f64)")
            })
    }
}

/// Largest header region we accept from a segment (its fields fit in one page; a larger
/// value is nonsense, and bounding it bounds the mapping we make).
pub(crate) const MAX_HEADER_LEN: u64 = 1 << 20;
/// Largest ring, in bytes: 1 TiB (the mirror mapping reserves twice this in address space).
pub const MAX_DATA_LEN: u64 = 1 << 40;

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Snapshot {
        Snapshot {
            magic: MAGIC,
            version: VERSION,
            header_len: 4096,
            elem_size: 4,
            elem_align: 4,
            capacity: 1024,
            data_len: 4096,
            abi: abi_word(),
            flags: 0,
            schema_len: 0,
            creator_pid: 1,
            created_unix_ns: 0,
            schema: vec![],
            elem_kind: 0,
        }
    }

    #[test]
    fn validate_accepts_a_good_header_and_names_bad_fields() {
        assert_eq!(good().validate(4096, 8192), Ok(()));
        assert_eq!(
            good().validate(4096, 8191).unwrap_err(),
            Invalid::Field(
                "size",
                "segment has 8191 bytes, its header describes 8192".into()
            )
        );
        let mut s = good();
        s.magic = 7;
        assert_eq!(s.validate(4096, 8192), Err(Invalid::Foreign));
        assert_eq!(
            Snapshot::default().validate(4096, 8192),
            Err(Invalid::Uninitialised)
        );
        let mut s = good();
        s.version = 9;
        assert_eq!(s.validate(4096, 8192), Err(Invalid::Version(9)));
        let mut s = good();
        s.capacity = 1023;
        assert!(matches!(
            s.validate(4096, 8192),
            Err(Invalid::Field("data_len", _))
        ));
        let mut s = good();
        s.header_len = 100;
        assert!(matches!(
            s.validate(4096, 8192),
            Err(Invalid::Field("header_len", _))
        ));
        let mut s = good();
        s.elem_align = 3;
        assert!(matches!(
            s.validate(4096, 8192),
            Err(Invalid::Field("elem_align", _))
        ));
        let mut s = good();
        s.capacity = u64::MAX;
        assert!(matches!(
            s.validate(4096, 8192),
            Err(Invalid::Field("data_len", _))
        ));
    }

    #[test]
    fn parse_reads_fields_at_their_offsets() {
        let mut b = [0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(&MAGIC.to_ne_bytes());
        b[24..32].copy_from_slice(&77u64.to_ne_bytes());
        b[48..52].copy_from_slice(&3u32.to_ne_bytes());
        b[64..67].copy_from_slice(b"abc");
        let s = Snapshot::parse(&b);
        assert_eq!(
            (s.magic, s.capacity, s.schema.as_slice()),
            (MAGIC, 77, &b"abc"[..])
        );
        // A hostile schema_len is clamped while parsing and refused by validate.
        b[48..52].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(Snapshot::parse(&b).schema.len(), SCHEMA_MAX);
    }
}
