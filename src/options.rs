//! [`Options`]: how to create or open a channel.

use crate::barrier::Barrier;
use crate::notify::WaitStrategy;

/// Bytes of ring [`Options::new`] asks for unless told otherwise: 1 MiB.
pub const DEFAULT_RING_BYTES: usize = 1 << 20;

/// How to create (and, for the schema tag, the element description and the wait strategy,
/// open) a channel.
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
    pub(crate) capacity: Option<Capacity>,
    pub(crate) schema: Option<String>,
    pub(crate) descr: Option<String>,
    pub(crate) mode: Option<u32>,
    pub(crate) persist: bool,
    pub(crate) other_owner: bool,
    pub(crate) wait: WaitStrategy,
    pub(crate) barrier: Barrier,
    pub(crate) origin: Option<Origin>,
}

/// The stream a channel continues: recorded at creation ([`Options::origin`]), read with
/// [`ChannelIo::origin`](crate::ChannelIo::origin) and in
/// [`ChannelInfo::origin`](crate::ChannelInfo::origin).
///
/// A channel that carries on a stream begun elsewhere (the far channel of a bridge, which
/// continues a channel on another host) numbers its items from 0 like any other. Its origin
/// says which stream those items belong to and which of the stream's items is the channel's
/// item 0, so that a process restarted at either end can tell where the stream stands: the
/// channel holds the stream's items up to `first + tail`. The library records it and
/// nothing more; the numbers mean what their writer says.
///
/// ```
/// use shmchan::{ChannelIo, Options, Origin};
/// # let name = format!("doc-origin-{}", std::process::id());
/// let origin = Origin::new(0x5eed, 1000).expect("a stream id is not 0");
/// let chan = ChannelIo::<u64>::create(&name, Options::new().origin(origin))?;
/// assert_eq!(chan.origin(), Some(origin));
/// assert_eq!(ChannelIo::inspect(&name)?.origin, Some(origin));
/// # Ok::<(), shmchan::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    stream: u64,
    first: u64,
}

impl Origin {
    /// Stream `stream` (any id but 0, which the header uses for "none"), of which this
    /// channel's item 0 is item `first`.
    pub fn new(stream: u64, first: u64) -> Option<Origin> {
        (stream != 0).then_some(Origin { stream, first })
    }

    /// The stream's id.
    pub fn stream(&self) -> u64 {
        self.stream
    }

    /// The stream's number of the channel's item 0.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// From the header's two words (`stream` 0: none).
    pub(crate) fn from_words(stream: u64, first: u64) -> Option<Origin> {
        Origin::new(stream, first)
    }
}

/// The ring capacity asked for, in elements, and whether a channel that exists must have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Capacity {
    /// [`Options::capacity`]: made by a create, required by `create_or_open` of a channel
    /// that exists.
    Required(usize),
    /// [`Options::capacity_if_created`]: made by a create, nothing asked of a channel that
    /// exists.
    IfCreated(usize),
}

impl Options {
    /// The capacity a create makes (`None`: the default, 1 MiB of ring).
    pub(crate) fn create_capacity(&self) -> Option<usize> {
        self.capacity
            .map(|(Capacity::Required(n) | Capacity::IfCreated(n))| n)
    }

    /// The capacity `create_or_open` requires of a channel that exists, if any.
    pub(crate) fn required_capacity(&self) -> Option<usize> {
        match self.capacity {
            Some(Capacity::Required(n)) => Some(n),
            _ => None,
        }
    }

    /// Defaults: a 1 MiB ring, no schema tag, no element description beyond a primitive's
    /// own, mode 0600, removed when finished, and
    /// [`WaitStrategy::default`].
    pub fn new() -> Options {
        Options::default()
    }

    /// Ring capacity in elements, rounded up so that the ring is a whole number of pages
    /// ([`ChannelIo::capacity`](crate::ChannelIo::capacity) reports the real one).
    ///
    /// [`create_or_open`](crate::ChannelIo::create_or_open) requires it of a channel that
    /// exists: if the channel's capacity is not what a create with this request would make,
    /// it fails with [`CapacityMismatch`](crate::ErrorKind::CapacityMismatch) rather than
    /// hand out a ring of another size. To open whatever capacity exists, give none, or give
    /// it with [`capacity_if_created`](Self::capacity_if_created). `open` and `open_with`
    /// ignore it.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Context, ErrorKind, Options};
    /// # let name = format!("doc-capacity-{}", std::process::id());
    /// let chan = ChannelIo::<u64>::create_or_open(&name, Options::new().capacity(500))?;
    /// assert_eq!(chan.capacity(), 512); // a whole 4 KiB page
    /// // The same request again (a restarted peer): the same rounding, the same channel.
    /// assert!(ChannelIo::<u64>::create_or_open(&name, Options::new().capacity(500)).is_ok());
    /// let e = ChannelIo::<u64>::create_or_open(&name, Options::new().capacity(100_000)).unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::CapacityMismatch);
    /// assert_eq!(e.context(), &Context::Capacity { requested: 100_000, rounded: 100_352, found: 512 });
    /// // No capacity asked for: whatever exists.
    /// assert_eq!(ChannelIo::<u64>::create_or_open(&name, Options::new())?.capacity(), 512);
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    pub fn capacity(mut self, elements: usize) -> Options {
        self.capacity = Some(Capacity::Required(elements));
        self
    }

