//! A named segment: its files, creation and opening, the mirror mapping, the end locks, and
//! removal.
//!
//! A channel named `NAME` is a directory `$SHMCHAN_DIR/shmchan.NAME` (default `/dev/shm`, a
//! tmpfs: the POSIX shared-memory file system) holding
//!
//! - `ring`: the segment (header, then the data region), created 0600 unless asked otherwise;
//! - `data.bell`, `room.bell`: the two doorbell FIFOs (see `notify`).
//!
//! **Publish by rename.** The creator builds the whole directory under a temporary name,
//! allocates the segment with `fallocate` (so a full `/dev/shm` fails here, not with SIGBUS
//! later), writes the header, makes the FIFOs, and then `renameat2(RENAME_NOREPLACE)`s it into
//! place. An opener therefore never sees a half-made channel, and there is nothing to retry or
//! wait for; two creators racing for one name get exactly one winner.
//!
//! **Locks.** Each open handle (one open file description of `ring`) holds a shared OFD lock
//! on byte [`PRESENCE`]; each claimed end holds an exclusive OFD lock on its own byte. The
//! kernel drops OFD locks when their holder's last descriptor closes, so a process killed with
//! SIGKILL frees its end at once, with no pid check (no pid-reuse race, works across pid
//! namespaces).
//!
//! **Removal.** When the last handle in a process drops, it tries to turn its presence lock
//! exclusive; if that succeeds no other process has the channel open, and a finished or
//! unused channel (see `Segment::drop`) is removed: renamed away (atomically unpublished),
//! then deleted. An opener that raced with this finds its descriptor unlinked and starts over.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use crate::error::{Corruption, OpenError, RemoveError};
use crate::header::{
    self, End, Header, Invalid, Snapshot, FLAG_MEMBARRIER, FLAG_PERSIST, HEADER_SIZE, MAX_DATA_LEN,
    OPEN, SCHEMA_MAX,
};
use crate::info::{ChannelInfo, EndInfo, WriterState};

/// Lock byte held shared by every open handle.
pub(crate) const PRESENCE: i64 = 0;

/// The lock byte of an end.
pub(crate) fn end_byte(end: End) -> i64 {
    1 + end.index() as i64
}

/// Longest channel name.
pub const NAME_MAX: usize = 100;

/// The directory that holds channels: `$SHMCHAN_DIR` if set, else `/dev/shm`.
///
/// ```
/// if std::env::var_os("SHMCHAN_DIR").is_none() {
///     assert_eq!(shmchan::base_dir(), std::path::Path::new("/dev/shm"));
/// }
/// ```
pub fn base_dir() -> PathBuf {
    std::env::var_os("SHMCHAN_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"))
}

/// Prefix of a channel's directory name.
pub(crate) const DIR_PREFIX: &str = "shmchan.";
/// Prefix of directories being created or removed.
pub(crate) const TMP_PREFIX: &str = ".shmchan-tmp.";

/// The directory of channel `name` (its segment and doorbells live in it).
///
/// ```
/// assert!(shmchan::channel_dir("imu").ends_with("shmchan.imu"));
/// ```
pub fn channel_dir(name: &str) -> PathBuf {
    base_dir().join(format!("{DIR_PREFIX}{name}"))
}

pub(crate) const RING_FILE: &str = "ring";
pub(crate) const DATA_BELL: &str = "data.bell";
pub(crate) const ROOM_BELL: &str = "room.bell";

/// Checks a channel name: 1 to [`NAME_MAX`] characters from `A-Z a-z 0-9 _ . -`, not starting
/// with `.` or `-`.
///
/// # Errors
///
/// A short reason, as used in [`OpenError::InvalidName`].
///
/// ```
/// assert!(shmchan::validate_name("imu-left.v2").is_ok());
/// assert!(shmchan::validate_name("../etc").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > NAME_MAX {
        return Err("it is longer than 100 bytes");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err("it starts with '.' or '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err("only A-Z a-z 0-9 _ . - are allowed");
    }
    Ok(())
}

pub(crate) fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// `/proc/self/stat` field 22 (start time in clock ticks since boot), 0 if unreadable.
/// Cached per pid, so a child forked without exec records its own.
pub(crate) fn own_start_time() -> u64 {
    static START: std::sync::Mutex<(u32, u64)> = std::sync::Mutex::new((0, 0));
    let pid = std::process::id();
    let mut cached = START.lock().unwrap_or_else(|p| p.into_inner());
    if cached.0 != pid {
        *cached = (pid, process_start_time(pid).unwrap_or(0));
    }
    cached.1
}

/// Start time of process `pid` (field 22 of `/proc/PID/stat`), if it exists.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The element layout a handle was opened with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub size: usize,
    pub align: usize,
    pub type_name: &'static str,
    /// The primitive the element type is, if any (recorded, and compared when both sides
    /// know theirs).
    pub kind: Option<header::Primitive>,
}

/// What `create` needs beyond the layout.
pub(crate) struct CreateSpec<'a> {
    pub capacity: usize,
    pub schema: Option<&'a str>,
    pub mode: u32,
    pub persist: bool,
    /// Use the asymmetric barrier (the caller registered this process already).
    pub membarrier: bool,
}

