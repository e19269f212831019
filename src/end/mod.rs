//! What the two fronts share: a claimed end of a segment, its waiter, and its closed flag.
//!
//! [`WriterFront`](crate::WriterFront) and [`ReaderFront`](crate::ReaderFront) differ in
//! their half of the ring and in what they do with it; claiming, closing, reporting a
//! corrupt index and the accessors are the same, and live here once.

use std::sync::Arc;

mod external;

use crate::element::Stride;
use crate::error::{Context, Error, ErrorKind};
use crate::header::{End, Header, OPEN};
use crate::liveness::Claim;
use crate::notify::{WaitStats, WaitStrategy, Waiter};
use crate::ring::RingError;
use crate::segment::Segment;

/// The public accessors both fronts have, on the end core in a field `core`.
macro_rules! accessors {
    () => {
        /// The channel's name.
        pub fn name(&self) -> &str {
            self.core.name()
        }

        /// Ring capacity in elements.
        pub fn capacity(&self) -> usize {
            self.core.capacity()
        }

        /// This end's waiting counters (system calls made to sleep and to wake the peer).
        pub fn wait_stats(&self) -> $crate::notify::WaitStats {
            self.core.wait_stats()
        }

        /// Changes how this end waits (see [`WaitStrategy`](crate::WaitStrategy)).
        pub fn set_wait_strategy(&mut self, strategy: $crate::notify::WaitStrategy) {
            self.core.set_wait_strategy(strategy);
        }

        /// Lets go of this end without closing the channel, as a process killed now would:
        /// the peer learns that the end's holder is gone (`PeerGone`), nothing is ended for
        /// it, and a new holder of this end carries on where this one stopped. (Dropping the
        /// end, or `close`, closes the channel instead.)
        ///
        /// In a process that inherited this end through `fork`, it only lets go of this
        /// process's copy, as a drop does: the claimant keeps the end.
        pub fn leave(mut self) {
            // Marked closed: the drop that follows skips `finish`, and only releases the
            // end's lock (in the claimant's process).
            self.core.closed = true;
            let bell = self
                .core
                .owned_here()
                .then(|| self.core.waiter.peer_bell())
                .flatten();
            drop(self);
            // Then ring the peer, which may sleep waiting for us: it re-checks our lock, finds
            // it free, and learns that we are gone (a pidfd would not tell it if it lives in
            // this process).
            if let Some(bell) = bell {
                crate::notify::ring(std::os::fd::AsFd::as_fd(&bell));
            }
        }

        /// `Ok` in the process that claimed this end; [`Forked`](crate::ErrorKind::Forked) in
        /// a process that inherited it through `fork`. There every call that moves data or
        /// waits fails with that error, and closing, aborting, leaving or dropping the end
        /// only lets go of this process's copy: the claimant's end stays open and claimed.
        /// For code that must not close silently in vain (the Python package's `close`
        /// raises instead).
        ///
        /// # Errors
        ///
        /// [`Forked`](crate::ErrorKind::Forked), naming the claimant's pid.
        pub fn check_process(&self) -> Result<(), $crate::Error> {
            if self.core.owned_here() {
                Ok(())
            } else {
                Err(self.core.forked_error())
            }
        }

        /// Bounds every later wait of this end (async and blocking): a call that has waited
        /// `timeout` for items or room fails with `TimedOut`, having removed nothing (a put:
        /// having accepted a prefix, which the error counts). `None` (the default) waits as
        /// long as it takes. A peer that never comes, or one whose death cannot be seen,
        /// then ends the wait too.
        ///
        /// The deadline is kept by the sleep itself (a `poll` timeout, a timer for async):
        /// no polling.
        pub fn set_timeout(&mut self, timeout: Option<std::time::Duration>) {
            self.core.waiter.timeout = timeout;
        }
    };
}
pub(crate) use accessors;

/// Addresses inside the mapping of the `Segment` next to them in [`EndCore`] (a field of
/// its own, so that borrowing the header leaves the waiter free).
pub(crate) struct Hot {
    header: std::ptr::NonNull<Header>,
    data: *mut u8,
}

impl Hot {
    /// The segment's header (as `seg.header()`, in one load).
    #[inline(always)]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `header` is `seg.header()` of the `EndCore` holding us, taken at the
        // claim: the mapping it points into lives as long as that `seg`, so as long as
        // `self`, and holds a valid `Header` (see `Segment::header`).
        unsafe { self.header.as_ref() }
    }

    /// Slot `slot` of the ring, as a `T` pointer, for elements of `units` `T`s. Up to
    /// `capacity` slots from there are one contiguous range of the mirrored mapping.
    ///
    /// `slot` must be below the capacity (the ring's `slot()` always is), and `units` `T`s of
    /// `size_of::<T>()` must be the channel's element size (open checked it against the
    /// header's).
    #[inline(always)]
    pub(crate) fn slot<T>(&self, slot: u64, units: usize) -> *mut T {
        // SAFETY: `slot < capacity` (the caller's contract), so the offset (slot × the
        // element's size in bytes, which is `units` `T`s) is inside the first copy of the
        // data region; the region starts page aligned and elements are that size apart, so
        // the pointer is aligned for T.
        unsafe { (self.data as *mut T).add(slot as usize * units) }
    }
}

