//! Element types known at run time: [`ElementType`], and how a front counts the `T`s of one
//! element ([`Stride`]).
//!
//! A [`ChannelIo<T>`](crate::ChannelIo) knows its element type at compile time: `T` is the
//! element, and its slices count elements. A program that learns the type only at run time
//! (a Python front holding a numpy dtype, a bridge forwarding whatever a channel holds, a
//! tool) opens a [`RawChannel`](crate::RawChannel) instead: its ends move elements as bytes,
//! `size` bytes each, with the same ring, the same checks and the same waiting. Both kinds
//! open the same channels: a Rust `#[repr(C)]` struct of 12 bytes aligned to 4 and a raw
//! element type of 12 bytes aligned to 4 (with the same schema tag, and the same
//! [description](crate::Options::descr) if both give one) are one channel.

use std::num::NonZeroUsize;

use crate::header::Primitive;

/// The layout of a channel's element, known at run time: size, alignment, and whether it is
/// one of the [`Primitive`]s (so that a `u32` and an `f32` channel are told apart).
///
/// ```
/// use shmchan::{ElementType, Primitive};
/// assert_eq!(ElementType::of::<f32>(), ElementType::primitive(Primitive::F32));
/// let imu = ElementType::record(24, 8)?; // a #[repr(C)] struct of three f64
/// assert_eq!((imu.size(), imu.align(), imu.primitive_type()), (24, 8, None));
/// assert!(ElementType::record(12, 8).is_err()); // not a multiple of its alignment
/// # Ok::<(), shmchan::ElementTypeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ElementType {
    size: NonZeroUsize,
    align: usize,
    primitive: Option<Primitive>,
}

/// Why [`ElementType::record`] refused a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no element type has {size} bytes aligned to {align}: {reason}")]
pub struct ElementTypeError {
    /// The size asked for.
    pub size: usize,
    /// The alignment asked for.
    pub align: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ElementType {
    /// The layout of `T`.
    pub fn of<T: bytemuck::Pod>() -> ElementType {
        ElementType {
            // A zero-sized `T` gets size 0 → the channel refuses it at create/open
            // (`UnsupportedElement`); here it is recorded as 1 only so the type stays total.
            size: NonZeroUsize::new(std::mem::size_of::<T>()).unwrap_or(NonZeroUsize::MIN),
            align: std::mem::align_of::<T>(),
            primitive: Primitive::of::<T>(),
        }
    }

    /// The layout of a primitive.
    pub fn primitive(p: Primitive) -> ElementType {
        let size = p.size() as usize;
        ElementType {
            size: NonZeroUsize::new(size).unwrap_or(NonZeroUsize::MIN),
            align: size,
            primitive: Some(p),
        }
    }

    /// An application element (a record): `size` bytes aligned to `align`, as a Rust
    /// `#[repr(C)]` struct has them.
    ///
    /// # Errors
    ///
    /// If `size` is 0, `align` is not a power of two, or `size` is not a multiple of
    /// `align` (no Rust type has such a layout; numpy pads an aligned structured dtype to
    /// one).
    pub fn record(size: usize, align: usize) -> Result<ElementType, ElementTypeError> {
        let bad = |reason| ElementTypeError {
            size,
            align,
            reason,
        };
        let Some(nz) = NonZeroUsize::new(size) else {
            return Err(bad("zero-sized elements carry no data"));
        };
        if !align.is_power_of_two() {
            return Err(bad("the alignment must be a power of two"));
        }
        if size % align != 0 {
            return Err(bad("the size must be a multiple of the alignment"));
        }
        Ok(ElementType {
            size: nz,
            align,
            primitive: None,
        })
    }

    /// Size in bytes (at least 1).
    pub fn size(&self) -> usize {
        self.size.get()
    }

    /// Alignment in bytes (a power of two).
    pub fn align(&self) -> usize {
        self.align
    }

    /// The primitive this is, if it is one.
    pub fn primitive_type(&self) -> Option<Primitive> {
        self.primitive
    }

    /// The name used in messages: the primitive's, or "record".
    pub(crate) fn type_name(&self) -> &'static str {
        self.primitive.map_or("record", Primitive::name)
    }
}

impl std::fmt::Display for ElementType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.primitive {
            Some(p) => write!(f, "{p}"),
            None => write!(f, "record of {} bytes aligned to {}", self.size, self.align),
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// How a front counts the `T`s of one element: [`Typed`] (each `T` is one element: the
/// fronts of [`ChannelIo<T>`](crate::ChannelIo)) or [`Bytes`] (each element is `size` bytes:
/// the fronts of [`RawChannel`](crate::RawChannel)). Sealed: these two are all there are.
pub trait Stride: Copy + Send + Sync + Unpin + std::fmt::Debug + 'static + sealed::Sealed {
    /// `T`s per element.
    #[doc(hidden)]
    fn units(self) -> usize;

    /// The elements in `len` `T`s, if that is a whole number of them (always, for
    /// [`Typed`]: the check then compiles to nothing).
    #[doc(hidden)]
    #[inline(always)]
    fn elements(self, len: usize) -> Option<usize> {
        let u = self.units();
        (len % u == 0).then_some(len / u)
    }
}

/// Each `T` is one element (a front of a [`ChannelIo<T>`](crate::ChannelIo)). Zero-sized:
/// the count is 1 at compile time, so typed fronts pay nothing for raw ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Typed;

impl sealed::Sealed for Typed {}
impl Stride for Typed {
    #[inline(always)]
    fn units(self) -> usize {
        1
    }
}

/// Each element is a run of bytes of the channel's element size (a front of a
/// [`RawChannel`](crate::RawChannel)): slices are `&[u8]` whose length is a whole number of
/// elements, and counts (`get_some`'s result, `remaining`, `accepted`, a view's length) are
/// in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub(crate) NonZeroUsize);

impl sealed::Sealed for Bytes {}
impl Stride for Bytes {
    #[inline(always)]
    fn units(self) -> usize {
        self.0.get()
    }
}

impl Bytes {
    /// Bytes per element.
    pub fn element_size(self) -> usize {
        self.0.get()
    }
}