/// An open, mapped, validated channel segment. Shared (in an `Arc`) by a `ChannelIo` and the
/// fronts it hands out.
pub(crate) struct Segment {
    name: String,
    dir: PathBuf,
    /// The `ring` file; its open file description carries this handle's OFD locks.
    file: OwnedFd,
    /// The two doorbell FIFOs, opened once through the directory we validated (so a channel
    /// removed and re-created under the same name cannot hand us another channel's bells).
    data_bell: OwnedFd,
    room_bell: OwnedFd,
    /// Start of the mapping: header, then the data region twice.
    base: NonNull<u8>,
    map_len: usize,
    header_len: usize,
    /// Validated copies of the identity fields; never re-read from the segment.
    pub capacity: u64,
    pub elem_size: usize,
    pub schema: Option<String>,
    /// The channel uses the asymmetric barrier (`FLAG_MEMBARRIER`), and this process is
    /// registered for it. Validated copy, like the fields above.
    pub membarrier: bool,
    /// Ends claimed through this handle (the OFD lock cannot tell our own claims apart).
    claimed: [AtomicBool; 2],
    /// The process that opened this handle. A child forked without exec shares our open file
    /// descriptions, hence our locks: its drops must not release them or close our ends.
    pid: u32,
}

// SAFETY: `base` points into a MAP_SHARED mapping owned by this value, valid until drop.
// Every access to it goes through atomics (the header) or raw byte copies into slots the
// ring protocol grants to one end at a time; nothing in `Segment` is tied to a thread.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` only hands out `&Header` (atomics) and raw pointers.
unsafe impl Sync for Segment {}

fn io_err<'a>(name: &'a str, op: &'static str) -> impl FnOnce(io::Error) -> OpenError + 'a {
    move |source| OpenError::Io {
        name: name.to_string(),
        op,
        source,
    }
}

fn errno_err<'a>(name: &'a str, op: &'static str) -> impl FnOnce(Errno) -> OpenError + 'a {
    move |e| OpenError::Io {
        name: name.to_string(),
        op,
        source: e.into(),
    }
}

/// A unique temporary name in the base directory.
fn tmp_path(base: &Path, name: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.join(format!(
        "{TMP_PREFIX}{name}.{}.{n}.{nanos}",
        std::process::id()
    ))
}

fn mode_of(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode & 0o777)
}

/// The directory mode for a file mode: each class that may read or write gets search (x).
fn dir_mode(mode: u32) -> u32 {
    let m = mode & 0o666;
    let mut d = m | 0o700;
    for shift in [0, 3] {
        if (m >> shift) & 0o6 != 0 {
            d |= 1 << shift;
        }
    }
    d
}

