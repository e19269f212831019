//! Reading a header from bytes (a `pread` of the segment, before anything is mapped), and
//! validating its identity fields: nothing read from a segment is trusted.

use std::mem::{offset_of, size_of};

use super::{
    abi_word, EndRecord, Header, Primitive, FLAG_MEMBARRIER, FLAG_PERSIST, HEADER_SIZE, MAGIC,
    MAX_DATA_LEN, MAX_HEADER_LEN, REASON_MAX, SCHEMA_MAX, VERSION,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{abi_word, MAGIC, VERSION};

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