    /// Ring capacity in elements if the channel is created here (rounded up as
    /// [`capacity`](Self::capacity) is), asking nothing of a channel that exists:
    /// [`create_or_open`](crate::ChannelIo::create_or_open) then opens it with whatever
    /// capacity it has. For a program with a default of its own that joins any channel of
    /// the name; the last of `capacity` and `capacity_if_created` given counts.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-capacity-if-{}", std::process::id());
    /// let _chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    /// let chan = ChannelIo::<u64>::create_or_open(&name, Options::new().capacity_if_created(1 << 20))?;
    /// assert_eq!(chan.capacity(), 512);
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    pub fn capacity_if_created(mut self, elements: usize) -> Options {
        self.capacity = Some(Capacity::IfCreated(elements));
        self
    }

    /// A tag naming the element's meaning (up to [`SCHEMA_MAX`](crate::SCHEMA_MAX) bytes),
    /// recorded at creation; [`ChannelIo::open_with`](crate::ChannelIo::open_with) fails unless both sides give the same
    /// tag. It names the element's meaning; its layout is named by [`descr`](Self::descr).
    pub fn schema(mut self, tag: impl Into<String>) -> Options {
        self.schema = Some(tag.into());
        self
    }

    /// The element's full description, in the NPY format's `descr` notation (see [`Descr`]):
    /// field names and order, kinds, datetime units, byte order, padding. Recorded at
    /// creation; an open fails unless the channel's description is the same
    /// ([`ElementMismatch`](crate::ErrorKind::ElementMismatch), naming both).
    ///
    /// A primitive element describes itself (`'<f4'` for `f32`): give nothing, or its own.
    /// A record type (a `#[repr(C)]` struct) has no description unless it is given here;
    /// without one, it pairs with any channel of its size and alignment, as it cannot know
    /// better. So give one wherever the other side may be a numpy dtype, which always has
    /// one: this is how a Rust peer names its layout.
    ///
    /// Any spelling [`Descr::parse`] reads will do; the channel records the canonical one. A
    /// text it does not read, or one of another size than the element type, fails the
    /// create or open with [`InvalidDescr`](crate::ErrorKind::InvalidDescr).
    ///
    /// ```
    /// use shmchan::{ChannelIo, ErrorKind, Options};
    /// # let name = format!("doc-descr-{}", std::process::id());
    /// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct Tick { t: i64, price: f32, size: u32 } // numpy: [('t', '<M8[us]'), ('price', '<f4'), ('size', '<u4')]
    ///
    /// const TICK: &str = "[('t', '<M8[us]'), ('price', '<f4'), ('size', '<u4')]";
    /// let chan = ChannelIo::<Tick>::create(&name, Options::new().descr(TICK))?;
    /// assert_eq!(chan.descr(), Some(TICK));
    /// // A peer that takes `t` for nanoseconds is refused, naming both descriptions.
    /// let ns = "[('t', '<M8[ns]'), ('price', '<f4'), ('size', '<u4')]";
    /// let e = ChannelIo::<Tick>::open_with(&name, Options::new().descr(ns)).unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::ElementMismatch);
    /// assert!(e.to_string().contains("'<M8[ns]'") && e.to_string().contains("'<M8[us]'"));
    /// // A side without a description pairs by size and alignment.
    /// assert!(ChannelIo::<Tick>::open(&name).is_ok());
    /// # Ok::<(), shmchan::Error>(())
    /// ```
    ///
    /// [`Descr`]: crate::Descr
    /// [`Descr::parse`]: crate::Descr::parse
    pub fn descr(mut self, descr: impl Into<String>) -> Options {
        self.descr = Some(descr.into());
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
    /// [`ChannelIo::remove`](crate::ChannelIo::remove) deletes it.
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

    /// Records the stream a channel continues ([`Origin`]), when it is created; ignored
    /// when opening a channel that exists (compare [`ChannelIo::origin`](crate::ChannelIo::origin)
    /// with what you expect).
    pub fn origin(mut self, origin: Origin) -> Options {
        self.origin = Some(origin);
        self
    }

    /// How this process's ends wait. Not recorded in the channel: each side chooses its own.
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Options {
        self.wait = strategy;
        self
    }
}
