//! Opening an existing channel: find and lock its segment, validate its header against what
//! the caller expects, open its doorbells, map it.
//!
//! Nothing read from the files is trusted: the header is read with `pread` and validated
//! (`Snapshot::validate`) before anything is mapped, and the mapping's size comes from the
//! validated fields.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::files::{
    check_layout, classify, errno_err, foreign, invalid_to_error, io_err, open_bell,
    open_channel_dir, read_snapshot,
};
use super::lock::{ofd_lock, PRESENCE};
use super::mapping::{page_size, ring_geometry, Mapping};
use super::names::{channel_dir, check_name, DATA_BELL, RING_FILE, ROOM_BELL};
use super::{Layout, OpenSpec, Segment};
use crate::error::{Context, Error, ErrorKind};
use crate::header::{self, Snapshot, FLAG_MEMBARRIER};

/// A channel's directory and segment file, open, with our presence lock on the segment.
struct Locked {
    dir: OwnedFd,
    ring: OwnedFd,
}

impl Segment {
    /// Opens existing channel `name`, checking it holds elements of `layout`, and what
    /// `spec` asks: the schema tag, the capacity, and that it belongs to this user (or root)
    /// unless `any_owner`.
    pub(crate) fn open(name: &str, layout: Layout, spec: &OpenSpec<'_>) -> Result<Segment, Error> {
        let OpenSpec {
            schema,
            any_owner,
            capacity,
        } = *spec;
        check_name(name)?;
        let page = page_size();
        check_layout(name, &layout, page)?;
        let dir_path = channel_dir(name);
        let path = dir_path.join(RING_FILE);
        // A concurrent last-handle cleanup can unlink the file between our open and our lock;
        // we then start over. Each round either finds a linked file (and keeps it: our lock
        // stops any further cleanup) or a name that no longer exists (NotFound), so two rounds
        // settle it unless the name is removed and re-created in between, again and again.
        let mut locked = None;
        for _ in 0..64 {
            locked = lock_published(name, &dir_path, any_owner)?;
            if locked.is_some() {
                break;
            }
        }
        let Some(Locked { dir, ring }) = locked else {
            return Err(Error::at(ErrorKind::NotFound, name, dir_path));
        };
        let (snap, size) = read_snapshot(&ring, name, &path)?;
        snap.validate(page, size)
            .map_err(|inv| invalid_to_error(inv, name, &path))?;
        let found_schema = check_identity(name, &layout, schema, &snap)?;
        if let Some(requested) = capacity {
            check_capacity(name, requested, layout.size, snap.capacity, page)?;
        }
        let membarrier = snap.flags & FLAG_MEMBARRIER != 0;
        if membarrier {
            // Our fast paths will run without a fence, and our sleeps will call membarrier:
            // both need this process registered (see `barrier`).
            crate::barrier::require(name)?;
        }
        let data_bell = bell(name, &dir, &dir_path, DATA_BELL)?;
        let room_bell = bell(name, &dir, &dir_path, ROOM_BELL)?;
        // `validate` bounded header_len (1 MiB) and data_len (1 TiB); on this 64-bit target
        // (see lib.rs) the window below fits in isize.
        let header_len = snap.header_len as usize;
        let data_len = snap.data_len as usize;
        // SAFETY: `validate` checked that the file holds at least header_len + data_len bytes
        // and that both are non-zero page multiples; their sum fits (above). A peer that
        // truncates the file later makes accesses raise SIGBUS (documented in lib.rs); it
        // cannot make us touch memory outside the mapping.
        let map = unsafe { Mapping::mirrored(&ring, header_len, data_len) }
            .map_err(errno_err(name, "mapping the segment"))?;
        Ok(Segment {
            name: name.to_string(),
            dir: dir_path,
            map: Arc::new(map),
            file: ring,
            data_bell,
            room_bell,
            capacity: snap.capacity,
            elem_size: layout.size,
            schema: found_schema,
            descr: snap.descr_str(),
            origin: crate::Origin::from_words(snap.origin_stream, snap.origin_first),
            membarrier,
            claimed: [AtomicBool::new(false), AtomicBool::new(false)],
            pid: std::process::id(),
        })
    }
}

