//! A named segment: a channel's files, opened and mapped, with its locks.
//!
//! The layers, bottom up: [`names`] (where a channel's files live), [`lock`] (the OFD locks),
//! [`mapping`] (the mirror mapping and the ring's geometry), [`files`] (reading the files,
//! and the one errno classifier); on them [`create`] and [`open`], which make a
//! [`Segment`]; and apart from the data path, [`admin`] (inspect, list, remove), which never
//! maps a segment, [`info`], what it reports, and [`gc`], the policy of collecting unused
//! channels over it.
//!
//! **Removal.** When the last handle in a process drops, it tries to turn its presence lock
//! exclusive; if that succeeds no other process has the channel open, and a finished or
//! unused channel (see `Segment::drop`) is removed: renamed away (atomically unpublished),
//! then deleted. An opener that raced with this finds its descriptor unlinked and starts over.

mod admin;
mod appear;
mod create;
mod files;
mod gc;
mod info;
mod lock;
mod mapping;
mod names;
mod open;

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use admin::Removal;
pub(crate) use admin::{inspect, remove, remove_unused, scan};
pub(crate) use appear::{blocking_wait_created, wait_created};
pub(crate) use files::describe;
pub(crate) use gc::gc;
pub use gc::{Collected, GcAction, GcOptions, GcReason};
pub use info::{ChannelInfo, ChannelState, EndInfo};
pub(crate) use lock::{end_byte, ofd_lock, ofd_lock_held};
pub use mapping::KeepMapped;
pub use names::{base_dir, channel_dir, validate_name, NAME_MAX};
pub(crate) use names::{DATA_BELL, ROOM_BELL};

use crate::header::{self, End, Header, FLAG_PERSIST, OPEN};
use files::remove_dir_if;
use lock::PRESENCE;
use mapping::Mapping;
use names::RING_FILE;

/// The element layout a handle was opened with.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub size: usize,
    pub align: usize,
    pub type_name: &'static str,
    /// The primitive the element type is, if any (recorded, and compared when both sides
    /// know theirs).
    pub kind: Option<header::Primitive>,
    /// A message channel ([`header::MESSAGE_KIND`]): recorded, and always compared.
    pub message: bool,
    /// The element's full description: always a primitive's own, a record's if this side
    /// gave one ([`describe`]). Recorded at creation; compared when both sides have one.
    pub descr: Option<header::Descr>,
}

/// What `open` checks beyond the layout.
pub(crate) struct OpenSpec<'a> {
    /// The schema tag the channel must have (`None` or empty: none).
    pub schema: Option<&'a str>,
    /// Accept a channel of another user.
    pub any_owner: bool,
    /// The capacity asked for, in elements, if the channel must have what a create with
    /// that request makes (`create_or_open` with a required capacity).
    pub capacity: Option<usize>,
}

/// What `create` needs beyond the layout.
pub(crate) struct CreateSpec<'a> {
    pub capacity: usize,
    pub schema: Option<&'a str>,
    pub mode: u32,
    pub persist: bool,
    /// Use the asymmetric barrier (the caller registered this process already).
    pub membarrier: bool,
    /// The stream the channel continues.
    pub origin: Option<crate::Origin>,
}

/// An open, mapped, validated channel segment. Shared (in an `Arc`) by a `ChannelIo` and the
/// fronts it hands out.
pub(crate) struct Segment {
    /// The mirror mapping: header, then the data region twice. Declared before the
    /// descriptors (fields drop in declaration order), so it is unmapped before they close
    /// and release our locks, unless a [`KeepMapped`] keeps it mapped longer (it keeps the
    /// memory only: the handle's locks and descriptors, and the removal, are this value's).
    map: Arc<Mapping>,
    name: String,
    dir: PathBuf,
    /// The `ring` file; its open file description carries this handle's OFD locks.
    file: OwnedFd,
    /// The two doorbell FIFOs, opened once through the directory we validated (so a channel
    /// removed and re-created under the same name cannot hand us another channel's bells).
    data_bell: OwnedFd,
    room_bell: OwnedFd,
    /// Validated copies of the identity fields; never re-read from the segment.
    pub capacity: u64,
    pub elem_size: usize,
    pub schema: Option<String>,
    /// The channel's element description (validated, as recorded by its creator).
    pub descr: Option<String>,
    /// The stream the channel continues, as its creator recorded it.
    pub origin: Option<crate::Origin>,
    /// The channel uses the asymmetric barrier (`FLAG_MEMBARRIER`), and this process is
    /// registered for it. Validated copy, like the fields above.
    pub membarrier: bool,
    /// Ends claimed through this handle (the OFD lock cannot tell our own claims apart).
    claimed: [AtomicBool; 2],
    /// The process that opened this handle. A child forked without exec shares our open file
    /// descriptions, hence our locks: its drops must not release them or close our ends.
    pid: u32,
}

