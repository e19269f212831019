//! The wire format of a segment's header: the byte offset of each field, taken from the
//! code (`offset_of!` on the `#[repr(C)]` header), for tools that read a segment without this
//! crate and for tests. The table in `docs/design.md` is checked against these by a test.
//!
//! Every field is native-endian; a segment records the creating build's endianness and
//! pointer width (`abi`), and an opener refuses another's.
//!
//! ```
//! use shmchan::layout;
//! assert_eq!((layout::TAIL, layout::HEAD), (128, 256));
//! assert!(layout::HEADER_SIZE <= 4096); // the data region starts at the next page
//! ```

use std::mem::{offset_of, size_of};

use crate::header::{EndRecord, Header};

/// `magic`: `b"SHMCHAN\0"` as a little-endian u64 (8 bytes).
pub const MAGIC: usize = offset_of!(Header, magic);
/// `version`: the layout version (u32).
pub const VERSION: usize = offset_of!(Header, version);
/// `header_len`: bytes before the data region, a page multiple (u32).
pub const HEADER_LEN: usize = offset_of!(Header, header_len);
/// `elem_size`: bytes per element (u32).
pub const ELEM_SIZE: usize = offset_of!(Header, elem_size);
/// `elem_align`: alignment of an element (u32).
pub const ELEM_ALIGN: usize = offset_of!(Header, elem_align);
/// `capacity`: elements in the ring (u64).
pub const CAPACITY: usize = offset_of!(Header, capacity);
/// `data_len`: bytes of the ring (u64).
pub const DATA_LEN: usize = offset_of!(Header, data_len);
/// `abi`: endianness (byte 0) and pointer width (byte 1) of the creating build (u32).
pub const ABI: usize = offset_of!(Header, abi);
/// `flags`: bit 0 persist, bit 1 membarrier (u32).
pub const FLAGS: usize = offset_of!(Header, flags);
/// `schema_len`: bytes of `schema` used (u32).
pub const SCHEMA_LEN: usize = offset_of!(Header, schema_len);
/// `creator_pid` (u32).
pub const CREATOR_PID: usize = offset_of!(Header, creator_pid);
/// `created_unix_ns` (u64).
pub const CREATED_UNIX_NS: usize = offset_of!(Header, created_unix_ns);
/// `schema`: the schema tag, [`SCHEMA_MAX`](crate::SCHEMA_MAX) bytes.
pub const SCHEMA: usize = offset_of!(Header, schema);
/// `elem_kind`: the [`Primitive`](crate::Primitive) code, 0 for other types (u32).
pub const ELEM_KIND: usize = offset_of!(Header, elem_kind);
/// `descr_len`: bytes of the element description at [`DESCR`], 0 for none (u32).
pub const DESCR_LEN: usize = offset_of!(Header, descr_len);
/// `tail`: items ever committed (u64, on a 128-byte line of its own).
pub const TAIL: usize = offset_of!(Header, tail);
/// `head`: items ever consumed (u64, on a 128-byte line of its own).
pub const HEAD: usize = offset_of!(Header, head);
/// `data_waiting`: 1 while the reader may sleep for items (u32, own line).
pub const DATA_WAITING: usize = offset_of!(Header, data_waiting);
/// `room_waiting`: 1 while the writer may sleep for room (u32, own line).
pub const ROOM_WAITING: usize = offset_of!(Header, room_waiting);
/// `writer_state`: 0 open, 1 closed, 2 aborted (u32).
pub const WRITER_STATE: usize = offset_of!(Header, writer_state);
/// `reader_state`: 0 open, 1 closed (u32).
pub const READER_STATE: usize = offset_of!(Header, reader_state);
/// `reason_len`: bytes of `reason` used (u32).
pub const REASON_LEN: usize = offset_of!(Header, reason_len);
/// `reason`: the abort reason, [`REASON_MAX`](crate::REASON_MAX) bytes.
pub const REASON: usize = offset_of!(Header, reason);
/// `origin_stream`: the stream the channel continues, 0 for none (u64; see
/// [`Origin`](crate::Origin)).
pub const ORIGIN_STREAM: usize = offset_of!(Header, origin_stream);
/// `origin_first`: the stream's number of the channel's item 0 (u64).
pub const ORIGIN_FIRST: usize = offset_of!(Header, origin_first);
/// `ends`: two records of [`END_RECORD_SIZE`] bytes, the writer's then the reader's.
pub const ENDS: usize = offset_of!(Header, ends);
/// Bytes of one end record: `pid` (u32) at 0, `start_time` (u64) at 8, `claims` (u64) at 16.
pub const END_RECORD_SIZE: usize = size_of::<EndRecord>();
/// Bytes of the header's fields; the data region starts at `header_len` (≥ this).
pub const HEADER_SIZE: usize = size_of::<Header>();
/// `descr`: the element's canonical [`Descr`](crate::Descr), `descr_len` bytes of UTF-8
/// right after the fixed fields, inside the header region.
pub const DESCR: usize = crate::header::DESCR_OFFSET;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of the header as (name in the docs' tables, offset, size), the size as
    /// the tables write it (a number, or the field that gives it).
    fn fields() -> Vec<(&'static str, usize, String)> {
        let next = |a: usize, b: usize| b - a;
        let fixed: Vec<(&'static str, usize, usize)> = vec![
            ("magic", MAGIC, 8),
            ("version", VERSION, 4),
            ("header_len", HEADER_LEN, 4),
            ("elem_size", ELEM_SIZE, 4),
            ("elem_align", ELEM_ALIGN, 4),
            ("capacity", CAPACITY, 8),
            ("data_len", DATA_LEN, 8),
            ("abi", ABI, 4),
            ("flags", FLAGS, 4),
            ("schema_len", SCHEMA_LEN, 4),
            ("creator_pid", CREATOR_PID, 4),
            ("created_unix_ns", CREATED_UNIX_NS, 8),
            ("schema", SCHEMA, next(SCHEMA, ELEM_KIND)),
            ("elem_kind", ELEM_KIND, 4),
            ("descr_len", DESCR_LEN, 4),
            ("tail", TAIL, 8),
            ("head", HEAD, 8),
            ("data_waiting", DATA_WAITING, 4),
            ("room_waiting", ROOM_WAITING, 4),
            ("writer_state", WRITER_STATE, 4),
            ("reader_state", READER_STATE, 4),
            ("reason_len", REASON_LEN, 4),
            ("reason", REASON, crate::REASON_MAX),
            ("origin_stream", ORIGIN_STREAM, 8),
            ("origin_first", ORIGIN_FIRST, 8),
            ("ends[0]", ENDS, END_RECORD_SIZE),
            ("ends[1]", ENDS + END_RECORD_SIZE, END_RECORD_SIZE),
        ];
        let mut all: Vec<_> = fixed
            .into_iter()
            .map(|(f, o, s)| (f, o, s.to_string()))
            .collect();
        all.push(("descr", DESCR, "descr_len".to_string()));
        all
    }

    /// The (field, offset, size) rows of a Markdown table whose rows start
    /// `| offset | size | `field` |`.
    fn table(doc: &str) -> Vec<(String, usize, String)> {
        doc.lines()
            .filter_map(|l| {
                let l = l.trim_start_matches("//!").trim();
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let offset = cells.get(1)?.parse().ok()?;
                let size = cells.get(2)?.trim_matches('`').to_string();
                let field = cells.get(3)?.trim_matches('`').to_string();
                Some((field, offset, size))
            })
            .collect()
    }

    fn same_as_code(doc: &str, rename: impl Fn(&str) -> String) {
        let rows = table(doc);
        let want: Vec<(String, usize, String)> = fields()
            .into_iter()
            .map(|(f, o, s)| (rename(f), o, s))
            .collect();
        assert_eq!(rows, want);
    }

    #[test]
    fn the_module_docs_table_is_the_code() {
        same_as_code(include_str!("header/mod.rs"), str::to_string);
    }

    #[test]
    fn the_design_docs_table_is_the_code() {
        same_as_code(include_str!("../docs/design.md"), |f| {
            f.replace("ends[0]", "ends[writer]")
                .replace("ends[1]", "ends[reader]")
        });
    }
}
