//! [`ChannelIo`]: a named channel, and the one place that hands out its two ends.

use std::marker::PhantomData;
use std::sync::Arc;

use bytemuck::Pod;

use crate::barrier::Barrier;
use crate::element::Typed;
use crate::error::{ClaimError, OpenError, RemoveError};
use crate::notify::WaitStrategy;
use crate::reader::ReaderFront;
use crate::segment::{self, CreateSpec, Layout, Segment};
use crate::writer::WriterFront;

/// The accessors both channel handles have ([`ChannelIo`] and
/// [`RawChannel`](crate::RawChannel)), on a segment in a field `seg`.
macro_rules! channel_accessors {
    () => {
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

        /// The channel's [`Barrier`](crate::Barrier): `Fence` or `Membarrier`, as chosen
        /// at creation.
        pub fn barrier(&self) -> crate::Barrier {
            if self.seg.membarrier {
                crate::Barrier::Membarrier
            } else {
                crate::Barrier::Fence
            }
        }

        /// The channel's schema tag, if it has one.
        pub fn schema(&self) -> Option<&str> {
            self.seg.schema.as_deref()
        }
    };
}
pub(crate) use channel_accessors;

/// Bytes of ring [`Options::new`] asks for unless told otherwise: 1 MiB.
pub const DEFAULT_RING_BYTES: usize = 1 << 20;

/// How to create (and, for the schema tag and wait strategy, open) a channel.
///
/// ```
/// use shmchan::{Options, WaitStrategy};
/// let opts = Options::new()
///     .capacity(1 << 16)
///     .schema("imu-sample/v2")
///     .mode(0o600)
///     .wait_strategy(WaitStrategy::Sleep);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub(crate) capacity: Option<usize>,
    pub(crate) schema: Option<String>,
    pub(crate) mode: Option<u32>,
    pub(crate) persist: bool,
    pub(crate) other_owner: bool,
    pub(crate) wait: WaitStrategy,
    pub(crate) barrier: Barrier,
}

impl Options {
    /// Defaults: a 1 MiB ring, no schema tag, mode 0600, removed when finished, and
    /// [`WaitStrategy::default`].
    pub fn new() -> Options {
        Options::default()
    }

    /// Ring capacity in elements (rounded up so the ring is a whole number of pages).
    pub fn capacity(mut self, elements: usize) -> Options {
        self.capacity = Some(elements);
        self
    }

    /// A tag naming the element's meaning (up to [`SCHEMA_MAX`](crate::SCHEMA_MAX) bytes),
    /// recorded at creation; [`ChannelIo::open_with`] fails unless both sides give the same
    /// tag. Two types of one size and alignment are otherwise indistinguishable.
    pub fn schema(mut self, tag: impl Into<String>) -> Options {
        self.schema = Some(tag.into());
        self
    }

    /// Permission bits of the channel's files (default `0o600`: this user only). Widen it on
    /// purpose, e.g. `0o660` to share with a group; the other users then open it with
    /// [`accept_other_owner`](Self::accept_other_owner).
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = Some(mode);
        self
    }

    /// Keep the channel even when it is finished or was never used, until
    /// [`ChannelIo::remove`] deletes it.
    pub fn persist(mut self, persist: bool) -> Options {
        self.persist = persist;
        self
    }

    /// When opening, accept a channel that belongs to another user (default: only this user's
    /// or root's). Any user can create names in `/dev/shm`, so without this another user
    /// could plant a channel under the name you open and read or inject items.
    pub fn accept_other_owner(mut self, accept: bool) -> Options {
        self.other_owner = accept;
        self
    }

    /// How the wake protocol orders its stores and loads (default [`Barrier::Auto`]: with
    /// `membarrier(2)` where this process can use it). Recorded at creation; ignored when
    /// opening, since both ends must use the channel's.
    ///
    /// With [`Barrier::Membarrier`], `put` and `get` carry no fence instruction (single `u64`
    /// items across processes: 68–92 M/s against 15–31 M/s with fences, in alternating runs
    /// of `crates/bench/examples/single_items`); every process that opens the channel must be allowed
    /// `membarrier(2)`. See [`Barrier`].
    pub fn barrier(mut self, barrier: Barrier) -> Options {
        self.barrier = barrier;
        self
    }

    /// How this process's ends wait. Not recorded in the channel: each side chooses its own.
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Options {
        self.wait = strategy;
        self
    }
}

