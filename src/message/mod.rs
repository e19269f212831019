//! [`MessageChannel`]: a channel whose items are byte messages of any length up to the
//! ring's size, with ends that copy them ([`MessageWriter::put`], [`MessageReader::get`]) or
//! write and read them in place ([`MessageWriter::reserve`], [`MessageReader::peek`]).
//!
//! # Framing
//!
//! The ring of a message channel holds 8-byte words. A message of `len` bytes takes
//! `1 + ⌈len / 8⌉` words: a length word (`len`, native-endian `u64`), then its bytes, padded
//! with zeros to a whole word. The writer commits a message's words with one store of
//! `tail`, and the reader consumes them with one store of `head`, so both indices always
//! stand at a message boundary: a reader or a writer restarted after a kill -9 resumes at
//! the first whole message the channel holds. The mirror mapping keeps every run of words
//! contiguous, so a message is one slice, and its bytes start 8-byte aligned.
//!
//! The channel's header records that it holds messages ([`ChannelInfo::messages`]); a typed
//! or raw open of it, and a message open of any other channel, fail with
//! [`ElementMismatch`](crate::ErrorKind::ElementMismatch).
//!
//! # A hostile writer
//!
//! The length word comes from the peer. The reader reads it once and takes a message only
//! when the length word and all the words it announces are committed: a length that runs
//! past the committed words is [`Corrupted`](crate::ErrorKind::Corrupted) (an honest writer
//! commits a message whole), so a corrupt length never makes the reader touch memory outside
//! the ring. The messages before a corrupt length are delivered; the call after them reports
//! it.
//!
//! The copying calls (`put`, `get`) copy through the in-place views of the typed fronts
//! ([`Slots`](crate::Slots), [`View`](crate::View)), so what those say of a peer that writes
//! into the segment against the protocol holds for them too: such a peer can garble the
//! bytes of a message, never its bounds.
//!
//! [`ChannelInfo::messages`]: crate::ChannelInfo::messages

use crate::channel::{ChannelIo, Kind};
use crate::element::{ElementType, Typed};
use crate::error::{Context, Error, ErrorKind};
use crate::header::{End, MESSAGE_TYPE};
use crate::options::Options;
use crate::segment::Layout;

mod reader;
#[cfg(test)]
mod tests;
mod view;
mod writer;

pub use reader::{Message, MessageReader};
pub use view::Messages;
pub use writer::{MessageSlot, MessageWriter};

/// Bytes of one word of the ring.
const WORD: usize = 8;

/// The words a message of `len` bytes takes: its length word and its bytes, padded. `None`
/// if that overflows (no ring has that many words).
#[inline]
fn words(len: usize) -> Option<usize> {
    len.checked_add(WORD - 1).map(|l| l / WORD + 1)
}

/// The longest message a ring of `capacity` words takes.
#[inline]
fn max_len(capacity: usize) -> usize {
    capacity.saturating_sub(1) * WORD
}

/// The error for a message of `len` bytes that a ring of `capacity` words cannot take.
fn oversized(name: &str, end: End, len: usize, capacity: usize) -> Error {
    Error::new(ErrorKind::Oversized, name)
        .by(end)
        .with_context(Context::MessageLimit {
            len,
            max: max_len(capacity),
        })
}

/// The kind of a message channel: a ring of `u64` words, marked as messages.
fn kind() -> Kind<Typed> {
    Kind {
        layout: Layout {
            size: WORD,
            align: WORD,
            type_name: MESSAGE_TYPE,
            kind: None,
            message: true,
            descr: None,
        },
        elem: ElementType::of::<u64>(),
        stride: Typed,
    }
}