/// Takes or releases an OFD lock on one byte of `fd`. `kind` is `F_RDLCK`, `F_WRLCK` or
/// `F_UNLCK`. Returns `Ok(false)` if a conflicting lock is held (only when `wait` is false).
pub(crate) fn ofd_lock(fd: BorrowedFd<'_>, byte: i64, kind: i32, wait: bool) -> io::Result<bool> {
    // SAFETY: `flock` is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    // l_pid must be 0 for OFD locks.
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    loop {
        // SAFETY: `fd` is a valid open descriptor for the duration of the borrow, and `fl`
        // is a properly initialised `flock` that outlives the call.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &fl as *const libc::flock) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// True if some open file description other than `fd`'s holds a lock on `byte`
/// (`F_OFD_GETLK`). Locks held through `fd` itself never conflict and are not seen.
pub(crate) fn ofd_lock_held(fd: BorrowedFd<'_>, byte: i64) -> io::Result<bool> {
    // SAFETY: all-zero is a valid `flock`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    // SAFETY: `fd` is valid for the borrow; `fl` is a valid `flock` the kernel writes back.
    let r = unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_OFD_GETLK,
            &mut fl as *mut libc::flock,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Reads the identity fields of `file` (no mapping yet), and the file's size.
fn read_snapshot(file: &OwnedFd, name: &str, path: &Path) -> Result<(Snapshot, u64), OpenError> {
    let (buf, size) = read_header(file, name, path)?;
    Ok((Snapshot::parse(&buf), size))
}

/// Reads the header bytes of `file` with pread, and the file's size.
fn read_header(
    file: &OwnedFd,
    name: &str,
    path: &Path,
) -> Result<([u8; HEADER_SIZE], u64), OpenError> {
    let st = rustix::fs::fstat(file).map_err(errno_err(name, "fstat"))?;
    let size = st.st_size as u64;
    if size < HEADER_SIZE as u64 {
        if size == 0 {
            return Err(OpenError::NotInitialized {
                name: name.to_string(),
            });
        }
        return Err(OpenError::TooSmall {
            name: name.to_string(),
            path: path.to_path_buf(),
            size,
            needed: HEADER_SIZE as u64,
        });
    }
    let mut buf = [0u8; HEADER_SIZE];
    let mut got = 0;
    while got < HEADER_SIZE {
        match rustix::io::pread(file, &mut buf[got..], got as u64) {
            Ok(0) => {
                return Err(OpenError::TooSmall {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                    size: got as u64,
                    needed: HEADER_SIZE as u64,
                })
            }
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(errno_err(name, "reading the header")(e)),
        }
    }
    Ok((buf, size))
}

fn invalid_to_error(inv: Invalid, name: &str, path: &Path) -> OpenError {
    let name = name.to_string();
    match inv {
        Invalid::Uninitialised => OpenError::NotInitialized { name },
        Invalid::Foreign => OpenError::Foreign {
            name,
            path: path.to_path_buf(),
        },
        Invalid::Version(found) => OpenError::VersionMismatch {
            name,
            found,
            supported: header::VERSION,
        },
        Invalid::Abi(found) => OpenError::AbiMismatch {
            name,
            found,
            expected: header::abi_word(),
        },
        Invalid::Field(field, detail) => OpenError::Corrupted(Corruption {
            name,
            field,
            detail,
        }),
    }
}

/// Maps `header_len + data_len` bytes of `file`, then the data region a second time right
/// after it, so that any window of up to `capacity` elements starting in the first copy is
/// one contiguous range.
///
/// # Safety
///
/// The caller must ensure that `file` is at least `header_len + data_len` bytes long (the
/// kernel raises SIGBUS on access beyond the end of a file), that both lengths are non-zero
/// page multiples, and that `header_len + 2 * data_len` fits in `isize`.
unsafe fn map_mirrored(
    file: &OwnedFd,
    header_len: usize,
    data_len: usize,
) -> rustix::io::Result<NonNull<u8>> {
    let total = header_len + 2 * data_len;
    // Reserve the whole window first so the two file mappings land back to back and nothing
    // else can be mapped in between.
    // SAFETY: an anonymous PROT_NONE reservation at an address of the kernel's choosing
    // touches no existing mapping.
    let base = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            total,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )?
    };
    let rw = ProtFlags::READ | ProtFlags::WRITE;
    // SAFETY: `base..base+total` is our own fresh reservation, so MAP_FIXED replaces only
    // pages we own. The file covers `header_len + data_len` bytes (caller's contract).
    let first = unsafe {
        rustix::mm::mmap(
            base,
            header_len + data_len,
            rw,
            MapFlags::SHARED | MapFlags::FIXED,
            file,
            0,
        )
    };
    // SAFETY: as above; the second copy maps file bytes `header_len..header_len+data_len`
    // at the end of the reservation.
    let second = first.and_then(|_| unsafe {
        rustix::mm::mmap(
            base.cast::<u8>().add(header_len + data_len).cast(),
            data_len,
            rw,
            MapFlags::SHARED | MapFlags::FIXED,
            file,
            header_len as u64,
        )
    });
    if let Err(e) = second {
        // SAFETY: unmapping our own reservation, which nothing else references.
        let _ = unsafe { rustix::mm::munmap(base, total) };
        return Err(e);
    }
    Ok(NonNull::new(base.cast::<u8>()).expect("mmap never returns null on success"))
}

/// Opens a doorbell FIFO through the channel's directory. Checks the type *before* opening
/// (opening a device node read-write could have effects) and again after.
fn open_bell(dir: &OwnedFd, which: &str) -> io::Result<OwnedFd> {
    let is_fifo = |st: &rustix::fs::Stat| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo
    };
    let not_fifo = || io::Error::new(io::ErrorKind::InvalidData, format!("{which} is not a FIFO"));
    if !is_fifo(&rustix::fs::statat(
        dir,
        which,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?) {
        return Err(not_fifo());
    }
    // O_RDWR: a FIFO open for reading and writing by us never blocks in open, never fails
    // with ENXIO for lack of a reader, and writes to it never raise SIGPIPE.
    let fd = rustix::fs::openat(
        dir,
        which,
        OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    if !is_fifo(&rustix::fs::fstat(&fd)?) {
        return Err(not_fifo());
    }
    Ok(fd)
}

fn open_dir(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens a channel's directory (no symlinks: another user could otherwise point us at their
/// files), mapping the errors of a missing, foreign or forbidden name.
fn open_channel_dir(name: &str, dir_path: &Path) -> Result<OwnedFd, OpenError> {
    open_dir(dir_path).map_err(|e| match e {
        Errno::NOENT => OpenError::NotFound {
            name: name.to_string(),
            path: dir_path.to_path_buf(),
        },
        Errno::NOTDIR | Errno::LOOP => OpenError::Foreign {
            name: name.to_string(),
            path: dir_path.to_path_buf(),
        },
        Errno::ACCESS | Errno::PERM => OpenError::PermissionDenied {
            name: name.to_string(),
            path: dir_path.to_path_buf(),
        },
        e => errno_err(name, "opening the channel directory")(e),
    })
}

impl Segment {
    /// Creates channel `name` exclusively (fails if the name exists).
    pub(crate) fn create(
        name: &str,
        layout: Layout,
        spec: &CreateSpec<'_>,
    ) -> Result<Segment, OpenError> {
        check_name(name)?;
        let page = page_size();
        check_layout(name, layout, page)?;
        if let Some(s) = spec.schema {
            check_schema(name, s)?;
        }
        let (capacity, data_len) = ring_geometry(name, spec.capacity, layout.size as u64, page)?;
        let header_len = HEADER_SIZE.div_ceil(page as usize) * page as usize;
        let total = header_len as u64 + data_len;

        let base = base_dir();
        let final_dir = channel_dir(name);
        if fs::symlink_metadata(&final_dir).is_ok() {
            return Err(OpenError::AlreadyExists {
                name: name.to_string(),
                path: final_dir,
            });
        }
        let tmp = tmp_path(&base, name);
        let build = || -> Result<(OwnedFd, OwnedFd, OwnedFd), OpenError> {
            rustix::fs::mkdir(&tmp, mode_of(dir_mode(spec.mode))).map_err(|e| match e {
                Errno::ACCESS | Errno::PERM => OpenError::PermissionDenied {
                    name: name.to_string(),
                    path: base.clone(),
                },
                Errno::NOENT => OpenError::Io {
                    name: name.to_string(),
                    op: "creating the channel directory (does the shared-memory directory exist?)",
                    source: e.into(),
                },
                e => errno_err(name, "creating the channel directory")(e),
            })?;
            let dir = open_dir(&tmp).map_err(errno_err(name, "opening the channel directory"))?;
            // mkdir applies the umask; the caller's mode is meant exactly.
            rustix::fs::fchmod(&dir, mode_of(dir_mode(spec.mode)))
                .map_err(errno_err(name, "chmod of the channel directory"))?;
            let file = rustix::fs::openat(
                &dir,
                RING_FILE,
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                mode_of(spec.mode),
            )
            .map_err(errno_err(name, "creating the segment"))?;
            rustix::fs::fchmod(&file, mode_of(spec.mode))
                .map_err(errno_err(name, "chmod of the segment"))?;
            // Allocate every page now: a full tmpfs fails here with ENOSPC instead of
            // raising SIGBUS in whichever process first touches a missing page.
            match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, total) {
                Ok(()) => {}
                Err(e @ (Errno::NOSPC | Errno::FBIG | Errno::NOMEM)) => {
                    return Err(OpenError::NoSpace {
                        name: name.to_string(),
                        bytes: total,
                        dir: base.clone(),
                        source: e.into(),
                    });
                }
                // A file system without fallocate: size it (pages are then allocated lazily).
                Err(Errno::OPNOTSUPP) => rustix::fs::ftruncate(&file, total)
                    .map_err(errno_err(name, "sizing the segment"))?,
                Err(e) => return Err(errno_err(name, "allocating the segment")(e)),
            }
            for bell in [DATA_BELL, ROOM_BELL] {
                rustix::fs::mknodat(
                    &dir,
                    bell,
                    rustix::fs::FileType::Fifo,
                    mode_of(spec.mode),
                    0,
                )
                .map_err(errno_err(name, "creating a doorbell FIFO"))?;
            }
            let data_bell =
                open_bell(&dir, DATA_BELL).map_err(io_err(name, "opening a doorbell"))?;
            let room_bell =
                open_bell(&dir, ROOM_BELL).map_err(io_err(name, "opening a doorbell"))?;
            // Through the open descriptors: mknod applied the umask too.
            for bell in [&data_bell, &room_bell] {
                rustix::fs::fchmod(bell, mode_of(spec.mode))
                    .map_err(errno_err(name, "chmod of a doorbell FIFO"))?;
            }
            Ok((file, data_bell, room_bell))
        };
        let (file, data_bell, room_bell) = match build() {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        // Take our presence lock before the channel is visible, so no last-handle cleanup
        // elsewhere can remove it under us.
        if let Err(e) = ofd_lock(file.as_fd(), PRESENCE, libc::F_RDLCK, false) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(io_err(name, "locking the segment")(e));
        }
        // SAFETY: the file was just allocated to `header_len + data_len` bytes; both are
        // non-zero page multiples and `ring_geometry` bounded the total to fit in isize.
        let base_ptr = match unsafe { map_mirrored(&file, header_len, data_len as usize) } {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(errno_err(name, "mapping the segment")(e));
            }
        };
        let seg = Segment {
            name: name.to_string(),
            dir: final_dir.clone(),
            file,
            data_bell,
            room_bell,
            base: base_ptr,
            map_len: header_len + 2 * data_len as usize,
            header_len,
            capacity,
            elem_size: layout.size,
            schema: spec.schema.map(str::to_string),
            membarrier: spec.membarrier,
            claimed: [AtomicBool::new(false), AtomicBool::new(false)],
            pid: std::process::id(),
        };
        // Initialise the header. The file is fresh (all zero) and invisible to others, so
        // Relaxed stores suffice; the rename below publishes them (a process that opens the
        // channel reads the header with pread/mmap after the rename, which orders it).
        let h = seg.header();
        h.version.store(header::VERSION, Ordering::Relaxed);
        h.header_len.store(header_len as u32, Ordering::Relaxed);
        h.elem_size.store(layout.size as u32, Ordering::Relaxed);
        h.elem_align.store(layout.align as u32, Ordering::Relaxed);
        h.elem_kind
            .store(layout.kind.map_or(0, |k| k.code()), Ordering::Relaxed);
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
        // Magic last, Release: a reader of the file that sees the magic sees a complete
        // header (belt and braces: the rename below already publishes the whole directory).
        h.magic.store(header::MAGIC, Ordering::Release);

        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            &final_dir,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(seg),
            Err(e) => {
                drop(seg);
                let _ = fs::remove_dir_all(&tmp);
                Err(match e {
                    Errno::EXIST | Errno::NOTEMPTY => OpenError::AlreadyExists {
                        name: name.to_string(),
                        path: final_dir,
                    },
                    e => errno_err(name, "publishing the channel")(e),
                })
            }
        }
    }

    /// Opens existing channel `name`, checking it holds elements of `layout` and the given
    /// schema tag, and that it belongs to this user (or root) unless `any_owner`.
    pub(crate) fn open(
        name: &str,
        layout: Layout,
        schema: Option<&str>,
        any_owner: bool,
    ) -> Result<Segment, OpenError> {
        check_name(name)?;
        let page = page_size();
        check_layout(name, layout, page)?;
        let dir_path = channel_dir(name);
        let path = dir_path.join(RING_FILE);
        let foreign = || OpenError::Foreign {
            name: name.to_string(),
            path: dir_path.clone(),
        };
        // A concurrent last-handle cleanup can unlink the file between our open and our lock;
        // we then start over. Each round either finds a linked file (and keeps it: our lock
        // stops any further cleanup) or a name that no longer exists (NotFound), so two rounds
        // settle it unless the name is removed and re-created in between, again and again.
        for _ in 0..64 {
            let dir = open_channel_dir(name, &dir_path)?;
            let dir_st = rustix::fs::fstat(&dir).map_err(errno_err(name, "fstat"))?;
            let me = rustix::process::geteuid().as_raw();
            if !any_owner && dir_st.st_uid != me && dir_st.st_uid != 0 {
                return Err(OpenError::ForeignOwner {
                    name: name.to_string(),
                    owner: dir_st.st_uid,
                    uid: me,
                });
            }
            let file = match rustix::fs::openat(
                &dir,
                RING_FILE,
                OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            ) {
                Ok(f) => f,
                Err(Errno::NOENT) => continue, // being removed (or never a channel): re-check
                Err(Errno::LOOP) | Err(Errno::ISDIR) | Err(Errno::NXIO) => return Err(foreign()),
                Err(Errno::ACCESS) | Err(Errno::PERM) => {
                    return Err(OpenError::PermissionDenied {
                        name: name.to_string(),
                        path,
                    })
                }
                Err(e) => return Err(errno_err(name, "opening the segment")(e)),
            };
            let st = rustix::fs::fstat(&file).map_err(errno_err(name, "fstat"))?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile
                || st.st_uid != dir_st.st_uid
            {
                return Err(foreign());
            }
            // Blocks only while a last-handle cleanup holds the byte exclusively, which it
            // does for the few system calls of a removal.
            ofd_lock(file.as_fd(), PRESENCE, libc::F_RDLCK, true)
                .map_err(io_err(name, "locking the segment"))?;
            let st = rustix::fs::fstat(&file).map_err(errno_err(name, "fstat"))?;
            if st.st_nlink == 0 {
                continue;
            }
            let (snap, size) = read_snapshot(&file, name, &path)?;
            snap.validate(page, size)
                .map_err(|inv| invalid_to_error(inv, name, &path))?;
            let found_kind = header::Primitive::from_code(snap.elem_kind);
            let kinds_differ = matches!((found_kind, layout.kind), (Some(a), Some(b)) if a != b);
            if snap.elem_size as usize != layout.size
                || snap.elem_align as usize != layout.align
                || kinds_differ
            {
                return Err(OpenError::ElementMismatch {
                    name: name.to_string(),
                    type_name: layout.type_name,
                    expected_size: layout.size as u32,
                    expected_align: layout.align as u32,
                    found_size: snap.elem_size,
                    found_align: snap.elem_align,
                    found_type: found_kind.map(|k| k.name()),
                });
            }
            let found = snap.schema_str();
            if found.as_deref() != schema.filter(|s| !s.is_empty()) {
                return Err(OpenError::SchemaMismatch {
                    name: name.to_string(),
                    expected: schema.map(str::to_string),
                    found,
                });
            }
            let membarrier = snap.flags & FLAG_MEMBARRIER != 0;
            if membarrier {
                // Our fast paths will run without a fence, and our sleeps will call
                // membarrier: both need this process registered (see `barrier`).
                crate::barrier::register().map_err(|source| OpenError::MembarrierUnavailable {
                    name: name.to_string(),
                    source,
                })?;
            }
            let bell = |which| {
                open_bell(&dir, which).map_err(|e| match e.kind() {
                    io::ErrorKind::PermissionDenied => OpenError::PermissionDenied {
                        name: name.to_string(),
                        path: dir_path.join(which),
                    },
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidData => foreign(),
                    _ if e.raw_os_error() == Some(libc::ELOOP) => foreign(),
                    _ => io_err(name, "opening a doorbell")(e),
                })
            };
            let data_bell = bell(DATA_BELL)?;
            let room_bell = bell(ROOM_BELL)?;
            // `validate` bounded header_len (1 MiB) and data_len (1 TiB); on this 64-bit
            // target (see lib.rs) the window below fits in isize.
            let header_len = snap.header_len as usize;
            let data_len = snap.data_len as usize;
            // SAFETY: `validate` checked that the file holds at least header_len + data_len
            // bytes and that both are non-zero page multiples; their sum fits (above). A peer
            // that truncates the file later makes accesses raise SIGBUS (documented in
            // lib.rs); it cannot make us touch memory outside the mapping.
            let base_ptr = unsafe { map_mirrored(&file, header_len, data_len) }
                .map_err(errno_err(name, "mapping the segment"))?;
            return Ok(Segment {
                name: name.to_string(),
                dir: dir_path,
                file,
                data_bell,
                room_bell,
                base: base_ptr,
                map_len: header_len + 2 * data_len,
                header_len,
                capacity: snap.capacity,
                elem_size: layout.size,
                schema: found,
                membarrier,
                claimed: [AtomicBool::new(false), AtomicBool::new(false)],
                pid: std::process::id(),
            });
        }
        Err(OpenError::NotFound {
            name: name.to_string(),
            path: dir_path,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // Every field of Header is an atomic (padding included): valid for any bit pattern and
        // meant for concurrent access, so a shared reference is sound while the peer writes.
        // SAFETY: the mapping starts with header_len >= size_of::<Header>() bytes, is page
        // aligned (Header needs 128) and lives as long as `self`; see above for the fields.
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    /// Start of the first copy of the data region; `2 * capacity * elem_size` bytes are
    /// mapped from here.
    #[inline]
    pub(crate) fn data(&self) -> *mut u8 {
        // SAFETY: header_len < map_len, so the result is inside the mapping.
        unsafe { self.base.as_ptr().add(self.header_len) }
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
        // SAFETY: `base..base+map_len` is the mapping made in `map_mirrored`, owned by self;
        // after drop nothing refers to it (fronts hold an Arc to self).
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.map_len) };
        // The descriptors close after this, releasing our locks.
    }
}

/// Unpublishes a channel directory atomically (rename to a temporary name), then deletes it.
/// With `only`, deletes it only if its `ring` is that very file; otherwise (the name was
/// removed and re-created meanwhile) puts it back.
fn remove_dir_if(dir: &Path, only: Option<&OwnedFd>) -> io::Result<()> {
    let base = dir.parent().unwrap_or(Path::new("/"));
    let leaf: OsString = dir.file_name().unwrap_or_default().to_os_string();
    let tmp = tmp_path(base, &leaf.to_string_lossy());
    fs::rename(dir, &tmp)?;
    if let Some(file) = only {
        let ours = match (
            rustix::fs::fstat(file),
            fs::symlink_metadata(tmp.join(RING_FILE)),
        ) {
            (Ok(a), Ok(b)) => a.st_ino == b.ino() && a.st_dev == b.dev(),
            _ => false,
        };
        if !ours {
            return rustix::fs::renameat_with(
                rustix::fs::CWD,
                &tmp,
                rustix::fs::CWD,
                dir,
                rustix::fs::RenameFlags::NOREPLACE,
            )
            .map_err(io::Error::from);
        }
    }
    fs::remove_dir_all(&tmp)
}

/// Opens channel `name`'s directory and segment file for inspection or removal: no owner
/// check, no lock, nothing mapped. The segment's type is checked before it is opened.
fn open_for_inspection(name: &str) -> Result<(PathBuf, OwnedFd), OpenError> {
    check_name(name)?;
    let dir_path = channel_dir(name);
    let path = dir_path.join(RING_FILE);
    let foreign = || OpenError::Foreign {
        name: name.to_string(),
        path: dir_path.clone(),
    };
    let dir = open_channel_dir(name, &dir_path)?;
    match rustix::fs::statat(&dir, RING_FILE, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::RegularFile => {}
        Ok(_) | Err(Errno::NOENT) => return Err(foreign()),
        Err(Errno::ACCESS) | Err(Errno::PERM) => {
            return Err(OpenError::PermissionDenied {
                name: name.to_string(),
                path,
            })
        }
        Err(e) => return Err(errno_err(name, "stat of the segment")(e)),
    }
    let file = match rustix::fs::openat(
        &dir,
        RING_FILE,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(Errno::NOENT) | Err(Errno::LOOP) | Err(Errno::ISDIR) | Err(Errno::NXIO) => {
            return Err(foreign())
        }
        Err(Errno::ACCESS) | Err(Errno::PERM) => {
            return Err(OpenError::PermissionDenied {
                name: name.to_string(),
                path,
            })
        }
        Err(e) => return Err(errno_err(name, "opening the segment")(e)),
    };
    Ok((dir_path, file))
}

/// Reads one aligned u64 of the header with its own pread.
fn pread_u64(file: &OwnedFd, offset: usize) -> Option<u64> {
    let mut b = [0u8; 8];
    matches!(rustix::io::pread(file, &mut b, offset as u64), Ok(8)).then(|| u64::from_ne_bytes(b))
}

/// Reads and validates the header of an open segment file. `exclusive`: the caller holds
/// the presence lock exclusively (so nobody else has the channel open).
fn inspect_file(
    name: &str,
    dir_path: PathBuf,
    file: &OwnedFd,
    exclusive: bool,
) -> Result<ChannelInfo, OpenError> {
    let path = dir_path.join(RING_FILE);
    let st = rustix::fs::fstat(file).map_err(errno_err(name, "fstat"))?;
    let (buf, size) = read_header(file, name, &path)?;
    let snap = Snapshot::parse(&buf);
    snap.validate(page_size(), size)
        .map_err(|inv| invalid_to_error(inv, name, &path))?;
    let mut dynamic = header::Dynamic::parse(&buf);
    // The ends may be working: read head before tail (the reader's head only ever moves up
    // to a tail already published), each on its own, and retry a torn or raced pair.
    let mut consistent = false;
    for _ in 0..16 {
        let head = pread_u64(file, std::mem::offset_of!(Header, head));
        let tail = pread_u64(file, std::mem::offset_of!(Header, tail));
        if let (Some(h), Some(t)) = (head, tail) {
            dynamic.head = h;
            dynamic.tail = t;
            if h <= t && t - h <= snap.capacity {
                consistent = true;
                break;
            }
        }
    }
    if !consistent {
        return Err(OpenError::Corrupted(Corruption {
            name: name.to_string(),
            field: "head/tail",
            detail: format!(
                "head {}, tail {}: not within one capacity ({})",
                dynamic.head, dynamic.tail, snap.capacity
            ),
        }));
    }
    // Our descriptor holds no end lock, so any lock F_OFD_GETLK reports is another holder's.
    // A probe that fails counts as held: when unsure, a channel is in use.
    let held = |byte| ofd_lock_held(file.as_fd(), byte).unwrap_or(true);
    let end = |i: usize, byte| {
        let (pid, start_time, claims) = dynamic.ends[i];
        EndInfo {
            claims,
            pid: (claims > 0).then_some(pid),
            start_time,
            held: held(byte),
        }
    };
    let writer_state = match dynamic.writer_state {
        OPEN => WriterState::Open,
        header::CLOSED => WriterState::Closed,
        header::ABORTED => {
            WriterState::Aborted(String::from_utf8_lossy(&dynamic.reason).into_owned())
        }
        other => {
            return Err(OpenError::Corrupted(Corruption {
                name: name.to_string(),
                field: "writer_state",
                detail: format!("{other} is not 0, 1 or 2"),
            }))
        }
    };
    Ok(ChannelInfo {
        name: name.to_string(),
        dir: dir_path,
        owner_uid: st.st_uid,
        mode: st.st_mode & 0o777,
        version: snap.version,
        elem_size: snap.elem_size,
        elem_align: snap.elem_align,
        elem_type: header::Primitive::from_code(snap.elem_kind),
        schema: snap.schema_str(),
        capacity: snap.capacity,
        header_len: snap.header_len,
        data_len: snap.data_len,
        persist: snap.flags & FLAG_PERSIST != 0,
        barrier: if snap.flags & FLAG_MEMBARRIER != 0 {
            crate::Barrier::Membarrier
        } else {
            crate::Barrier::Fence
        },
        creator_pid: snap.creator_pid,
        created_unix_ns: snap.created_unix_ns,
        tail: dynamic.tail,
        head: dynamic.head,
        writer: end(0, end_byte(End::Writer)),
        reader: end(1, end_byte(End::Reader)),
        writer_state,
        reader_closed: dynamic.reader_state != OPEN,
        in_use: !exclusive && held(PRESENCE),
    })
}

/// Reads channel `name`'s header without opening it for use: no lock is taken, nothing is
/// mapped, and the channel's cleanup is not affected. Validates like `open` (without the
/// element type and owner checks) and reports what it finds.
pub(crate) fn inspect(name: &str) -> Result<ChannelInfo, OpenError> {
    let (dir_path, file) = open_for_inspection(name)?;
    inspect_file(name, dir_path, &file, false)
}

/// What [`ChannelIo::remove_unused`](crate::ChannelIo::remove_unused) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// Removed.
    Removed,
    /// A process has the channel open: left alone.
    InUse,
    /// The decision said keep it.
    Kept,
    /// There is no channel by that name (any more).
    NotFound,
}