// SAFETY: plain addresses into a mapping that the `Arc<Segment>` beside them keeps alive
// (and `Segment` is Send and Sync); what they point to is shared with another process
// anyway, and is accessed only through atomics (the header) or under the ring's protocol
// (the data), whichever thread holds the front.
unsafe impl Send for Hot {}
// SAFETY: as for Send: `&Hot` only hands out the same addresses.
unsafe impl Sync for Hot {}

/// One claimed end of a channel.
pub(crate) struct EndCore {
    pub(crate) seg: Arc<Segment>,
    /// Where `seg`'s header and data region are, for the fast paths: one load each, instead
    /// of a walk through the `Arc` and the mapping.
    pub(crate) hot: Hot,
    /// Which end this is.
    pub(crate) end: End,
    pub(crate) waiter: Waiter,
    /// Closed through this front (or inert in a forked child): no more calls go through.
    /// Set only on the way out: by `finish`, which only `close`, `abort` and `Drop` call
    /// (the first two take the front by value), and by `leave` (by value too). So no call
    /// made through a live front finds it set, and the fast paths do not test it; the slow
    /// paths still do.
    pub(crate) closed: bool,
    /// The fork generation of the claimant's process (`fork::generation`). Any other value
    /// means this end is used in a process forked from its claimant: see [`forked`](Self::forked).
    generation: u64,
    /// The claimant's pid, for the error of an end used in another process.
    claimant: u32,
    // Declared last: dropped after the front's `Drop::drop` closed the channel, releasing
    // the lock only then.
    _claim: Claim,
}

impl EndCore {
    /// Claims `end` of `seg`, builds this end's half of the ring from the indices
    /// (`ring(tail, head, capacity)`), opens the doorbells; then, with nothing left to fail,
    /// makes the claim visible and rings the peer, which may be asleep waiting for this end
    /// to appear, so that it starts watching us.
    pub(crate) fn claim<R>(
        seg: &Arc<Segment>,
        end: End,
        wait: WaitStrategy,
        ring: impl FnOnce(u64, u64, u64) -> Result<R, RingError>,
    ) -> Result<(EndCore, R), Error> {
        let claim = Claim::take(seg, end)?;
        // After `take`, which registered the atfork handler: a fork from here on changes the
        // generation in the child.
        let generation = crate::fork::generation();
        let h = seg.header();
        // Resume where the previous holder of this end stopped. Our own index first, then the
        // peer's: the peer's only moves towards ours (head up to a published tail, tail up to
        // head + capacity), so the pair is consistent as loaded. Acquire on the peer's index
        // pairs with its Release store (a reader then sees the committed items' bytes, a
        // writer the reader's reads done); on our own Relaxed would do (only this end stores
        // it, and taking the lock orders us after its previous holder), Acquire costs nothing.
        let load = |i: &std::sync::atomic::AtomicU64| i.load(std::sync::atomic::Ordering::Acquire);
        let (tail, head) = match end {
            End::Writer => {
                let tail = load(&h.tail.0);
                (tail, load(&h.head.0))
            }
            End::Reader => {
                let head = load(&h.head.0);
                (load(&h.tail.0), head)
            }
        };
        let ring = ring(tail, head, seg.capacity)
            .map_err(|e| Error::corrupted(seg.name(), e.field, e.detail).by(end))?;
        let mut waiter = Waiter::new(seg, end, wait)
            .map_err(|source| Error::io(seg.name(), "opening the doorbells", source).by(end))?;
        claim.publish();
        waiter.ring_peer();
        let core = EndCore {
            hot: Hot {
                header: std::ptr::NonNull::from(seg.header()),
                data: seg.data(),
            },
            seg: Arc::clone(seg),
            end,
            waiter,
            closed: false,
            generation,
            claimant: std::process::id(),
            _claim: claim,
        };
        Ok((core, ring))
    }

    /// The channel's name.
    #[inline]
    pub(crate) fn name(&self) -> &str {
        self.seg.name()
    }

    /// True if this end is used in a process other than the one that claimed it: a child
    /// forked (without exec) from the claimant, or one of its descendants. One load and one
    /// compare, for the fast paths; see `fork`.
    #[inline(always)]
    pub(crate) fn forked(&self) -> bool {
        crate::fork::generation() != self.generation
    }