impl Segment {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // Every field of Header is an atomic (padding included): valid for any bit pattern and
        // meant for concurrent access, so a shared reference is sound while the peer writes.
        // SAFETY: the mapping starts with header_len >= size_of::<Header>() bytes, is page
        // aligned (Header needs 128) and lives as long as `self`; see above for the fields.
        unsafe { &*(self.map.base().as_ptr() as *const Header) }
    }

    /// Start of the first copy of the data region; `2 * capacity * elem_size` bytes are
    /// mapped from here.
    #[inline]
    pub(crate) fn data(&self) -> *mut u8 {
        self.map.data()
    }

    /// Keeps this segment's memory mapped, and nothing else (see [`KeepMapped`]).
    pub(crate) fn keep_mapped(&self) -> KeepMapped {
        KeepMapped::new(Arc::clone(&self.map))
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// True if our segment file is still linked and is the one the channel's name refers to
    /// (it was not removed, and the name not re-created by someone else).
    fn still_published(&self) -> bool {
        let Ok(ours) = rustix::fs::fstat(&self.file) else {
            return false;
        };
        if ours.st_nlink == 0 {
            return false;
        }
        match fs::symlink_metadata(self.dir.join(RING_FILE)) {
            Ok(m) => m.ino() == ours.st_ino && m.dev() == ours.st_dev,
            Err(_) => false,
        }
    }

    /// A new descriptor for a doorbell (`DATA_BELL` or `ROOM_BELL`), for one front.
    pub(crate) fn bell(&self, which: &str) -> io::Result<OwnedFd> {
        match which {
            DATA_BELL => self.data_bell.try_clone(),
            _ => self.room_bell.try_clone(),
        }
    }

    /// True in the process that opened this handle (false in a child forked without exec,
    /// which shares our locks and must leave them alone).
    pub(crate) fn in_owner_process(&self) -> bool {
        std::process::id() == self.pid
    }

    /// Marks `end` as claimed through this handle; false if it already was.
    pub(crate) fn claim_local(&self, end: End) -> bool {
        !self.claimed[end.index()].swap(true, Ordering::AcqRel)
    }

    pub(crate) fn release_local(&self, end: End) {
        self.claimed[end.index()].store(false, Ordering::Release);
    }

    pub(crate) fn claimed_local(&self, end: End) -> bool {
        self.claimed[end.index()].load(Ordering::Acquire)
    }

    /// Items committed and not yet consumed, as the header says now (clamped: a corrupt
    /// header cannot make this exceed the capacity).
    pub(crate) fn len(&self) -> u64 {
        let h = self.header();
        // Acquire/Acquire: only a snapshot for reporting, but read head first so that a
        // concurrent reader's progress cannot make tail < head appear (head only grows to
        // a tail value already published).
        let head = h.head.0.load(Ordering::Acquire);
        let tail = h.tail.0.load(Ordering::Acquire);
        tail.saturating_sub(head).min(self.capacity)
    }

    /// True if this channel has delivered everything it ever will — its reader closed (after
    /// reading to the end, or early, discarding the rest) — or if it was never used at all.
    ///
    /// A writer that closed (or aborted) is not enough, even with no items left: its end of
    /// stream (and abort reason) has not reached a reader until a reader closes. A reader
    /// that crashed never closed, so a restarted reader still finds the channel.
    fn finished_or_unused(&self) -> bool {
        let h = self.header();
        // Acquire: pairs with the Release store of the reader's state when it closes.
        let rs = h.reader_state.load(Ordering::Acquire);
        let tail = h.tail.0.load(Ordering::Acquire);
        let writers = h.end(End::Writer).claims.load(Ordering::Acquire);
        let readers = h.end(End::Reader).claims.load(Ordering::Acquire);
        rs != OPEN || (writers == 0 && readers == 0 && tail == 0)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // Last handle in this process. If no other process has the channel open (we can make
        // our presence lock exclusive), remove a finished or unused one, unless it persists.
        // A committed, unread item is never removed here.
        //
        // Release our shared lock first, then try for the exclusive one. Of two handles
        // dropping at once, the one that tries last finds no other lock and wins: the first
        // try fails only while the other still holds its shared lock, and that other then
        // releases before its own try. (Converting shared → exclusive in place instead lets
        // both tries fail, and the channel would stay behind.)
        if self.in_owner_process() {
            let persist = self.header().flags.load(Ordering::Relaxed) & FLAG_PERSIST != 0;
            let _ = ofd_lock(self.file.as_fd(), PRESENCE, libc::F_UNLCK, false);
            if !persist
                && matches!(
                    ofd_lock(self.file.as_fd(), PRESENCE, libc::F_WRLCK, false),
                    Ok(true)
                )
                && self.finished_or_unused()
                && self.still_published()
            {
                let _ = remove_dir_if(&self.dir, Some(&self.file));
            }
        }
        // Then the fields drop: the mapping is unmapped (nothing refers to it any more: the
        // fronts hold an Arc to self), unless a `KeepMapped` still holds it (its files may be
        // gone by now: unlinking does not unmap), and the descriptors close, releasing our
        // locks.
    }
}
