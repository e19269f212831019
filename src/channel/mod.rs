//! [`ChannelIo`]: a named channel, and the one place that hands out its two ends; typed
//! (`ChannelIo<T>`) or with its element type given at run time ([`RawChannel`](crate::RawChannel)).

use std::marker::PhantomData;
use std::sync::Arc;

use bytemuck::Pod;

use crate::barrier::Barrier;
use crate::element::{ElementType, Stride, Typed};
use crate::error::{Error, ErrorKind};
use crate::notify::WaitStrategy;
use crate::options::{Options, DEFAULT_RING_BYTES};
use crate::reader::ReaderFront;
use crate::segment::{self, CreateSpec, KeepMapped, Layout, OpenSpec, Segment};
use crate::writer::WriterFront;

mod by_name;

/// A named shared-memory channel of `T`, open in this process.
///
/// It hands out the channel's two ends, [`writer`](Self::writer) and [`reader`](Self::reader):
/// one of each across all processes at any time. The `ChannelIo` and its ends can be used in
/// any process that opens the channel by name, in any start order.
///
/// `T` must be [`Pod`]: any bit pattern is a valid `T`, it has no padding, pointers or file
/// descriptors. Its size and alignment, its [description](Options::descr) (a primitive's
/// own, or a record's if given) and an optional [schema tag](Options::schema) are recorded
/// in the channel and checked by every opener.
///
/// # Lifetime of the channel
///
/// When the last handle to a channel (in any process) is dropped, the channel is removed if
/// it is *finished* — its reader closed, after reading to the end or early — or was never
/// used, unless it [persists](Options::persist). A channel whose writer closed but whose
/// reader has not read the end yet stays (with its unread items, or just its end of stream),
/// so a writer can finish and exit before its reader starts.
///
/// # Example
///
/// ```
/// use shmchan::{ChannelIo, Options};
/// # let name = format!("doc-chan-{}", std::process::id());
/// let chan = ChannelIo::<f32>::create(&name, Options::new().capacity(1024))?;
/// let mut w = chan.writer()?;
/// let mut r = ChannelIo::<f32>::open(&name)?.reader()?; // usually in another process
/// w.blocking_put(&[1.0, 2.0, 3.0])?;
/// w.close();
/// let mut two = [0f32; 2];
/// r.blocking_get(&mut two)?;
/// assert_eq!(two, [1.0, 2.0]);
/// assert!(r.blocking_get(&mut two).is_err()); // closed, one item left: nothing removed
/// assert_eq!(r.blocking_get_some(&mut two)?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The second parameter says how the ends count elements, as for the ends themselves:
/// [`Typed`] (the default) for a channel of `T`, [`Bytes`](crate::Bytes) for a
/// [`RawChannel`](crate::RawChannel), whose element type is given at run time.
pub struct ChannelIo<T, S: Stride = Typed> {
    seg: Arc<Segment>,
    wait: WaitStrategy,
    elem: ElementType,
    stride: S,
    _t: PhantomData<fn() -> T>,
}

impl<T, S: Stride> std::fmt::Debug for ChannelIo<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelIo")
            .field("name", &self.seg.name())
            .field("capacity", &self.seg.capacity)
            .field("element", &self.elem)
            .finish()
    }
}

impl<T, S: Stride> Clone for ChannelIo<T, S> {
    fn clone(&self) -> Self {
        ChannelIo {
            seg: Arc::clone(&self.seg),
            wait: self.wait,
            elem: self.elem,
            stride: self.stride,
            _t: PhantomData,
        }
    }
}

/// What a channel handle is made of, besides its segment: the element layout it checks the
/// channel against, its element type, and how its ends count elements.
pub(crate) struct Kind<S> {
    pub(crate) layout: Layout,
    pub(crate) elem: ElementType,
    pub(crate) stride: S,
}

/// The kind of a `ChannelIo<T>`.
fn typed<T: Pod>() -> Kind<Typed> {
    Kind {
        layout: Layout {
            // The real size, zero for a zero-sized `T`, which create and open refuse.
            size: std::mem::size_of::<T>(),
            align: std::mem::align_of::<T>(),
            type_name: std::any::type_name::<T>(),
            kind: crate::header::Primitive::of::<T>(),
            message: false,
            descr: None,
        },
        elem: ElementType::of::<T>(),
        stride: Typed,
    }
}