    /// The writer's fast-path test in one branch: true if `reader_state` (as loaded) is
    /// [`OPEN`] and this end is used in its claimant's process. `OPEN` is 0, so
    /// `reader_state | (generation ^ ours)` is 0 exactly then.
    #[inline(always)]
    pub(crate) fn open_here(&self, reader_state: u32) -> bool {
        const { assert!(OPEN == 0) };
        (u64::from(reader_state) | (crate::fork::generation() ^ self.generation)) == 0
    }

    /// Whether a call may go through this end: [`EndClosed`](ErrorKind::EndClosed) once it
    /// was closed, [`Forked`](ErrorKind::Forked) in a process that inherited it. Every slow
    /// path (and every call without a fast path) that moves data or waits starts here.
    #[inline]
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.closed {
            return Err(self.error(ErrorKind::EndClosed));
        }
        if self.forked() {
            return Err(self.forked_error());
        }
        Ok(())
    }

    /// The [`Forked`](ErrorKind::Forked) error of this end, naming its claimant.
    #[cold]
    pub(crate) fn forked_error(&self) -> Error {
        self.error(ErrorKind::Forked).with_context(Context::Holder {
            end: self.end,
            pid: Some(self.claimant),
        })
    }

    /// An error of `kind` in a call of this end.
    #[cold]
    pub(crate) fn error(&self, kind: ErrorKind) -> Error {
        Error::new(kind, self.name()).by(self.end)
    }

    /// A system error while doing `op` in a call of this end.
    #[cold]
    pub(crate) fn io_error(&self, op: &'static str, source: std::io::Error) -> Error {
        Error::io(self.name(), op, source).by(self.end)
    }

    /// A corrupt index (from the ring's checks), as this end's error.
    #[cold]
    pub(crate) fn corrupt(&self, e: RingError) -> Error {
        Error::corrupted(self.name(), e.field, e.detail).by(self.end)
    }

    /// A contradiction in the header's record of the peer end (see `notify`), as this end's
    /// error.
    #[cold]
    pub(crate) fn peer_corrupt(&self, detail: String) -> Error {
        Error::corrupted(self.name(), "ends", detail).by(self.end)
    }

    /// The error of a blocking twin whose wait returned `Pending`, which cannot happen (a
    /// bug).
    #[cold]
    pub(crate) fn blocking_bug(&self) -> Error {
        self.io_error(
            "waiting",
            std::io::Error::other("a blocking wait did not complete (bug)"),
        )
    }

    /// Ring capacity in elements.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.seg.capacity as usize
    }

    /// [`Oversized`](ErrorKind::Oversized) unless `n` elements (or slots) fit in the ring at
    /// once.
    pub(crate) fn fits(&self, n: usize) -> Result<(), Error> {
        if n > self.capacity() {
            return Err(self
                .error(ErrorKind::Oversized)
                .with_context(Context::Limit {
                    requested: n,
                    capacity: self.capacity(),
                }));
        }
        Ok(())
    }

    /// The elements in a buffer of `len` `T`s, `stride` to an element, or the error for a
    /// partial element.
    pub(crate) fn whole<S: Stride>(&self, stride: S, len: usize) -> Result<usize, Error> {
        stride.elements(len).ok_or_else(|| {
            self.error(ErrorKind::PartialElement)
                .with_context(Context::Partial {
                    len,
                    element_size: stride.units(),
                })
        })
    }

    pub(crate) fn wait_stats(&self) -> WaitStats {
        self.waiter.stats
    }

    pub(crate) fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.waiter.strategy = strategy;
    }

    /// Closes this end once: `store` writes its final state into the header, then the peer's
    /// doorbell rings (always: closing is rare, and the peer must wake whatever it waits
    /// for). A child forked without exec shares our locks and must not close its parent's
    /// end: there this only marks the front closed.
    pub(crate) fn finish(&mut self, store: impl FnOnce(&Header)) {
        if self.closed || !self.owned_here() {
            self.closed = true;
            return;
        }
        self.closed = true;
        store(self.seg.header());
        self.waiter.ring_peer();
    }

    /// True in the claimant's process: by the fork generation and by the pid (a child made
    /// by a raw `clone` ran no atfork handler). For the rare decisions that touch the
    /// channel on the way out (closing, ringing the peer).
    pub(crate) fn owned_here(&self) -> bool {
        !self.forked() && self.seg.in_owner_process()
    }
}