/// One round of finding channel `name`'s segment and taking our presence lock on it;
/// `None` if the segment was being removed meanwhile (look again).
fn lock_published(name: &str, dir_path: &Path, any_owner: bool) -> Result<Option<Locked>, Error> {
    let dir = open_channel_dir(name, dir_path)?;
    let dir_st = rustix::fs::fstat(&dir).map_err(errno_err(name, "fstat"))?;
    let me = rustix::process::geteuid().as_raw();
    if !any_owner && dir_st.st_uid != me && dir_st.st_uid != 0 {
        return Err(
            Error::new(ErrorKind::ForeignOwner, name).with_context(Context::Owner {
                owner: dir_st.st_uid,
                uid: me,
            }),
        );
    }
    let ring = match rustix::fs::openat(
        &dir,
        RING_FILE,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(Errno::NOENT) => return Ok(None), // being removed (or never a channel): re-check
        Err(e) => {
            return Err(classify(
                name,
                dir_path,
                Some(RING_FILE),
                "opening the segment",
                e,
            ))
        }
    };
    let st = rustix::fs::fstat(&ring).map_err(errno_err(name, "fstat"))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile
        || st.st_uid != dir_st.st_uid
    {
        return Err(foreign(name, dir_path));
    }
    // Blocks only while a last-handle cleanup holds the byte exclusively, which it does for
    // the few system calls of a removal.
    ofd_lock(ring.as_fd(), PRESENCE, libc::F_RDLCK, true)
        .map_err(io_err(name, "locking the segment"))?;
    let st = rustix::fs::fstat(&ring).map_err(errno_err(name, "fstat"))?;
    if st.st_nlink == 0 {
        return Ok(None);
    }
    Ok(Some(Locked { dir, ring }))
}

/// Checks that the validated header `snap` holds elements of `layout` and the expected
/// schema tag; returns the channel's schema.
///
/// The pairing rule: size and alignment always match, and so do the two descriptions when
/// both sides have one (a primitive always has its own, so primitives of one size are told
/// apart). A side without one, a record type whose layout only its size and alignment say,
/// pairs with any description of that size and alignment: it cannot know better.
fn check_identity(
    name: &str,
    layout: &Layout,
    schema: Option<&str>,
    snap: &Snapshot,
) -> Result<Option<String>, Error> {
    let found_kind = header::Primitive::from_code(snap.elem_kind);
    let found_descr = snap.descr_str();
    let ours = layout.descr.as_ref().map(|d| d.as_str());
    // `validate` put the channel's description in canonical form, and `describe` ours.
    let descrs_differ = matches!((ours, found_descr.as_deref()), (Some(a), Some(b)) if a != b);
    let kinds_differ = matches!((found_kind, layout.kind), (Some(a), Some(b)) if a != b);
    // A message channel opens only as one, and only one opens as one.
    let found_message = snap.elem_kind == header::MESSAGE_KIND;
    if found_message != layout.message
        || snap.elem_size as usize != layout.size
        || snap.elem_align as usize != layout.align
        || kinds_differ
        || descrs_differ
    {
        return Err(
            Error::new(ErrorKind::ElementMismatch, name).with_context(Context::Element {
                type_name: layout.type_name,
                expected_size: layout.size as u32,
                expected_align: layout.align as u32,
                expected_descr: ours.map(str::to_string),
                found_size: snap.elem_size,
                found_align: snap.elem_align,
                found_type: if found_message {
                    Some(header::MESSAGE_TYPE)
                } else {
                    found_kind.map(|k| k.name())
                },
                found_descr,
            }),
        );
    }
    let found = snap.schema_str();
    if found.as_deref() != schema.filter(|s| !s.is_empty()) {
        return Err(
            Error::new(ErrorKind::SchemaMismatch, name).with_context(Context::Schema {
                expected: schema.map(str::to_string),
                found,
            }),
        );
    }
    Ok(found)
}

/// Checks that a channel whose capacity is `found` elements of `elem_size` bytes has what a
/// create asking for `requested` would make: the same rounding ([`ring_geometry`]), so that
/// a restarted peer that asks for what it asked for before opens the channel it made.
fn check_capacity(
    name: &str,
    requested: usize,
    elem_size: usize,
    found: u64,
    page: u64,
) -> Result<(), Error> {
    let (rounded, _) = ring_geometry(name, requested, elem_size as u64, page)?;
    if rounded == found {
        return Ok(());
    }
    Err(
        Error::new(ErrorKind::CapacityMismatch, name).with_context(Context::Capacity {
            requested: requested as u64,
            rounded,
            found,
        }),
    )
}

/// Opens doorbell `which` of channel `name` through its directory `dir`.
fn bell(name: &str, dir: &OwnedFd, dir_path: &Path, which: &str) -> Result<OwnedFd, Error> {
    open_bell(dir, which).map_err(|e| match (e.kind(), e.raw_os_error()) {
        // Missing, or not a FIFO: these files are not a channel's.
        (io::ErrorKind::NotFound | io::ErrorKind::InvalidData, _) => foreign(name, dir_path),
        (_, Some(errno)) => classify(
            name,
            dir_path,
            Some(which),
            "opening a doorbell",
            Errno::from_raw_os_error(errno),
        ),
        _ => io_err(name, "opening a doorbell")(e),
    })
}