impl<T, S: Stride> ChannelIo<T, S> {
    /// Creates channel `name` for elements of `kind`; fails if it exists.
    pub(crate) fn create_kind(name: &str, kind: Kind<S>, options: &Options) -> Result<Self, Error> {
        let layout = segment::describe(name, kind.layout.clone(), options.descr.as_deref())?;
        let seg = create_segment(name, layout, options)?;
        Ok(ChannelIo::new(seg, kind, options.wait))
    }

    /// Opens existing channel `name`, which must hold elements of `kind`.
    pub(crate) fn open_kind(name: &str, kind: Kind<S>, options: &Options) -> Result<Self, Error> {
        ChannelIo::open_checked(name, kind, options, None)
    }

    /// Opens existing channel `name`, which must hold elements of `kind`, and, with
    /// `capacity`, have the capacity that a create asking for that many would make.
    fn open_checked(
        name: &str,
        kind: Kind<S>,
        options: &Options,
        capacity: Option<usize>,
    ) -> Result<Self, Error> {
        let layout = segment::describe(name, kind.layout.clone(), options.descr.as_deref())?;
        let spec = OpenSpec {
            schema: options.schema.as_deref(),
            any_owner: options.other_owner,
            capacity,
        };
        let seg = Segment::open(name, layout, &spec)?;
        Ok(ChannelIo::new(seg, kind, options.wait))
    }

    /// Opens channel `name`, creating it if it does not exist. Open first (the usual case
    /// once running); on NotFound create; if that loses a race (AlreadyExists), open what the
    /// winner made. A channel removed between our two steps sends us around again; a few
    /// rounds settle any realistic race. Every open requires the capacity the options
    /// require (the winner of a race may have asked for another).
    pub(crate) fn create_or_open_kind(
        name: &str,
        kind: impl Fn() -> Kind<S>,
        options: &Options,
    ) -> Result<Self, Error> {
        let mut last = None;
        for _ in 0..8 {
            match ChannelIo::open_checked(name, kind(), options, options.required_capacity()) {
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                other => return other,
            }
            match ChannelIo::create_kind(name, kind(), options) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
                other => return other,
            }
        }
        Err(last
            .unwrap_or_else(|| Error::at(ErrorKind::NotFound, name, segment::channel_dir(name))))
    }

    fn new(seg: Segment, kind: Kind<S>, wait: WaitStrategy) -> Self {
        ChannelIo {
            seg: Arc::new(seg),
            wait,
            elem: kind.elem,
            stride: kind.stride,
            _t: PhantomData,
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Ring capacity in elements (at least what was asked for).
    pub fn capacity(&self) -> usize {
        self.seg.capacity as usize
    }

    /// Elements committed and not yet consumed, right now (stale as soon as it returns
    /// while the ends are active).
    pub fn len(&self) -> usize {
        self.seg.len() as usize
    }

    /// True if no committed element is waiting (may be stale, like `len`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel's [`Barrier`]: `Fence` or `Membarrier`, as chosen at creation.
    pub fn barrier(&self) -> Barrier {
        if self.seg.membarrier {
            Barrier::Membarrier
        } else {
            Barrier::Fence
        }
    }

    /// The channel's schema tag, if it has one.
    pub fn schema(&self) -> Option<&str> {
        self.seg.schema.as_deref()
    }

    /// The channel's element description (canonical, as its creator recorded it; see
    /// [`Options::descr`]): a primitive's own, a described record's, or `None` for a record
    /// created without one.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-chan-descr-{}", std::process::id());
    /// let chan = ChannelIo::<f32>::create(&name, Options::new())?;
    /// assert_eq!(chan.descr(), Some("'<f4'")); // on a little-endian machine
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    pub fn descr(&self) -> Option<&str> {
        self.seg.descr.as_deref()
    }

    /// The stream this channel continues, as its creator recorded it ([`Options::origin`]).
    pub fn origin(&self) -> Option<crate::Origin> {
        self.seg.origin
    }

    /// The element type this channel was opened with.
    pub fn element_type(&self) -> ElementType {
        self.elem
    }

    /// Keeps this handle's memory mapped in this process for as long as the result lives,
    /// without keeping the channel open: for memory lent out beyond a handle's life (see
    /// [`KeepMapped`]). The channel is closed and removed as if it did not exist.
    pub fn keep_mapped(&self) -> KeepMapped {
        self.seg.keep_mapped()
    }
}

impl<T: Pod, S: Stride> ChannelIo<T, S> {
    /// Claims the writing end. There is one writer across all processes at a time.
    ///
    /// # Errors
    ///
    /// [`EndTaken`](ErrorKind::EndTaken) if a live holder has it (here or in another process;
    /// a holder that died frees it at once), [`Closed`](ErrorKind::Closed) if the channel was closed
    /// (by a writer or the reader: a closed channel takes no more items).
    ///
    /// ```
    /// use shmchan::{ChannelIo, ErrorKind, Options};
    /// # let name = format!("doc-writer-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let w = chan.writer()?;
    /// assert_eq!(chan.writer().unwrap_err().kind(), ErrorKind::EndTaken);
    /// # drop(w);
    /// # ChannelIo::remove(&name)?; // a closed writer's end of stream waits for a reader
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> Result<WriterFront<T, S>, Error> {
        WriterFront::claim(&self.seg, self.wait, self.stride)
    }

    /// Claims the reading end. There is one reader across all processes at a time. A reader
    /// that claims a channel whose previous reader died resumes at the first item that
    /// reader had not consumed.
    ///
    /// # Errors
    ///
    /// [`EndTaken`](ErrorKind::EndTaken) if a live holder has it, [`Closed`](ErrorKind::Closed) if a reader
    /// closed the channel.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-reader-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let r = chan.reader()?;
    /// assert!(chan.reader().is_err());
    /// # drop(r);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reader(&self) -> Result<ReaderFront<T, S>, Error> {
        ReaderFront::claim(&self.seg, self.wait, self.stride)
    }
}

