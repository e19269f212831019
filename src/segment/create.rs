//! Creating a channel, in named steps: check what was asked, build the whole directory under
//! a temporary name ([`Staging`]), lock and map the segment, initialise its header, publish.
//!
//! **Publish by rename.** The creator builds the whole directory under a temporary name,
//! allocates the segment with `fallocate` (so a full `/dev/shm` fails here, not with SIGBUS
//! later), writes the header, makes the FIFOs, and then `renameat2(RENAME_NOREPLACE)`s it into
//! place. An opener therefore never sees a half-made channel, and there is nothing to retry or
//! wait for; two creators racing for one name get exactly one winner.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::fs::OFlags;
use rustix::io::Errno;

use super::files::{check_layout, check_schema, errno_err, io_err, open_bell, open_dir};
use super::lock::{ofd_lock, PRESENCE};
use super::mapping::{page_size, ring_geometry, Mapping};
use super::names::{
    base_dir, channel_dir, check_name, dir_mode, mode_of, tmp_path, DATA_BELL, RING_FILE, ROOM_BELL,
};
use super::{CreateSpec, Layout, Segment};
use crate::error::{Context, Error, ErrorKind};
use crate::header::{self, Header, DESCR_OFFSET, FLAG_MEMBARRIER, FLAG_PERSIST};

/// A channel directory being built under a temporary name; removed on drop unless published.
struct Staging<'a> {
    name: &'a str,
    tmp: PathBuf,
    published: bool,
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// The descriptors a new channel's files are open through.
struct Files {
    ring: OwnedFd,
    data_bell: OwnedFd,
    room_bell: OwnedFd,
}

impl Segment {
    /// Creates channel `name` exclusively (fails if the name exists).
    pub(crate) fn create(
        name: &str,
        layout: Layout,
        spec: &CreateSpec<'_>,
    ) -> Result<Segment, Error> {
        check_name(name)?;
        let page = page_size();
        check_layout(name, &layout, page)?;
        if let Some(s) = spec.schema {
            check_schema(name, s)?;
        }
        let (capacity, data_len) = ring_geometry(name, spec.capacity, layout.size as u64, page)?;
        let descr = layout.descr.as_ref().map_or("", |d| d.as_str()).as_bytes();
        // The fixed fields, then the description (at most DESCR_MAX bytes), in whole pages.
        let header_len = (DESCR_OFFSET + descr.len()).div_ceil(page as usize) * page as usize;
        let final_dir = channel_dir(name);
        if fs::symlink_metadata(&final_dir).is_ok() {
            return Err(Error::at(ErrorKind::AlreadyExists, name, final_dir));
        }
        let staging = Staging {
            name,
            tmp: tmp_path(&base_dir(), name),
            published: false,
        };
        let files = staging.build(spec.mode, header_len as u64 + data_len)?;
        write_descr(name, &files.ring, descr)?;
        // Take our presence lock before the channel is visible, so no last-handle cleanup
        // elsewhere can remove it under us.
        ofd_lock(files.ring.as_fd(), PRESENCE, libc::F_RDLCK, false)
            .map_err(io_err(name, "locking the segment"))?;
        // SAFETY: the file was just allocated to `header_len + data_len` bytes; both are
        // non-zero page multiples and `ring_geometry` bounded the total to fit in isize.
        let map = unsafe { Mapping::mirrored(&files.ring, header_len, data_len as usize) }
            .map_err(errno_err(name, "mapping the segment"))?;
        let seg = Segment {
            name: name.to_string(),
            dir: final_dir,
            map: Arc::new(map),
            file: files.ring,
            data_bell: files.data_bell,
            room_bell: files.room_bell,
            capacity,
            elem_size: layout.size,
            schema: spec.schema.map(str::to_string),
            descr: layout.descr.as_ref().map(|d| d.as_str().to_string()),
            origin: spec.origin,
            membarrier: spec.membarrier,
            claimed: [AtomicBool::new(false), AtomicBool::new(false)],
            pid: std::process::id(),
        };
        init_header(seg.header(), &layout, spec, header_len, capacity, data_len);
        staging.publish(seg)
    }
}