/// A named shared-memory channel of `T`, open in this process.
///
/// It hands out the channel's two ends, [`writer`](Self::writer) and [`reader`](Self::reader):
/// one of each across all processes at any time. The `ChannelIo` and its ends can be used in
/// any process that opens the channel by name, in any start order.
///
/// `T` must be [`Pod`]: any bit pattern is a valid `T`, it has no padding, pointers or file
/// descriptors. Its size and alignment (and an optional [schema tag](Options::schema)) are
/// recorded in the channel and checked by every opener.
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
pub struct ChannelIo<T> {
    seg: Arc<Segment>,
    wait: WaitStrategy,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ChannelIo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelIo")
            .field("name", &self.seg.name())
            .field("capacity", &self.seg.capacity)
            .field("elem_size", &self.seg.elem_size)
            .finish()
    }
}

impl<T> Clone for ChannelIo<T> {
    fn clone(&self) -> Self {
        ChannelIo {
            seg: Arc::clone(&self.seg),
            wait: self.wait,
            _t: PhantomData,
        }
    }
}

fn layout<T: 'static>() -> Layout {
    Layout {
        size: std::mem::size_of::<T>(),
        align: std::mem::align_of::<T>(),
        type_name: std::any::type_name::<T>(),
        kind: crate::header::Primitive::of::<T>(),
    }
}

impl<T: Pod> ChannelIo<T> {
    /// Creates channel `name`; fails if it exists.
    ///
    /// The ring is allocated in full now, so a shared-memory file system without room for it
    /// fails here ([`OpenError::NoSpace`]) rather than with SIGBUS later.
    ///
    /// # Errors
    ///
    /// [`InvalidName`](OpenError::InvalidName), [`InvalidCapacity`](OpenError::InvalidCapacity),
    /// [`InvalidSchema`](OpenError::InvalidSchema), [`UnsupportedElement`](OpenError::UnsupportedElement),
    /// [`AlreadyExists`](OpenError::AlreadyExists), [`PermissionDenied`](OpenError::PermissionDenied),
    /// [`NoSpace`](OpenError::NoSpace), or [`Io`](OpenError::Io).
    ///
    /// ```
    /// use shmchan::{ChannelIo, OpenError, Options};
    /// # let name = format!("doc-create-{}", std::process::id());
    /// let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(100))?;
    /// assert_eq!(chan.capacity(), 512); // rounded up to a whole 4 KiB page
    /// let again = ChannelIo::<u64>::create(&name, Options::new());
    /// assert!(matches!(again, Err(OpenError::AlreadyExists { .. })));
    /// # Ok::<(), OpenError>(())
    /// ```
    pub fn create(name: &str, options: Options) -> Result<ChannelIo<T>, OpenError> {
        let seg = create_segment(name, layout::<T>(), &options)?;
        Ok(ChannelIo {
            seg: Arc::new(seg),
            wait: options.wait,
            _t: PhantomData,
        })
    }

    /// Opens existing channel `name`, which must hold `T` (size and alignment) and have no
    /// schema tag. Use [`open_with`](Self::open_with) for a tagged channel.
    ///
    /// # Errors
    ///
    /// [`NotFound`](OpenError::NotFound), [`ElementMismatch`](OpenError::ElementMismatch),
    /// [`SchemaMismatch`](OpenError::SchemaMismatch), [`Foreign`](OpenError::Foreign),
    /// [`TooSmall`](OpenError::TooSmall), [`VersionMismatch`](OpenError::VersionMismatch),
    /// [`NotInitialized`](OpenError::NotInitialized), [`Corrupted`](OpenError::Corrupted),
    /// [`PermissionDenied`](OpenError::PermissionDenied), [`Io`](OpenError::Io).
    ///
    /// ```
    /// use shmchan::{ChannelIo, OpenError, Options};
    /// # let name = format!("doc-open-{}", std::process::id());
    /// let _chan = ChannelIo::<f32>::create(&name, Options::new())?;
    /// assert!(ChannelIo::<f32>::open(&name).is_ok());
    /// let wrong = ChannelIo::<f64>::open(&name);
    /// assert!(matches!(wrong, Err(OpenError::ElementMismatch { found_size: 4, expected_size: 8, .. })));
    /// # Ok::<(), OpenError>(())
    /// ```
    pub fn open(name: &str) -> Result<ChannelIo<T>, OpenError> {
        ChannelIo::open_with(name, Options::new())
    }