/// A named channel of byte messages: each `put` appends whole messages of any length (up to
/// the ring's size, [`max_message_len`](Self::max_message_len)), and each `get` takes whole
/// messages, in order. Everything else is as for [`ChannelIo`]: opening by name, one writer
/// and one reader, close and abort, peer death, timeouts, the async calls and their
/// blocking twins, and the event-loop API of the ends.
///
/// A message channel carries what fixed-layout elements cannot: text, serialized values
/// (JSON, msgpack, protobuf, Arrow IPC), arrays whose shape changes from one message to the
/// next.
///
/// ```
/// use shmchan::{MessageChannel, Options};
/// # let name = format!("doc-msg-{}", std::process::id());
/// let chan = MessageChannel::create(&name, Options::new())?;
/// let (mut w, mut r) = (chan.writer()?, chan.reader()?);
/// w.blocking_put(&["hello", "", "a longer message"])?;
///
/// let mut got = vec![Vec::new(); 2];
/// r.blocking_get(&mut got)?; // exactly 2 messages
/// assert_eq!(got, [b"hello".to_vec(), Vec::new()]);
/// let m = r.blocking_peek()?; // the next one, in place
/// assert_eq!(&*m, b"a longer message");
/// m.consume();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Options are those of [`ChannelIo`]; [`Options::capacity`] counts the ring's 8-byte words
/// (rounded up to whole pages, as for any channel), and the default is a 1 MiB ring. A
/// message takes one word more than its bytes fill.
#[derive(Clone, Debug)]
pub struct MessageChannel {
    chan: ChannelIo<u64>,
}

impl MessageChannel {
    /// Creates message channel `name`; fails if it exists. As [`ChannelIo::create`].
    ///
    /// # Errors
    ///
    /// As [`ChannelIo::create`];
    /// [`InvalidDescr`](ErrorKind::InvalidDescr) if `options` give an element
    /// description (messages are bytes).
    pub fn create(name: &str, options: Options) -> Result<MessageChannel, Error> {
        ChannelIo::create_kind(name, kind(), &options).map(|chan| MessageChannel { chan })
    }

    /// Opens existing message channel `name`, which must have no schema tag. As
    /// [`ChannelIo::open`].
    ///
    /// # Errors
    ///
    /// As [`ChannelIo::open`]; [`ElementMismatch`](ErrorKind::ElementMismatch) if the
    /// channel holds elements, not messages.
    pub fn open(name: &str) -> Result<MessageChannel, Error> {
        MessageChannel::open_with(name, Options::new())
    }

    /// Opens existing message channel `name` with `options`' schema tag, which must match.
    /// As [`ChannelIo::open_with`].
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`ChannelIo::open_with`].
    pub fn open_with(name: &str, options: Options) -> Result<MessageChannel, Error> {
        ChannelIo::open_kind(name, kind(), &options).map(|chan| MessageChannel { chan })
    }

    /// Opens message channel `name`, creating it if it does not exist. As
    /// [`ChannelIo::create_or_open`].
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn create_or_open(name: &str, options: Options) -> Result<MessageChannel, Error> {
        ChannelIo::create_or_open_kind(name, kind, &options).map(|chan| MessageChannel { chan })
    }

    /// Claims the writing end. As [`ChannelIo::writer`].
    ///
    /// # Errors
    ///
    /// As [`ChannelIo::writer`].
    pub fn writer(&self) -> Result<MessageWriter, Error> {
        self.chan.writer().map(MessageWriter::new)
    }

    /// Claims the reading end. As [`ChannelIo::reader`].
    ///
    /// # Errors
    ///
    /// As [`ChannelIo::reader`].
    pub fn reader(&self) -> Result<MessageReader, Error> {
        self.chan.reader().map(MessageReader::new)
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.chan.name()
    }

    /// Bytes of ring: what the messages in the channel take at most, with their length
    /// words and padding.
    pub fn capacity_bytes(&self) -> usize {
        self.chan.capacity() * WORD
    }

    /// The longest message the channel takes, in bytes: the ring less one length word.
    pub fn max_message_len(&self) -> usize {
        max_len(self.chan.capacity())
    }

    /// Bytes of ring the messages in the channel take now, with their length words and
    /// padding (a snapshot).
    pub fn len_bytes(&self) -> usize {
        self.chan.len() * WORD
    }

    /// True if the channel holds no message now (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.chan.is_empty()
    }

    /// The schema tag, if any.
    pub fn schema(&self) -> Option<&str> {
        self.chan.schema()
    }

    /// The stream this channel continues, if its creator recorded one
    /// ([`Options::origin`]).
    pub fn origin(&self) -> Option<crate::Origin> {
        self.chan.origin()
    }

    /// Keeps this handle's memory mapped for as long as the result lives. As
    /// [`ChannelIo::keep_mapped`].
    pub fn keep_mapped(&self) -> crate::KeepMapped {
        self.chan.keep_mapped()
    }
}