impl<T: Pod> ChannelIo<T> {
    /// Creates channel `name`; fails if it exists.
    ///
    /// The ring is allocated in full now, so a shared-memory file system without room for it
    /// fails here ([`NoSpace`](ErrorKind::NoSpace)) rather than with SIGBUS later.
    ///
    /// # Errors
    ///
    /// Of kind [`InvalidName`](ErrorKind::InvalidName),
    /// [`InvalidCapacity`](ErrorKind::InvalidCapacity),
    /// [`InvalidSchema`](ErrorKind::InvalidSchema),
    /// [`InvalidDescr`](ErrorKind::InvalidDescr),
    /// [`UnsupportedElement`](ErrorKind::UnsupportedElement),
    /// [`AlreadyExists`](ErrorKind::AlreadyExists),
    /// [`PermissionDenied`](ErrorKind::PermissionDenied), [`NoSpace`](ErrorKind::NoSpace),
    /// [`MembarrierUnavailable`](ErrorKind::MembarrierUnavailable) or [`Io`](ErrorKind::Io).
    ///
    /// ```
    /// use shmchan::{ChannelIo, ErrorKind, Options};
    /// # let name = format!("doc-create-{}", std::process::id());
    /// let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(100))?;
    /// assert_eq!(chan.capacity(), 512); // rounded up to a whole 4 KiB page
    /// let again = ChannelIo::<u64>::create(&name, Options::new());
    /// assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    pub fn create(name: &str, options: Options) -> Result<ChannelIo<T>, Error> {
        ChannelIo::create_kind(name, typed::<T>(), &options)
    }

    /// Opens existing channel `name`, which must hold `T` (size and alignment, and for a
    /// primitive its description) and have no schema tag. Use [`open_with`](Self::open_with)
    /// for a tagged channel, or to give a record's [description](Options::descr).
    ///
    /// # Errors
    ///
    /// Of kind [`NotFound`](ErrorKind::NotFound),
    /// [`ElementMismatch`](ErrorKind::ElementMismatch), [`InvalidDescr`](ErrorKind::InvalidDescr),
    /// [`SchemaMismatch`](ErrorKind::SchemaMismatch),
    /// [`ForeignOwner`](ErrorKind::ForeignOwner), [`NotAChannel`](ErrorKind::NotAChannel),
    /// [`TooSmall`](ErrorKind::TooSmall), [`VersionMismatch`](ErrorKind::VersionMismatch),
    /// [`AbiMismatch`](ErrorKind::AbiMismatch), [`NotInitialized`](ErrorKind::NotInitialized),
    /// [`Corrupted`](ErrorKind::Corrupted), [`PermissionDenied`](ErrorKind::PermissionDenied),
    /// [`MembarrierUnavailable`](ErrorKind::MembarrierUnavailable) or [`Io`](ErrorKind::Io).
    ///
    /// ```
    /// use shmchan::{ChannelIo, Context, ErrorKind, Options};
    /// # let name = format!("doc-open-{}", std::process::id());
    /// let _chan = ChannelIo::<f32>::create(&name, Options::new())?;
    /// assert!(ChannelIo::<f32>::open(&name).is_ok());
    /// let wrong = ChannelIo::<f64>::open(&name);
    /// let e = wrong.unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::ElementMismatch);
    /// assert!(matches!(e.context(), Context::Element { found_size: 4, expected_size: 8, .. }));
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<ChannelIo<T>, Error> {
        ChannelIo::open_with(name, Options::new())
    }

    /// Opens existing channel `name` with `options`' schema tag (which must match the
    /// channel's), element description (which must match the channel's if it has one), owner
    /// policy and wait strategy; its capacity, mode and persistence are ignored.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// ```
    /// use shmchan::{ChannelIo, ErrorKind, Options};
    /// # let name = format!("doc-open-with-{}", std::process::id());
    /// let _chan = ChannelIo::<f32>::create(&name, Options::new().schema("imu/v2"))?;
    /// assert!(ChannelIo::<f32>::open_with(&name, Options::new().schema("imu/v2")).is_ok());
    /// let old = ChannelIo::<f32>::open_with(&name, Options::new().schema("imu/v1"));
    /// assert_eq!(old.unwrap_err().kind(), ErrorKind::SchemaMismatch);
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    pub fn open_with(name: &str, options: Options) -> Result<ChannelIo<T>, Error> {
        ChannelIo::open_kind(name, typed::<T>(), &options)
    }

    /// Opens channel `name`, creating it with `options` if it does not exist, so that two
    /// programs can start in either order with the same code. If another process creates it
    /// at the same moment, exactly one creates and the other opens.
    ///
    /// A [capacity](Options::capacity) in `options` is required of a channel that exists:
    /// its capacity must be what a create with that request makes (requests are rounded up
    /// to whole pages, so a restarted program that asks for the same gets the same channel).
    /// Without one (or with [`capacity_if_created`](Options::capacity_if_created)) it opens
    /// whatever capacity exists.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open_with`](Self::open_with), and
    /// [`CapacityMismatch`](ErrorKind::CapacityMismatch) for a channel of another capacity
    /// than the one required.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-either-{}", std::process::id());
    /// let a = ChannelIo::<u32>::create_or_open(&name, Options::new().capacity(4096))?; // creates
    /// let b = ChannelIo::<u32>::create_or_open(&name, Options::new().capacity(4096))?; // opens
    /// assert_eq!(a.capacity(), b.capacity());
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    pub fn create_or_open(name: &str, options: Options) -> Result<ChannelIo<T>, Error> {
        ChannelIo::create_or_open_kind(name, typed::<T>, &options)
    }
}

/// Creates the segment of channel `name` for elements of `layout`, as `options` say.
fn create_segment(name: &str, layout: Layout, options: &Options) -> Result<Segment, Error> {
    let capacity = options
        .create_capacity()
        .unwrap_or_else(|| (DEFAULT_RING_BYTES / layout.size.max(1)).max(1));
    let membarrier = match options.barrier {
        Barrier::Fence => false,
        Barrier::Auto => crate::barrier::register().is_ok(),
        Barrier::Membarrier => {
            crate::barrier::require(name)?;
            true
        }
    };
    let spec = CreateSpec {
        capacity,
        schema: options.schema.as_deref(),
        mode: options.mode.unwrap_or(0o600),
        persist: options.persist,
        membarrier,
        origin: options.origin,
    };
    Segment::create(name, layout, &spec)
}