/// Removes channel `name` if no process has it open and `decide` agrees, deciding on the
/// header as read while holding the channel's presence lock exclusively: no process can
/// open the channel between the decision and the removal (an opener waits for the lock,
/// then finds the channel gone). `decide` also gets the error for a name whose files are
/// not a readable channel.
pub(crate) fn remove_unused(
    name: &str,
    decide: impl FnOnce(Result<&ChannelInfo, &OpenError>) -> bool,
) -> Result<Removal, RemoveError> {
    validate_name(name).map_err(|reason| RemoveError::InvalidName {
        name: name.to_string(),
        reason,
    })?;
    let io = |source: io::Error| RemoveError::Io {
        name: name.to_string(),
        path: channel_dir(name),
        source,
    };
    let (dir_path, file) = match open_for_inspection(name) {
        Ok(f) => f,
        Err(OpenError::NotFound { .. }) => return Ok(Removal::NotFound),
        Err(e) => {
            // No segment file to lock (a plain file, a directory without a ring...).
            return if decide(Err(&e)) {
                match remove(name) {
                    Ok(()) => Ok(Removal::Removed),
                    Err(RemoveError::NotFound { .. }) => Ok(Removal::NotFound),
                    Err(e) => Err(e),
                }
            } else {
                Ok(Removal::Kept)
            };
        }
    };
    // A write lock needs a descriptor open for writing; F_OFD locks are per open file
    // description, and a read-only one can take only read locks. Re-open read-write when we
    // may (the owner or root), else the channel is not ours to remove anyway.
    let file = match rustix::fs::open(
        dir_path.join(RING_FILE),
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(rw) if same_file(&rw, &file) => rw,
        Ok(_) => return Ok(Removal::NotFound), // replaced meanwhile: look again later
        Err(Errno::NOENT) => return Ok(Removal::NotFound),
        Err(e) => return Err(io(e.into())),
    };
    match ofd_lock(file.as_fd(), PRESENCE, libc::F_WRLCK, false) {
        Ok(true) => {}
        Ok(false) => return Ok(Removal::InUse),
        Err(e) => return Err(io(e)),
    }
    let st = rustix::fs::fstat(&file).map_err(|e| io(e.into()))?;
    if st.st_nlink == 0 {
        return Ok(Removal::NotFound);
    }
    let info = inspect_file(name, dir_path.clone(), &file, true);
    if !decide(info.as_ref()) {
        return Ok(Removal::Kept);
    }
    match remove_dir_if(&dir_path, Some(&file)) {
        Ok(()) => Ok(Removal::Removed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Removal::NotFound),
        Err(e) => Err(io(e)),
    }
}

