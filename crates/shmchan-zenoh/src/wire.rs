//! The bridge's wire format on zenoh: what a sample's attachment says, and the three small
//! messages of the stream's control path (hello, accept, acknowledgement), encoded and
//! decoded. `docs/bridge.md` documents them for clients that do not use this crate. Every
//! field is little-endian; every decoder checks every field (it reads from the network).
//!
//! A data sample's attachment, the frame header (48 bytes, then the schema tag):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `SHZ2` |
//! | 4 | 1 | kind: 0 data, 1 close, 2 abort, 3 writer gone |
//! | 5 | 1 | element kind: 0 a record, 1..=10 `u8 i8 u16 i16 u32 i32 u64 i64 f32 f64` |
//! | 6 | 2 | schema tag length in bytes (at most 48) |
//! | 8 | 4 | element size in bytes |
//! | 12 | 4 | element alignment in bytes |
//! | 16 | 8 | stream id |
//! | 24 | 8 | epoch: the pull's accept this sample belongs to |
//! | 32 | 8 | sequence number: 0, 1, 2, … over the samples of the epoch |
//! | 40 | 8 | offset: the stream's number of the sample's first item |
//! | 48 | n | the schema tag (UTF-8) |

use shmchan::{ElementType, Primitive};

/// The frame header's first bytes.
pub const MAGIC: [u8; 4] = *b"SHZ2";
/// The hello's first bytes.
pub const HELLO_MAGIC: [u8; 4] = *b"SHH2";
/// The accept's first bytes.
pub const ACCEPT_MAGIC: [u8; 4] = *b"SHA2";
/// The first bytes of a refusal (an error reply to a hello, the reason after them): zenoh
/// answers a query that timed out with an error reply too, which has no such prefix.
pub const REFUSAL_MAGIC: [u8; 4] = *b"SHR2";
/// The acknowledgement's first bytes.
pub const ACK_MAGIC: [u8; 4] = *b"SHK2";
/// The fixed part of the frame header and of the hello.
pub const HEADER_LEN: usize = 48;
/// The length of an accept.
pub const ACCEPT_LEN: usize = 32;
/// The fixed part of an acknowledgement (a reset adds its reason).
pub const ACK_LEN: usize = 32;
/// The longest schema tag (as in a channel's header).
pub const SCHEMA_MAX: usize = shmchan::SCHEMA_MAX;
/// The longest reason a reset or an abort carries (as a channel's abort reason).
pub const REASON_MAX: usize = shmchan::REASON_MAX;

/// What a sample is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Items.
    Data,
    /// The writer closed: the stream is complete.
    Close,
    /// The writer aborted (the reason is the payload).
    Abort,
    /// The writer's process died without ending the stream: the stream is not over (a
    /// restarted writer carries it on), but nothing more comes until then.
    WriterGone,
}

/// The element type and schema tag, as the frame header and the hello carry them (bytes 5 to
/// 16, and the tag after the fixed part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// The stream's element type.
    pub elem: ElementType,
    /// The stream's schema tag.
    pub schema: Option<String>,
}

/// A data sample's attachment, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the sample is.
    pub kind: Kind,
    /// The stream's element type and schema tag.
    pub element: Element,
    /// The stream (the local channel it comes from).
    pub stream: u64,
    /// The pull's accept the sample is sent under.
    pub epoch: u64,
    /// The sample's number in its epoch.
    pub seq: u64,
    /// The stream's number of the sample's first item (for an end, the stream's length).
    pub offset: u64,
}

/// What a push asks for, in the query on `KEY/_bridge/hello`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// A goodbye, not a hello: the push has the acknowledgement of the stream's end, and
    /// the pull may go.
    pub goodbye: bool,
    /// The stream's element type and schema tag.
    pub element: Element,
    /// The stream (the local channel it comes from).
    pub stream: u64,
    /// The first item the push still holds (its local channel's consumed count).
    pub first: u64,
    /// The items its local channel held when it asked (its committed count).
    pub last: u64,
    /// The most items the push can have in flight (its local ring's capacity).
    pub window: u64,
}

/// The pull's answer to a [`Hello`] that it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The far channel holds the stream's end already: nothing is to be sent.
    pub ended: bool,
    /// The epoch the push's samples are to carry.
    pub epoch: u64,
    /// The first item the far channel does not hold: the push sends from here.
    pub resume: u64,
    /// The most items the push may send beyond the last acknowledged.
    pub window: u64,
}

