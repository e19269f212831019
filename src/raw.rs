//! [`RawChannel`]: a channel whose element type is known at run time, with ends that move
//! elements as bytes.

use std::num::NonZeroUsize;

use crate::channel::{ChannelIo, Kind};
use crate::element::{Bytes, ElementType};
use crate::error::Error;
use crate::header::Primitive;
use crate::options::Options;
use crate::reader::{ReaderFront, View};
use crate::segment::Layout;
use crate::writer::{Slots, WriterFront};

/// The writing end of a [`RawChannel`]: [`WriterFront`] over bytes. `put(&[u8])` takes a
/// whole number of elements; counts (`accepted`, `try_put`'s result) are in elements.
pub type RawWriter = WriterFront<u8, Bytes>;
/// The reading end of a [`RawChannel`]: [`ReaderFront`] over bytes. `get(&mut [u8])` fills
/// a whole number of elements; counts (`get_some`'s result, `remaining`, `filled`) are in
/// elements.
pub type RawReader = ReaderFront<u8, Bytes>;
/// The zero-copy view of a [`RawReader`]: bytes, a whole number of elements.
pub type RawView<'a> = View<'a, u8, Bytes>;
/// The lent slots of a [`RawWriter`]: bytes, a whole number of elements.
pub type RawSlots<'a> = Slots<'a, u8, Bytes>;

/// A named channel whose element type is given at run time ([`ElementType`]); its ends move
/// elements as bytes.
///
/// The same channel as a [`ChannelIo<T>`](crate::ChannelIo) of a `T` with that size and
/// alignment (and primitive kind, if one, and [description](Options::descr), if both sides
/// give one): the segment records only the layout, so a typed writer and a raw reader (or
/// the reverse) share one stream. This is how the Python front
/// maps a numpy dtype to a channel, and how a tool or a bridge forwards a channel of any
/// type. Everything else is as for `ChannelIo`: the same checks on open, the same ring and
/// waiting, the same close, abort and peer-death behaviour.
///
/// ```
/// use shmchan::{ChannelIo, ElementType, Options, RawChannel};
/// # let name = format!("doc-raw-{}", std::process::id());
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Sample { t: u64, x: f32, y: f32 }
///
/// let chan = ChannelIo::<Sample>::create(&name, Options::new().schema("sample/v1"))?;
/// let mut w = chan.writer()?;
/// w.blocking_put(&[Sample { t: 1, x: 0.5, y: -0.5 }])?;
///
/// // Elsewhere, knowing the layout only at run time:
/// let raw = RawChannel::open(&name, ElementType::record(16, 8)?, Options::new().schema("sample/v1"))?;
/// let mut r = raw.reader()?;
/// let mut bytes = [0u8; 16];
/// r.blocking_get(&mut bytes)?; // one element
/// assert_eq!(u64::from_ne_bytes(bytes[..8].try_into()?), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// It is the generic channel over bytes, [`ChannelIo<u8, Bytes>`], whose methods (`writer`,
/// `reader`, `name`, `capacity`, ...) it has through `Deref`; what it adds are the
/// constructors that take the element type as a value.
#[derive(Clone, Debug)]
pub struct RawChannel {
    chan: ChannelIo<u8, Bytes>,
}

impl std::ops::Deref for RawChannel {
    type Target = ChannelIo<u8, Bytes>;

    fn deref(&self) -> &ChannelIo<u8, Bytes> {
        &self.chan
    }
}

/// The kind of a raw channel of `elem`.
fn raw(elem: ElementType) -> Kind<Bytes> {
    Kind {
        layout: Layout {
            size: elem.size(),
            align: elem.align(),
            type_name: elem.type_name(),
            kind: elem.primitive_type(),
            message: false,
            descr: None,
        },
        elem,
        // `ElementType` sizes are never zero.
        stride: Bytes(NonZeroUsize::new(elem.size()).unwrap_or(NonZeroUsize::MIN)),
    }
}

impl RawChannel {
    /// Creates channel `name` for elements of `elem`; fails if it exists. As
    /// [`ChannelIo::create`].
    ///
    /// # Errors
    ///
    /// As [`ChannelIo::create`].
    pub fn create(name: &str, elem: ElementType, options: Options) -> Result<RawChannel, Error> {
        ChannelIo::create_kind(name, raw(elem), &options).map(|chan| RawChannel { chan })
    }

    /// Opens existing channel `name`, which must hold elements of `elem`'s size and alignment
    /// (and primitive kind, where both sides name one, and `options`' description, where
    /// both sides have one) and have `options`' schema tag. As
    /// [`ChannelIo::open_with`].
    ///
    /// # Errors
    ///
    /// As [`ChannelIo::open_with`].
    pub fn open(name: &str, elem: ElementType, options: Options) -> Result<RawChannel, Error> {
        ChannelIo::open_kind(name, raw(elem), &options).map(|chan| RawChannel { chan })
    }

    /// Opens existing channel `name` with whatever element type it holds (read from its
    /// header, with its description unless `options` gives one), and `options`' schema tag,
    /// which must match. For tools and bridges that forward any channel.
    ///
    /// # Errors
    ///
    /// As [`ChannelIo::open_with`]. A header whose element layout no Rust type could have is
    /// [`Corrupted`](crate::ErrorKind::Corrupted).
    ///
    /// ```
    /// use shmchan::{ChannelIo, ElementType, Options, Primitive, RawChannel};
    /// # let name = format!("doc-open-any-{}", std::process::id());
    /// let _chan = ChannelIo::<i16>::create(&name, Options::new())?;
    /// let raw = RawChannel::open_any(&name, Options::new())?;
    /// assert_eq!(raw.element_type(), ElementType::primitive(Primitive::I16));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_any(name: &str, options: Options) -> Result<RawChannel, Error> {
        let info = crate::segment::inspect(name)?;
        let elem = match info.elem_type {
            Some(p) if p.size() == info.elem_size => ElementType::primitive(p),
            _ => ElementType::record(info.elem_size as usize, info.elem_align as usize)
                .map_err(|e| Error::corrupted(name, "elem_size", e.to_string()))?,
        };
        let options = match (&options.descr, info.descr) {
            (None, Some(d)) => options.descr(d),
            _ => options,
        };
        // The header was read without a lock: if the channel was replaced since, the open
        // below checks the new one against this layout and description (and refuses
        // different ones).
        RawChannel::open(name, elem, options)
    }

    /// Opens channel `name`, creating it if it does not exist, as
    /// [`ChannelIo::create_or_open`].
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn create_or_open(
        name: &str,
        elem: ElementType,
        options: Options,
    ) -> Result<RawChannel, Error> {
        ChannelIo::create_or_open_kind(name, || raw(elem), &options).map(|chan| RawChannel { chan })
    }

    /// The primitive the elements are, if the channel names one.
    pub fn primitive_type(&self) -> Option<Primitive> {
        self.element_type().primitive_type()
    }
}