fn same_file(a: &OwnedFd, b: &OwnedFd) -> bool {
    match (rustix::fs::fstat(a), rustix::fs::fstat(b)) {
        (Ok(x), Ok(y)) => x.st_ino == y.st_ino && x.st_dev == y.st_dev,
        _ => false,
    }
}

/// The names of every channel directory in the base directory (`shmchan.*`), sorted,
/// whatever their contents; and the leftover temporary directories of creators or removers
/// that were killed (`.shmchan-tmp.*`) whose process is gone.
pub(crate) fn scan() -> io::Result<(Vec<String>, Vec<PathBuf>)> {
    let mut names = Vec::new();
    let mut leftovers = Vec::new();
    for entry in fs::read_dir(base_dir())? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(name) = file_name.strip_prefix(DIR_PREFIX) {
            if validate_name(name).is_ok() {
                names.push(name.to_string());
            }
        } else if let Some(rest) = file_name.strip_prefix(TMP_PREFIX) {
            // NAME.PID.N.NANOS: the pid is the third field from the end. Its process must be
            // gone (as far as we can see: another pid namespace, or `hidepid`, may hide it),
            // the directory ours, and older than a minute, so a creation or removal under
            // way elsewhere is never taken for a leftover.
            let pid = rest.rsplit('.').nth(2).and_then(|p| p.parse::<u32>().ok());
            let meta = entry.metadata()?;
            let old = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60));
            let mine = meta.uid() == rustix::process::geteuid().as_raw();
            if old && mine && pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                leftovers.push(entry.path());
            }
        }
    }
    names.sort();
    Ok((names, leftovers))
}