impl Drop for EndCore {
    /// In a process that inherited this end, the descriptors registered with tokio are let
    /// go of without deregistering them (see `Waiter::forsake`): fork shares the runtime's
    /// epoll instance with the claimant, whose registrations a deregistration here would
    /// remove. The claim (dropped after this) leaves the lock alone there too.
    fn drop(&mut self) {
        if !self.owned_here() {
            self.waiter.forsake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{ChannelIo, ErrorKind, Options, WaitStrategy};

    fn chan(tag: &str) -> ChannelIo<u64> {
        let name = format!("unit-timeout-{tag}-{}", std::process::id());
        let opts = Options::new()
            .capacity(512)
            .wait_strategy(WaitStrategy::Sleep);
        ChannelIo::create(&name, opts).unwrap()
    }

    /// With no writer ever coming, a bounded get ends with TimedOut and removes nothing;
    /// without a timeout set again, the next call would wait (not tested: it would hang).
    #[test]
    fn a_get_times_out_and_removes_nothing() {
        let c = chan("get");
        let mut r = c.reader().unwrap();
        r.set_timeout(Some(Duration::from_millis(20)));
        match r.blocking_get(&mut [0u64; 4]) {
            Err(e) if e.kind() == ErrorKind::TimedOut && e.remaining() == 0 && e.filled() == 0 => {}
            other => panic!("{other:?}"),
        }
        // With a writer that put 3 of the 4: still a timeout, the 3 stay.
        let mut w = c.writer().unwrap();
        w.blocking_put(&[1, 2, 3]).unwrap();
        let err = r.blocking_get(&mut [0u64; 4]).unwrap_err();
        assert!(
            err.kind() == ErrorKind::TimedOut && err.remaining() == 3,
            "{err:?}"
        );
        let mut three = [0u64; 3];
        r.blocking_get(&mut three).unwrap();
        assert_eq!(three, [1, 2, 3]);
        // Async, the same (through the timer).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(r.get_some(&mut [0u64; 4])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");
    }

    /// A put into a full ring accepts what fits, then times out saying how much.
    #[test]
    fn a_put_times_out_with_its_accepted_count() {
        let c = chan("put");
        let (mut w, _r) = (c.writer().unwrap(), c.reader().unwrap());
        w.set_timeout(Some(Duration::from_millis(20)));
        w.blocking_put(&[0; 500]).unwrap();
        match w.blocking_put(&[0; 100]) {
            Err(e) if e.kind() == ErrorKind::TimedOut && e.accepted() == 12 => {}
            other => panic!("{other:?}"),
        }
        w.set_timeout(None);
        assert_eq!(w.try_put(&[0; 1]).unwrap(), 0, "full");
    }

    /// A reader asleep in this same process (no pidfd can tell it of a death here) learns of
    /// a writer's `leave` at once: leave rings it. Without the ring it would sleep until its
    /// timeout.
    #[test]
    fn leave_wakes_a_sleeping_reader_of_the_same_process() {
        let c = chan("leave-wakes");
        let (w, mut r) = (c.writer().unwrap(), c.reader().unwrap());
        r.set_wait_strategy(crate::WaitStrategy::Sleep);
        r.set_timeout(Some(Duration::from_secs(20)));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _ = tid_tx.send(rustix::thread::gettid().as_raw_nonzero().get());
            let start = std::time::Instant::now();
            (r.blocking_get(&mut [0u64; 1]), start.elapsed())
        });
        // Leave only once the reader sleeps in poll(2), so that only the ring can wake it.
        let tid = tid_rx.recv().unwrap();
        let in_poll = || {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
                .is_ok_and(|s| matches!(s.split(' ').next(), Some("7" | "271")))
        };
        while !in_poll() && !t.is_finished() {
            std::thread::yield_now();
        }
        w.leave();
        let (res, took) = t.join().unwrap();
        assert!(
            matches!(&res, Err(e) if e.kind() == ErrorKind::PeerGone),
            "{res:?} after {took:?}"
        );
        // Woken, not found by the timed wait's last look at the lock (after 20 s).
        assert!(took < Duration::from_secs(10), "the reader slept {took:?}");
    }

    /// `leave` lets go of the writer without ending the stream: the reader drains, then
    /// learns the writer is gone (not closed), and a new writer carries on.
    #[test]
    fn a_left_writer_is_gone_not_closed() {
        let c = chan("leave");
        let (mut w, mut r) = (c.writer().unwrap(), c.reader().unwrap());
        r.set_timeout(Some(Duration::from_secs(10))); // a hang fails instead of hanging
        w.blocking_put(&[1, 2]).unwrap();
        w.leave();
        let mut two = [0u64; 2];
        r.blocking_get(&mut two).unwrap();
        match r.blocking_get(&mut [0u64; 1]) {
            Err(e) if e.kind() == ErrorKind::PeerGone && e.remaining() == 0 => {}
            other => panic!("{other:?}"),
        }
        let mut w = c.writer().unwrap();
        w.blocking_put(&[3]).unwrap();
        let mut one = [0u64];
        r.blocking_get(&mut one).unwrap();
        assert_eq!(one, [3]);
    }
}