    /// Opens existing channel `name` with `options`' schema tag (which must match the
    /// channel's), owner policy and wait strategy; its capacity, mode and persistence are
    /// ignored.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// ```
    /// use shmchan::{ChannelIo, OpenError, Options};
    /// # let name = format!("doc-open-with-{}", std::process::id());
    /// let _chan = ChannelIo::<f32>::create(&name, Options::new().schema("imu/v2"))?;
    /// assert!(ChannelIo::<f32>::open_with(&name, Options::new().schema("imu/v2")).is_ok());
    /// let old = ChannelIo::<f32>::open_with(&name, Options::new().schema("imu/v1"));
    /// assert!(matches!(old, Err(OpenError::SchemaMismatch { .. })));
    /// # Ok::<(), OpenError>(())
    /// ```
    pub fn open_with(name: &str, options: Options) -> Result<ChannelIo<T>, OpenError> {
        let seg = open_segment(name, layout::<T>(), &options)?;
        Ok(ChannelIo {
            seg: Arc::new(seg),
            wait: options.wait,
            _t: PhantomData,
        })
    }

    /// Opens channel `name`, creating it with `options` if it does not exist, so that two
    /// programs can start in either order with the same code. If another process creates it
    /// at the same moment, exactly one creates and the other opens.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open_with`](Self::open_with).
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-either-{}", std::process::id());
    /// let a = ChannelIo::<u32>::create_or_open(&name, Options::new().capacity(4096))?; // creates
    /// let b = ChannelIo::<u32>::create_or_open(&name, Options::new().capacity(4096))?; // opens
    /// assert_eq!(a.capacity(), b.capacity());
    /// # Ok::<(), shmchan::OpenError>(())
    /// ```
    pub fn create_or_open(name: &str, options: Options) -> Result<ChannelIo<T>, OpenError> {
        create_or_open_with(
            name,
            || ChannelIo::open_with(name, options.clone()),
            || ChannelIo::create(name, options.clone()),
        )
    }

    /// Claims the writing end. There is one writer across all processes at a time.
    ///
    /// # Errors
    ///
    /// [`ClaimError::EndTaken`] if a live holder has it (here or in another process; a
    /// holder that died frees it at once), [`ClaimError::Closed`] if the channel was closed
    /// (by a writer or the reader: a closed channel takes no more items).
    ///
    /// ```
    /// use shmchan::{ChannelIo, ClaimError, Options};
    /// # let name = format!("doc-writer-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let w = chan.writer()?;
    /// assert!(matches!(chan.writer(), Err(ClaimError::EndTaken { .. })));
    /// # drop(w);
    /// # ChannelIo::remove(&name)?; // a closed writer's end of stream waits for a reader
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> Result<WriterFront<T>, ClaimError> {
        WriterFront::claim(&self.seg, self.wait, Typed)
    }

    /// Claims the reading end. There is one reader across all processes at a time. A reader
    /// that claims a channel whose previous reader died resumes at the first item that
    /// reader had not consumed.
    ///
    /// # Errors
    ///
    /// [`ClaimError::EndTaken`] if a live holder has it, [`ClaimError::Closed`] if a reader
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
    pub fn reader(&self) -> Result<ReaderFront<T>, ClaimError> {
        ReaderFront::claim(&self.seg, self.wait, Typed)
    }

