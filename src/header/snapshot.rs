//! Reading a header from bytes (a `pread` of the segment, before anything is mapped), and
//! validating its identity fields: nothing read from a segment is trusted.

use std::mem::{offset_of, size_of};

use super::{
    abi_word, Descr, EndRecord, Header, Primitive, DESCR_MAX, DESCR_OFFSET, FLAG_MEMBARRIER,
    FLAG_PERSIST, HEADER_SIZE, MAGIC, MAX_DATA_LEN, MAX_HEADER_LEN, REASON_MAX, SCHEMA_MAX,
    VERSION,
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
    pub descr_len: u32,
    pub origin_stream: u64,
    pub origin_first: u64,
    /// The description's bytes, read after the fixed fields ([`Snapshot::wants_descr`]);
    /// empty until then.
    pub descr: Vec<u8>,
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
            descr_len: u32_at(bytes, offset_of!(Header, descr_len)),
            origin_stream: u64_at(bytes, offset_of!(Header, origin_stream)),
            origin_first: u64_at(bytes, offset_of!(Header, origin_first)),
            descr: Vec::new(),
        }
    }

    /// Where the description is and how long, if it is worth reading from a file of
    /// `file_len` bytes: no longer than [`DESCR_MAX`] (so reading it allocates at most that)
    /// and inside the file. [`validate`](Self::validate) refuses a header whose description
    /// was not read in full.
    pub(crate) fn wants_descr(&self, file_len: u64) -> Option<(u64, usize)> {
        let len = self.descr_len as usize;
        let end = (DESCR_OFFSET + len) as u64;
        (len > 0 && len <= DESCR_MAX && end <= file_len).then_some((DESCR_OFFSET as u64, len))
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
        if self.elem_kind == super::MESSAGE_KIND {
            if (self.elem_size, self.elem_align, self.descr_len) != (8, 8, 0) {
                return field(
                    "elem_kind",
                    format!(
                        "a message channel's elements are undescribed 8-byte words aligned \
                         to 8, not {} bytes aligned to {} with a {}-byte description",
                        self.elem_size, self.elem_align, self.descr_len
                    ),
                );
            }
        } else if self.elem_kind != 0 {
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
        self.validate_descr()
    }

    /// Checks the element description: its length within bounds and the header region, its
    /// bytes all read, UTF-8, a description in canonical form, of the element's size, and the
    /// primitive's own for a primitive (which always has one).
    fn validate_descr(&self) -> Result<(), Invalid> {
        let field = |name: &'static str, what: String| Err(Invalid::Field(name, what));
        let len = self.descr_len as usize;
        if len > DESCR_MAX {
            return field("descr_len", format!("{len} > {DESCR_MAX}"));
        }
        if (DESCR_OFFSET + len) as u64 > u64::from(self.header_len) {
            return field(
                "descr_len",
                format!(
                    "{len} bytes from offset {DESCR_OFFSET} do not fit in the header's {}",
                    self.header_len
                ),
            );
        }
        if self.descr.len() != len {
            return field(
                "descr",
                format!("{} of its {len} bytes could be read", self.descr.len()),
            );
        }
        let primitive = Primitive::from_code(self.elem_kind);
        if len == 0 {
            return match primitive {
                Some(p) => field("descr", format!("missing for a {p} channel")),
                None => Ok(()),
            };
        }
        let Ok(text) = std::str::from_utf8(&self.descr) else {
            return field("descr", "not UTF-8".into());
        };
        let d = match Descr::parse(text) {
            Ok(d) => d,
            Err(e) => return field("descr", e.to_string()),
        };
        if d.as_str() != text {
            return field("descr", format!("not in canonical form (that is {d})"));
        }
        if d.size() != self.elem_size as usize {
            return field(
                "descr",
                format!(
                    "{d} describes {} bytes, the elements have {}",
                    d.size(),
                    self.elem_size
                ),
            );
        }
        if let Some(p) = primitive {
            let own = Descr::primitive(p);
            if d != own {
                return field("descr", format!("{d} on a {p} channel, whose is {own}"));
            }
        }
        Ok(())
    }

    /// The element description (valid once [`validate`](Self::validate) passed).
    pub(crate) fn descr_str(&self) -> Option<String> {
        if self.descr.is_empty() {
            None
        } else {
            Some(String::from_utf8_lossy(&self.descr).into_owned())
        }
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
            descr_len: 0,
            origin_stream: 0,
            origin_first: 0,
            descr: vec![],
        }
    }

    /// `good()` with description `d` (and its length).
    fn described(d: &[u8]) -> Snapshot {
        Snapshot {
            descr_len: d.len() as u32,
            descr: d.to_vec(),
            ..good()
        }
    }

    fn descr_refusal(s: &Snapshot) -> (&'static str, String) {
        match s.validate(4096, 8192) {
            Err(Invalid::Field(f, why)) => (f, why),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(&s.descr)),
        }
    }

    /// A description from a segment is checked like every other field.
    #[test]
    fn validate_checks_the_description() {
        assert_eq!(described(b"[('a', '<i4')]").validate(4096, 8192), Ok(()));
        assert_eq!(described(b"'<f4'").validate(4096, 8192), Ok(()));
        for (d, why) in [
            (&b"[('a', '<i4'"[..], "expected"),
            (b"'<f8'", "describes 8 bytes"),
            (b"[(\"a\", '<i4')]", "canonical form"),
            (b"'<i4' ", "canonical form"),
            (b"'\xff'", "not UTF-8"),
            (b"[('a', 'O')]", "Python objects"),
        ] {
            let (f, w) = descr_refusal(&described(d));
            assert!(f == "descr" && w.contains(why), "{d:?}: {f} {w}");
        }
        // Not all of it was read (the file ended inside it).
        let mut s = described(b"'<f4'");
        s.descr.pop();
        assert_eq!(descr_refusal(&s).0, "descr");
        // Lengths beyond the bound or the header region.
        let mut s = good();
        s.descr_len = u32::MAX;
        assert!(descr_refusal(&s).1.contains("> 65536"));
        s.descr_len = 4096 - HEADER_SIZE as u32 + 1;
        assert!(descr_refusal(&s).1.contains("do not fit"));
        // A primitive always has its own description.
        let mut s = good();
        s.elem_kind = Primitive::F32.code();
        assert!(descr_refusal(&s).1.contains("missing for a f32"));
        let mut s = described(b"'<i4'");
        s.elem_kind = Primitive::F32.code();
        assert!(descr_refusal(&s).1.contains("on a f32 channel"));
        let own = Descr::primitive(Primitive::F32);
        let mut s = described(own.as_str().as_bytes());
        s.elem_kind = Primitive::F32.code();
        assert_eq!(s.validate(4096, 8192), Ok(()));
    }

    #[test]
    fn a_description_is_read_only_within_bounds() {
        let mut s = good();
        s.descr_len = 10;
        assert_eq!(s.wants_descr(8192), Some((DESCR_OFFSET as u64, 10)));
        assert_eq!(s.wants_descr(DESCR_OFFSET as u64 + 9), None);
        s.descr_len = DESCR_MAX as u32 + 1;
        assert_eq!(s.wants_descr(u64::MAX), None);
        s.descr_len = 0;
        assert_eq!(s.wants_descr(8192), None);
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
        b[116..120].copy_from_slice(&9u32.to_ne_bytes());
        let s = Snapshot::parse(&b);
        assert_eq!((s.descr_len, s.descr.len()), (9, 0));
        assert_eq!(
            (s.magic, s.capacity, s.schema.as_slice()),
            (MAGIC, 77, &b"abc"[..])
        );
        // A hostile schema_len is clamped while parsing and refused by validate.
        b[48..52].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(Snapshot::parse(&b).schema.len(), SCHEMA_MAX);
    }
}
