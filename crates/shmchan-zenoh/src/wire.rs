//! The bridge's wire format on zenoh: what a sample's attachment says, encoded and decoded.
//! `docs/bridge.md` documents it for clients that do not use this crate.
//!
//! Every sample on the data key carries a 40-byte frame header (plus the schema tag) as its
//! attachment, all little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `SHZ1` |
//! | 4 | 1 | kind: 0 data, 1 close, 2 abort |
//! | 5 | 1 | element kind: 0 a record, 1..=10 `u8 i8 u16 i16 u32 i32 u64 i64 f32 f64` |
//! | 6 | 2 | schema tag length in bytes (at most 48) |
//! | 8 | 4 | element size in bytes |
//! | 12 | 4 | element alignment in bytes |
//! | 16 | 8 | stream id (random, one per push run) |
//! | 24 | 8 | sequence number: 0, 1, 2, … over every sample of the stream |
//! | 32 | 8 | items of the stream before this sample |
//! | 40 | n | the schema tag (UTF-8) |
//!
//! A data sample's payload is a whole number of elements, raw, in the byte order of a
//! little-endian host. A close sample's payload is empty; an abort's is the reason (UTF-8).

use shmchan::{ElementType, Primitive};

/// The attachment's first bytes.
pub const MAGIC: [u8; 4] = *b"SHZ1";
/// The fixed part of the attachment.
pub const HEADER_LEN: usize = 40;
/// The longest schema tag (as in a channel's header).
pub const SCHEMA_MAX: usize = shmchan::SCHEMA_MAX;

/// What a sample is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Items.
    Data,
    /// The writer closed: the stream is complete.
    Close,
    /// The writer aborted (reason in the payload), or the push gave up.
    Abort,
}

/// A sample's attachment, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the sample is.
    pub kind: Kind,
    /// The stream's element type.
    pub elem: ElementType,
    /// The stream's schema tag.
    pub schema: Option<String>,
    /// The push run the stream belongs to.
    pub stream: u64,
    /// The sample's number in its stream.
    pub seq: u64,
    /// Items of the stream before this sample.
    pub offset: u64,
}

/// Why an attachment was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than its header, or than its schema length says.
    #[error("the attachment is {0} bytes, too short for a shmchan frame header")]
    Short(usize),
    /// Not a shmchan frame.
    #[error("the attachment does not start with the shmchan magic")]
    Magic,
    /// A kind this version does not know.
    #[error("unknown sample kind {0}")]
    Kind(u8),
    /// An element kind or layout no channel can have.
    #[error("invalid element type: {0}")]
    Element(String),
    /// A schema tag that is too long or not UTF-8.
    #[error("invalid schema tag: {0}")]
    Schema(&'static str),
}

fn primitive_code(p: Option<Primitive>) -> u8 {
    p.and_then(|p| Primitive::ALL.iter().position(|q| *q == p))
        .map_or(0, |i| i as u8 + 1)
}

impl Frame {
    /// The attachment bytes.
    pub fn encode(&self) -> Vec<u8> {
        let schema = self.schema.as_deref().unwrap_or("").as_bytes();
        let schema = &schema[..schema.len().min(SCHEMA_MAX)];
        let mut out = Vec::with_capacity(HEADER_LEN + schema.len());
        out.extend_from_slice(&MAGIC);
        out.push(match self.kind {
            Kind::Data => 0,
            Kind::Close => 1,
            Kind::Abort => 2,
        });
        out.push(primitive_code(self.elem.primitive_type()));
        out.extend_from_slice(&(schema.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.elem.size() as u32).to_le_bytes());
        out.extend_from_slice(&(self.elem.align() as u32).to_le_bytes());
        out.extend_from_slice(&self.stream.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(schema);
        out
    }

    /// Decodes an attachment; every field is checked (it comes from the network).
    pub fn decode(b: &[u8]) -> Result<Frame, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Short(b.len()));
        }
        if b[..4] != MAGIC {
            return Err(WireError::Magic);
        }
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let kind = match b[4] {
            0 => Kind::Data,
            1 => Kind::Close,
            2 => Kind::Abort,
            k => return Err(WireError::Kind(k)),
        };
        let (size, align) = (u32_at(8) as usize, u32_at(12) as usize);
        let elem = match b[5] {
            0 => ElementType::record(size, align).map_err(|e| WireError::Element(e.to_string()))?,
            c => {
                let p = Primitive::ALL
                    .get(c as usize - 1)
                    .copied()
                    .ok_or_else(|| WireError::Element(format!("element kind {c}")))?;
                let e = ElementType::primitive(p);
                if (e.size(), e.align()) != (size, align) {
                    return Err(WireError::Element(format!(
                        "{p} with {size} bytes aligned to {align}"
                    )));
                }
                e
            }
        };
        let schema_len = u16_at(6) as usize;
        if schema_len > SCHEMA_MAX {
            return Err(WireError::Schema("longer than 48 bytes"));
        }
        let Some(tag) = b.get(HEADER_LEN..HEADER_LEN + schema_len) else {
            return Err(WireError::Short(b.len()));
        };
        let tag = std::str::from_utf8(tag).map_err(|_| WireError::Schema("not UTF-8"))?;
        Ok(Frame {
            kind,
            elem,
            schema: (!tag.is_empty()).then(|| tag.to_string()),
            stream: u64_at(16),
            seq: u64_at(24),
            offset: u64_at(32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_is_refused() {
        let f = Frame {
            kind: Kind::Abort,
            elem: ElementType::record(24, 8).unwrap(),
            schema: Some("imu/v1".into()),
            stream: 0xdead_beef,
            seq: 7,
            offset: 12345,
        };
        let b = f.encode();
        assert_eq!(b.len(), HEADER_LEN + 6);
        assert_eq!(Frame::decode(&b), Ok(f));
        let p = Frame {
            kind: Kind::Data,
            elem: ElementType::primitive(Primitive::F32),
            schema: None,
            stream: 1,
            seq: 0,
            offset: 0,
        };
        assert_eq!(Frame::decode(&p.encode()), Ok(p));
        assert_eq!(Frame::decode(&b[..39]), Err(WireError::Short(39)));
        let mut bad = b.clone();
        bad[0] = b'X';
        assert_eq!(Frame::decode(&bad), Err(WireError::Magic));
        let mut bad = b.clone();
        bad[4] = 9;
        assert_eq!(Frame::decode(&bad), Err(WireError::Kind(9)));
        let mut bad = b.clone();
        bad[5] = 11;
        assert!(matches!(Frame::decode(&bad), Err(WireError::Element(_))));
        let mut bad = b.clone();
        bad[12] = 3; // alignment 3
        assert!(matches!(Frame::decode(&bad), Err(WireError::Element(_))));
        let mut bad = b.clone();
        bad[6] = 200; // schema longer than the attachment
        assert!(Frame::decode(&bad).is_err());
        // Any bytes at all: an error or a frame, never a panic.
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut g = b.clone();
            let i = (x % g.len() as u64) as usize;
            g[i] = (x >> 32) as u8;
            let _ = Frame::decode(&g);
            let _ = Frame::decode(&g[..(x >> 40) as usize % (g.len() + 1)]);
        }
    }
}