    channel_accessors!();
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
    pub fn inspect(name: &str) -> Result<crate::ChannelInfo, OpenError> {
        segment::inspect(name)
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
    pub fn list() -> std::io::Result<Vec<(String, Result<crate::ChannelInfo, OpenError>)>> {
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
    /// [`RemoveError::InvalidName`], or [`RemoveError::Io`] if the files cannot be removed.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options, Removal};
    /// # let name = format!("doc-remove-unused-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new().persist(true))?;
    /// // Open here: refused.
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::InUse);
    /// drop(chan);
    /// // Keep it if it is persistent...
    /// let keep_persistent = |i: Result<&shmchan::ChannelInfo, &shmchan::OpenError>| {
    ///     !i.is_ok_and(|i| i.persist)
    /// };
    /// assert_eq!(ChannelIo::remove_unused(&name, keep_persistent)?, Removal::Kept);
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::Removed);
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_unused(
        name: &str,
        decide: impl FnOnce(Result<&crate::ChannelInfo, &OpenError>) -> bool,
    ) -> Result<crate::Removal, RemoveError> {
        segment::remove_unused(name, decide)
    }

    /// Temporary directories left in [`base_dir`](crate::base_dir) by a creator or remover
    /// that was killed midway (their process is gone). [`ChannelIo::remove`] does not see
    /// them; delete them with `std::fs::remove_dir_all` (the CLI's `gc` does).
    ///
    /// # Errors
    ///
    /// If the base directory cannot be read.
    pub fn leftovers() -> std::io::Result<Vec<std::path::PathBuf>> {
        Ok(segment::scan()?.1)
    }

    /// Removes channel `name` and all its files, whether or not it is finished or in use.
    /// Processes that have it open keep working on their mapping; new opens no longer find
    /// it. This is the only way a channel holding unread items, or a persistent one, goes.
    ///
    /// # Errors
    ///
    /// [`RemoveError::NotFound`] if there is no such channel.
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
    pub fn remove(name: &str) -> Result<(), RemoveError> {
        segment::remove(name)
    }
}

/// Creates the segment of channel `name` for elements of `layout`, as `options` say.
pub(crate) fn create_segment(
    name: &str,
    layout: Layout,
    options: &Options,
) -> Result<Segment, OpenError> {
    let capacity = options
        .capacity
        .unwrap_or_else(|| (DEFAULT_RING_BYTES / layout.size.max(1)).max(1));
    let membarrier = match options.barrier {
        Barrier::Fence => false,
        Barrier::Auto => crate::barrier::register().is_ok(),
        Barrier::Membarrier => {
            crate::barrier::register().map_err(|source| OpenError::MembarrierUnavailable {
                name: name.to_string(),
                source,
            })?;
            true
        }
    };
    let spec = CreateSpec {
        capacity,
        schema: options.schema.as_deref(),
        mode: options.mode.unwrap_or(0o600),
        persist: options.persist,
        membarrier,
    };
    Segment::create(name, layout, &spec)
}

/// Opens the segment of channel `name`, which must hold elements of `layout` and have
/// `options`' schema tag.
pub(crate) fn open_segment(
    name: &str,
    layout: Layout,
    options: &Options,
) -> Result<Segment, OpenError> {
    Segment::open(name, layout, options.schema.as_deref(), options.other_owner)
}

/// Open first (the usual case once running); on NotFound create; if that loses a race
/// (AlreadyExists), open what the winner made. A channel removed between our two steps
/// sends us around again; a few rounds settle any realistic race.
pub(crate) fn create_or_open_with<C>(
    name: &str,
    mut open: impl FnMut() -> Result<C, OpenError>,
    mut create: impl FnMut() -> Result<C, OpenError>,
) -> Result<C, OpenError> {
    let mut last = None;
    for _ in 0..8 {
        match open() {
            Err(OpenError::NotFound { .. }) => {}
            other => return other,
        }
        match create() {
            Err(e @ OpenError::AlreadyExists { .. }) => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| OpenError::NotFound {
        name: name.to_string(),
        path: segment::channel_dir(name),
    }))
}
