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
use crate::segment::{
    self, ChannelInfo, Collected, CreateSpec, GcOptions, KeepMapped, Layout, OpenSpec, Removal,
    Segment,
};
use crate::writer::WriterFront;

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

impl ChannelIo<()> {
    /// Reads channel `name`'s header without opening it for use (no lock, no mapping, no
    /// effect on its cleanup), validates it, and reports it.
    ///
    /// # Errors
    ///
    /// As [`open`](ChannelIo::open) for a missing, foreign, corrupt or unreadable channel
    /// (no element type or owner check).
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options, Primitive};
    /// # let name = format!("doc-inspect-{}", std::process::id());
    /// let chan = ChannelIo::<f32>::create(&name, Options::new().capacity(1024))?;
    /// let mut w = chan.writer()?;
    /// w.blocking_put(&[1.0, 2.0])?;
    /// let info = ChannelIo::inspect(&name)?;
    /// assert_eq!(info.elem_type, Some(Primitive::F32));
    /// assert_eq!((info.capacity, info.len()), (1024, 2));
    /// assert!(info.writer.held && info.in_use);
    /// # drop(w);
    /// # ChannelIo::remove(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inspect(name: &str) -> Result<ChannelInfo, Error> {
        segment::inspect(name)
    }

    /// Waits until channel `name` exists (at once if it does), at most `timeout`: for a
    /// process that may start before the one that creates its channel and needs what only
    /// the channel says (its element type, say) before it can open it. It watches the base
    /// directory with inotify: no polling.
    ///
    /// # Errors
    ///
    /// [`InvalidName`](ErrorKind::InvalidName); [`TimedOut`](ErrorKind::TimedOut) once
    /// `timeout` has passed; [`Io`](ErrorKind::Io) if the base directory cannot be watched
    /// (it does not exist, say).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only watches.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options, RawChannel};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), shmchan::Error> {
    /// # let name = format!("doc-wait-created-{}", std::process::id());
    /// # let _maker = ChannelIo::<f32>::create(&name, Options::new())?;
    /// ChannelIo::wait_created(&name, None).await?;
    /// let chan = RawChannel::open_any(&name, Options::new())?; // whatever its type
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_created(
        name: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), Error> {
        segment::wait_created(name, timeout).await
    }

    /// The blocking twin of [`wait_created`](Self::wait_created).
    ///
    /// # Errors
    ///
    /// As [`wait_created`](Self::wait_created).
    pub fn blocking_wait_created(
        name: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), Error> {
        segment::blocking_wait_created(name, timeout)
    }

    /// Every channel on the machine (in [`base_dir`](crate::base_dir)), sorted by name,
    /// each with what [`inspect`](ChannelIo::inspect) says of it.
    ///
    /// # Errors
    ///
    /// If the base directory cannot be read.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-list-{}", std::process::id());
    /// let _chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let all = ChannelIo::list()?;
    /// assert!(all.iter().any(|(n, info)| *n == name && info.is_ok()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn list() -> std::io::Result<Vec<(String, Result<ChannelInfo, Error>)>> {
        let (names, _) = segment::scan()?;
        Ok(names
            .into_iter()
            .map(|n| {
                let info = segment::inspect(&n);
                (n, info)
            })
            .collect())
    }

    /// Removes channel `name` if no process has it open and `decide` says so, given what the
    /// header says (or the error, for files under the name that are not a readable channel).
    /// The decision is made on the header as read under the channel's presence lock, held
    /// exclusively: no process can open the channel between the decision and the removal.
    ///
    /// # Errors
    ///
    /// [`InvalidName`](ErrorKind::InvalidName), or [`Io`](ErrorKind::Io) if the files cannot
    /// be removed.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options, Removal};
    /// # let name = format!("doc-remove-unused-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new().persist(true))?;
    /// // Open here: refused.
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::InUse);
    /// drop(chan);
    /// // Keep it if it is persistent...
    /// let keep_persistent = |i: Result<&shmchan::ChannelInfo, &shmchan::Error>| {
    ///     !i.is_ok_and(|i| i.persist)
    /// };
    /// assert_eq!(ChannelIo::remove_unused(&name, keep_persistent)?, Removal::Kept);
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::Removed);
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_unused(
        name: &str,
        decide: impl FnOnce(Result<&ChannelInfo, &Error>) -> bool,
    ) -> Result<Removal, Error> {
        segment::remove_unused(name, decide)
    }

    /// Temporary directories left in [`base_dir`](crate::base_dir) by a creator or remover
    /// that was killed midway (their process is gone). [`ChannelIo::remove`] does not see
    /// them; [`ChannelIo::gc`] removes them.
    ///
    /// # Errors
    ///
    /// If the base directory cannot be read.
    pub fn leftovers() -> std::io::Result<Vec<std::path::PathBuf>> {
        Ok(segment::scan()?.1)
    }

    /// Removes every channel in [`base_dir`](crate::base_dir) that no live process has open,
    /// unless something speaks for it, and the temporary directories of creators and
    /// removers that were killed midway (see [`leftovers`](ChannelIo::leftovers)).
    ///
    /// What speaks for a channel: it belongs to another user, it
    /// [persists](Options::persist), or its items or its writer's end of stream (close or
    /// abort) wait for a reader ([`ChannelInfo::has_undelivered`]), even when the writer
    /// died; and files under a channel's name that are not a readable channel are kept
    /// too. [`GcOptions::all`] removes all of those except another user's channels.
    /// Each channel is judged on its header as read under its lock, held exclusively, as
    /// [`remove_unused`](ChannelIo::remove_unused) does: a process that opens the channel at
    /// that moment either keeps it or finds it gone. [`GcOptions::dry_run`] judges and
    /// removes nothing.
    ///
    /// Returns what it did with each channel and leftover, and why: channels sorted by
    /// name, then leftovers. A channel removed meanwhile by someone else is left out; one
    /// whose removal fails is reported ([`GcAction::Failed`](crate::GcAction::Failed)) and
    /// the others are collected all the same.
    ///
    /// # Errors
    ///
    /// If the base directory cannot be read.
    ///
    /// ```
    /// use shmchan::{ChannelIo, GcAction, GcOptions, GcReason, Options};
    /// # let name = format!("doc-gc-{}", std::process::id());
    /// # let dir = shmchan::base_dir().join(&name);
    /// # std::fs::create_dir(&dir)?;
    /// # // Its own directory, so that the example collects nobody else's channels.
    /// # std::env::set_var("SHMCHAN_DIR", &dir);
    /// let chan = ChannelIo::<u8>::create(&name, Options::new().persist(true))?;
    /// let kept = |c: &shmchan::Collected, why: fn(&GcReason) -> bool| {
    ///     c.name == name && matches!(&c.action, GcAction::Kept(r) if why(r))
    /// };
    /// let done = ChannelIo::gc(GcOptions::new())?;
    /// assert!(done.iter().any(|c| kept(c, |r| matches!(r, GcReason::InUse))));
    /// drop(chan);
    /// let done = ChannelIo::gc(GcOptions::new())?;
    /// assert!(done.iter().any(|c| kept(c, |r| matches!(r, GcReason::Persistent))));
    /// let done = ChannelIo::gc(GcOptions::new().all(true))?;
    /// assert!(matches!(&done[0].action, GcAction::Removed(GcReason::NotInUse(_))));
    /// assert!(ChannelIo::inspect(&name).is_err());
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn gc(options: GcOptions) -> std::io::Result<Vec<Collected>> {
        segment::gc(options)
    }

    /// Removes channel `name` and all its files, whether or not it is finished or in use.
    /// Processes that have it open keep working on their mapping; new opens no longer find
    /// it. This is the only way a channel holding unread items, or a persistent one, goes.
    ///
    /// # Errors
    ///
    /// [`NotFound`](ErrorKind::NotFound) if there is no such channel.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-remove-{}", std::process::id());
    /// drop(ChannelIo::<u8>::create(&name, Options::new().persist(true))?);
    /// assert!(ChannelIo::<u8>::open(&name).is_ok()); // persisted
    /// ChannelIo::remove(&name)?;
    /// assert!(ChannelIo::<u8>::open(&name).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(name: &str) -> Result<(), Error> {
        segment::remove(name)
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