/// What an acknowledgement says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// The far channel holds the stream's items up to `committed`.
    Progress,
    /// The stream's end (at `committed`) is in the far channel.
    End,
    /// The pull dropped the epoch (the reason follows): ask again.
    Reset,
}

/// An acknowledgement on `KEY/_bridge/ack`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// What it says.
    pub kind: AckKind,
    /// The stream.
    pub stream: u64,
    /// The epoch it concerns.
    pub epoch: u64,
    /// The stream's items in the far channel.
    pub committed: u64,
    /// Why, for a reset.
    pub reason: String,
}

/// Why bytes from the network were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than its fixed part, or than its schema length says.
    #[error("{0} bytes, too short")]
    Short(usize),
    /// Longer than it may be.
    #[error("{0} bytes, too long")]
    Long(usize),
    /// Not what it should be.
    #[error("not a shmchan bridge message (magic {0:02x?})")]
    Magic([u8; 4]),
    /// A kind this version does not know.
    #[error("unknown kind {0}")]
    Kind(u8),
    /// An element kind or layout no channel can have.
    #[error("invalid element type: {0}")]
    Element(String),
    /// A schema tag that is too long or not UTF-8.
    #[error("invalid schema tag: {0}")]
    Schema(&'static str),
    /// A stream id of 0 (no stream).
    #[error("stream id 0")]
    Stream,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

fn primitive_code(p: Option<Primitive>) -> u8 {
    p.and_then(|p| Primitive::ALL.iter().position(|q| *q == p))
        .map_or(0, |i| i as u8 + 1)
}

/// Checks the first four bytes of `b`, at least `min` long.
fn magic(b: &[u8], want: [u8; 4], min: usize) -> Result<(), WireError> {
    if b.len() < min.max(4) {
        return Err(WireError::Short(b.len()));
    }
    let got = [b[0], b[1], b[2], b[3]];
    if got != want {
        return Err(WireError::Magic(got));
    }
    Ok(())
}

impl Element {
    /// Writes bytes 4 to 16 (`kind` first) of a frame header or hello.
    fn encode_into(&self, out: &mut Vec<u8>, kind: u8) {
        let schema = self.tag();
        out.push(kind);
        out.push(primitive_code(self.elem.primitive_type()));
        out.extend_from_slice(&(schema.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.elem.size() as u32).to_le_bytes());
        out.extend_from_slice(&(self.elem.align() as u32).to_le_bytes());
    }

    /// The schema tag's bytes as sent (cut at [`SCHEMA_MAX`]).
    fn tag(&self) -> &[u8] {
        let s = self.schema.as_deref().unwrap_or("").as_bytes();
        &s[..s.len().min(SCHEMA_MAX)]
    }

    /// Reads bytes 5 to 16 and the schema tag after the fixed part of `b` (≥ 48 bytes).
    fn decode(b: &[u8]) -> Result<Element, WireError> {
        let (size, align) = (u32_at(b, 8) as usize, u32_at(b, 12) as usize);
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
        let schema_len = u16::from_le_bytes([b[6], b[7]]) as usize;
        if schema_len > SCHEMA_MAX {
            return Err(WireError::Schema("longer than 48 bytes"));
        }
        let Some(tag) = b.get(HEADER_LEN..HEADER_LEN + schema_len) else {
            return Err(WireError::Short(b.len()));
        };
        if b.len() > HEADER_LEN + schema_len {
            return Err(WireError::Long(b.len()));
        }
        let tag = std::str::from_utf8(tag).map_err(|_| WireError::Schema("not UTF-8"))?;
        Ok(Element {
            elem,
            schema: (!tag.is_empty()).then(|| tag.to_string()),
        })
    }
}

impl Frame {
    /// The attachment bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + SCHEMA_MAX);
        out.extend_from_slice(&MAGIC);
        let kind = match self.kind {
            Kind::Data => 0,
            Kind::Close => 1,
            Kind::Abort => 2,
            Kind::WriterGone => 3,
        };
        self.element.encode_into(&mut out, kind);
        for w in [self.stream, self.epoch, self.seq, self.offset] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(self.element.tag());
        out
    }

    /// Decodes an attachment.
    pub fn decode(b: &[u8]) -> Result<Frame, WireError> {
        magic(b, MAGIC, HEADER_LEN)?;
        let kind = match b[4] {
            0 => Kind::Data,
            1 => Kind::Close,
            2 => Kind::Abort,
            3 => Kind::WriterGone,
            k => return Err(WireError::Kind(k)),
        };
        Ok(Frame {
            kind,
            element: Element::decode(b)?,
            stream: u64_at(b, 16),
            epoch: u64_at(b, 24),
            seq: u64_at(b, 32),
            offset: u64_at(b, 40),
        })
    }
}