/// Removes channel `name` and all its files, whoever holds it. Processes that have it open
/// keep their mappings (and can finish); new `open`s no longer find it.
pub(crate) fn remove(name: &str) -> Result<(), RemoveError> {
    validate_name(name).map_err(|reason| RemoveError::InvalidName {
        name: name.to_string(),
        reason,
    })?;
    let dir = channel_dir(name);
    let meta = fs::symlink_metadata(&dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            RemoveError::NotFound {
                name: name.to_string(),
                path: dir.clone(),
            }
        } else {
            RemoveError::Io {
                name: name.to_string(),
                path: dir.clone(),
                source: e,
            }
        }
    })?;
    let r = if meta.is_dir() {
        remove_dir_if(&dir, None)
    } else {
        fs::remove_file(&dir)
    };
    r.map_err(|e| RemoveError::Io {
        name: name.to_string(),
        path: dir,
        source: e,
    })
}

fn check_name(name: &str) -> Result<(), OpenError> {
    validate_name(name).map_err(|reason| OpenError::InvalidName {
        name: name.to_string(),
        reason,
    })
}

fn check_layout(name: &str, layout: Layout, page: u64) -> Result<(), OpenError> {
    let unsupported = |reason| OpenError::UnsupportedElement {
        name: name.to_string(),
        type_name: layout.type_name,
        reason,
    };
    if layout.size == 0 {
        return Err(unsupported("zero-sized types carry no data"));
    }
    if layout.align as u64 > page {
        return Err(unsupported("its alignment exceeds the page size"));
    }
    if layout.size > u32::MAX as usize {
        return Err(unsupported("elements are limited to 4 GiB"));
    }
    Ok(())
}