impl Staging<'_> {
    /// Makes the directory, the segment (`total` bytes, allocated) and the doorbells, each
    /// with exactly `mode` (the umask does not apply).
    fn build(&self, mode: u32, total: u64) -> Result<Files, Error> {
        let name = self.name;
        rustix::fs::mkdir(&self.tmp, mode_of(dir_mode(mode))).map_err(|e| match e {
            Errno::ACCESS | Errno::PERM => Error::at(ErrorKind::PermissionDenied, name, base_dir()),
            Errno::NOENT => Error::io(
                name,
                "creating the channel directory (does the shared-memory directory exist?)",
                e.into(),
            ),
            // Not `classify`: a base directory that is not one is the user's setting, not a
            // foreign channel.
            e => errno_err(name, "creating the channel directory")(e),
        })?;
        let dir = open_dir(&self.tmp).map_err(errno_err(name, "opening the channel directory"))?;
        // mkdir applies the umask; the caller's mode is meant exactly.
        rustix::fs::fchmod(&dir, mode_of(dir_mode(mode)))
            .map_err(errno_err(name, "chmod of the channel directory"))?;
        let ring = rustix::fs::openat(
            &dir,
            RING_FILE,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            mode_of(mode),
        )
        .map_err(errno_err(name, "creating the segment"))?;
        rustix::fs::fchmod(&ring, mode_of(mode))
            .map_err(errno_err(name, "chmod of the segment"))?;
        self.allocate(&ring, total)?;
        for bell in [DATA_BELL, ROOM_BELL] {
            rustix::fs::mknodat(&dir, bell, rustix::fs::FileType::Fifo, mode_of(mode), 0)
                .map_err(errno_err(name, "creating a doorbell FIFO"))?;
        }
        let data_bell = open_bell(&dir, DATA_BELL).map_err(io_err(name, "opening a doorbell"))?;
        let room_bell = open_bell(&dir, ROOM_BELL).map_err(io_err(name, "opening a doorbell"))?;
        // Through the open descriptors: mknod applied the umask too.
        for bell in [&data_bell, &room_bell] {
            rustix::fs::fchmod(bell, mode_of(mode))
                .map_err(errno_err(name, "chmod of a doorbell FIFO"))?;
        }
        Ok(Files {
            ring,
            data_bell,
            room_bell,
        })
    }

    /// Allocates every page of the segment now: a full tmpfs fails here with ENOSPC instead
    /// of raising SIGBUS in whichever process first touches a missing page.
    fn allocate(&self, ring: &OwnedFd, total: u64) -> Result<(), Error> {
        let name = self.name;
        match rustix::fs::fallocate(ring, rustix::fs::FallocateFlags::empty(), 0, total) {
            Ok(()) => Ok(()),
            Err(e @ (Errno::NOSPC | Errno::FBIG | Errno::NOMEM)) => {
                Err(Error::new(ErrorKind::NoSpace, name)
                    .with_context(Context::Space {
                        bytes: total,
                        dir: base_dir(),
                    })
                    .with_source(e.into()))
            }
            // A file system without fallocate: size it (pages are then allocated lazily).
            Err(Errno::OPNOTSUPP) => {
                rustix::fs::ftruncate(ring, total).map_err(errno_err(name, "sizing the segment"))
            }
            Err(e) => Err(errno_err(name, "allocating the segment")(e)),
        }
    }

    /// Renames the finished directory into place (never over an existing channel).
    fn publish(mut self, seg: Segment) -> Result<Segment, Error> {
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &self.tmp,
            rustix::fs::CWD,
            &seg.dir,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {
                self.published = true;
                Ok(seg)
            }
            Err(e) => {
                let path = seg.dir.clone();
                // Drop the handle first (its cleanup finds the name not ours and leaves it),
                // then `self` removes the staging directory.
                drop(seg);
                Err(match e {
                    Errno::EXIST | Errno::NOTEMPTY => {
                        Error::at(ErrorKind::AlreadyExists, self.name, path)
                    }
                    e => errno_err(self.name, "publishing the channel")(e),
                })
            }
        }
    }
}

/// Writes the element description of a fresh segment after the header's fixed fields, with
/// `pwrite` (it is no field of [`Header`]); `init_header` records its length. The segment is
/// not published yet, and the rename that publishes it orders these bytes before any
/// opener's `pread`.
fn write_descr(name: &str, ring: &OwnedFd, descr: &[u8]) -> Result<(), Error> {
    let mut done = 0;
    while done < descr.len() {
        match rustix::io::pwrite(ring, &descr[done..], (DESCR_OFFSET + done) as u64) {
            Ok(0) => {
                let zero = std::io::Error::from(std::io::ErrorKind::WriteZero);
                return Err(Error::io(name, "writing the element description", zero));
            }
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(errno_err(name, "writing the element description")(e)),
        }
    }
    Ok(())
}

/// Writes the header of a fresh segment.
fn init_header(
    h: &Header,
    layout: &Layout,
    spec: &CreateSpec<'_>,
    header_len: usize,
    capacity: u64,
    data_len: u64,
) {
    // The file is fresh (all zero) and invisible to others, so Relaxed stores suffice; the
    // rename that publishes the channel orders them before any opener's reads (an opener
    // reads the header with pread/mmap after the rename).
    h.version.store(header::VERSION, Ordering::Relaxed);
    h.header_len.store(header_len as u32, Ordering::Relaxed);
    h.elem_size.store(layout.size as u32, Ordering::Relaxed);
    h.elem_align.store(layout.align as u32, Ordering::Relaxed);
    let kind = match (layout.message, layout.kind) {
        (true, _) => header::MESSAGE_KIND,
        (false, Some(k)) => k.code(),
        (false, None) => 0,
    };
    h.elem_kind.store(kind, Ordering::Relaxed);
    let descr_len = layout.descr.as_ref().map_or(0, |d| d.as_str().len());
    h.descr_len.store(descr_len as u32, Ordering::Relaxed);
    h.capacity.store(capacity, Ordering::Relaxed);
    h.data_len.store(data_len, Ordering::Relaxed);
    h.abi.store(header::abi_word(), Ordering::Relaxed);
    let flags = if spec.persist { FLAG_PERSIST } else { 0 }
        | if spec.membarrier { FLAG_MEMBARRIER } else { 0 };
    h.flags.store(flags, Ordering::Relaxed);
    let schema = spec.schema.unwrap_or("").as_bytes();
    h.schema_len.store(schema.len() as u32, Ordering::Relaxed);
    Header::write_bytes(&h.schema, schema);
    h.creator_pid.store(std::process::id(), Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    h.created_unix_ns.store(now, Ordering::Relaxed);
    if let Some(o) = spec.origin {
        h.origin_stream.store(o.stream(), Ordering::Relaxed);
        h.origin_first.store(o.first(), Ordering::Relaxed);
    }
    // Magic last, Release: a reader of the file that sees the magic sees a complete header
    // (belt and braces: the rename already publishes the whole directory).
    h.magic.store(header::MAGIC, Ordering::Release);
}