impl Hello {
    /// The query's payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + SCHEMA_MAX);
        out.extend_from_slice(&HELLO_MAGIC);
        self.element.encode_into(&mut out, u8::from(self.goodbye));
        for w in [self.stream, self.first, self.last, self.window] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(self.element.tag());
        out
    }

    /// Decodes a query's payload; `first ≤ last` and a stream id other than 0 are checked.
    pub fn decode(b: &[u8]) -> Result<Hello, WireError> {
        magic(b, HELLO_MAGIC, HEADER_LEN)?;
        let goodbye = match b[4] {
            0 => false,
            1 => true,
            k => return Err(WireError::Kind(k)),
        };
        let hello = Hello {
            goodbye,
            element: Element::decode(b)?,
            stream: u64_at(b, 16),
            first: u64_at(b, 24),
            last: u64_at(b, 32),
            window: u64_at(b, 40),
        };
        if hello.stream == 0 {
            return Err(WireError::Stream);
        }
        if hello.first > hello.last || hello.window == 0 {
            return Err(WireError::Element(format!(
                "items {}..{} with a window of {}",
                hello.first, hello.last, hello.window
            )));
        }
        Ok(hello)
    }
}

impl Accept {
    /// The reply's payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ACCEPT_LEN);
        out.extend_from_slice(&ACCEPT_MAGIC);
        out.extend_from_slice(&u32::from(self.ended).to_le_bytes());
        for w in [self.epoch, self.resume, self.window] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Decodes a reply's payload.
    pub fn decode(b: &[u8]) -> Result<Accept, WireError> {
        magic(b, ACCEPT_MAGIC, ACCEPT_LEN)?;
        if b.len() > ACCEPT_LEN {
            return Err(WireError::Long(b.len()));
        }
        let ended = match u32_at(b, 4) {
            0 => false,
            1 => true,
            k => return Err(WireError::Kind(k.min(255) as u8)),
        };
        let window = u64_at(b, 24);
        if window == 0 {
            return Err(WireError::Element("a window of 0 items".into()));
        }
        Ok(Accept {
            ended,
            epoch: u64_at(b, 8),
            resume: u64_at(b, 16),
            window,
        })
    }
}

impl Ack {
    /// The payload.
    pub fn encode(&self) -> Vec<u8> {
        let reason = self.reason.as_bytes();
        let reason = &reason[..reason.len().min(REASON_MAX)];
        let mut out = Vec::with_capacity(ACK_LEN + reason.len());
        out.extend_from_slice(&ACK_MAGIC);
        let kind: u32 = match self.kind {
            AckKind::Progress => 0,
            AckKind::End => 1,
            AckKind::Reset => 2,
        };
        out.extend_from_slice(&kind.to_le_bytes());
        for w in [self.stream, self.epoch, self.committed] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(reason);
        out
    }

    /// Decodes a payload.
    pub fn decode(b: &[u8]) -> Result<Ack, WireError> {
        magic(b, ACK_MAGIC, ACK_LEN)?;
        if b.len() > ACK_LEN + REASON_MAX {
            return Err(WireError::Long(b.len()));
        }
        let kind = match u32_at(b, 4) {
            0 => AckKind::Progress,
            1 => AckKind::End,
            2 => AckKind::Reset,
            k => return Err(WireError::Kind(k.min(255) as u8)),
        };
        Ok(Ack {
            kind,
            stream: u64_at(b, 8),
            epoch: u64_at(b, 16),
            committed: u64_at(b, 24),
            reason: String::from_utf8_lossy(&b[ACK_LEN..]).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests;