fn check_schema(name: &str, schema: &str) -> Result<(), OpenError> {
    let bad = |reason| OpenError::InvalidSchema {
        name: name.to_string(),
        schema: schema.to_string(),
        reason,
    };
    if schema.len() > SCHEMA_MAX {
        return Err(bad("longer than 48 bytes"));
    }
    if schema.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    Ok(())
}

/// Rounds a requested capacity up so the ring's byte size is a multiple of both the page size
/// and the element size (the mirror mapping needs whole pages; slots must not straddle the
/// wrap). Returns (capacity in elements, bytes).
pub(crate) fn ring_geometry(
    name: &str,
    requested: usize,
    elem: u64,
    page: u64,
) -> Result<(u64, u64), OpenError> {
    let bad = |reason: String| OpenError::InvalidCapacity {
        name: name.to_string(),
        requested,
        reason,
    };
    if requested == 0 {
        return Err(bad("a channel holds at least one element".into()));
    }
    let unit = lcm(page, elem).ok_or_else(|| bad("element size too large".into()))?;
    let bytes = (requested as u64)
        .checked_mul(elem)
        .and_then(|b| b.checked_next_multiple_of(unit))
        .filter(|b| *b <= MAX_DATA_LEN)
        .ok_or_else(|| {
            bad(format!(
                "the ring would exceed {MAX_DATA_LEN} bytes (elements of {elem} bytes)"
            ))
        })?;
    if (bytes as u128) * 2 + (1u128 << 20) > isize::MAX as u128 {
        return Err(bad("the ring does not fit in this address space".into()));
    }
    Ok((bytes / elem, bytes))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: u64, b: u64) -> Option<u64> {
    (a / gcd(a, b)).checked_mul(b)
}

/// A raw byte pointer into the data region, with its AtomicU32 waiting word, for the bells.
pub(crate) fn waiting_word(h: &Header, waiter: End) -> &AtomicU32 {
    match waiter {
        End::Reader => &h.data_waiting.0,
        End::Writer => &h.room_waiting.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("imu").is_ok());
        assert!(validate_name("a.b-c_9").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(".hidden").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
    }

    #[test]
    fn geometry_rounds_to_pages_and_elements() {
        assert_eq!(ring_geometry("t", 1, 4, 4096).unwrap(), (1024, 4096));
        assert_eq!(ring_geometry("t", 1025, 4, 4096).unwrap(), (2048, 8192));
        // 24-byte elements: lcm(4096, 24) = 12288.
        assert_eq!(ring_geometry("t", 1, 24, 4096).unwrap(), (512, 12288));
        assert!(ring_geometry("t", 0, 4, 4096).is_err());
        assert!(ring_geometry("t", usize::MAX, 4, 4096).is_err());
        assert!(ring_geometry("t", (1 << 40) / 4 + 1, 4, 4096).is_err());
    }

    #[test]
    fn dir_modes() {
        assert_eq!(dir_mode(0o600), 0o700);
        assert_eq!(dir_mode(0o660), 0o770);
        assert_eq!(dir_mode(0o644), 0o755);
    }
}
