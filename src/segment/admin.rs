//! The tools layer: inspecting, listing and removing channels from outside, without opening
//! them for use. The only place that builds [`ChannelInfo`].
//!
//! Nothing here maps a segment: headers are read with `pread` and validated like `open`
//! does, so a corrupt or hostile file gives an error, never a crash.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::files::{
    classify, errno_err, foreign, invalid_to_error, open_channel_dir, read_descr, read_header,
    remove_dir_if,
};
use super::info::{ChannelInfo, EndInfo};
use super::lock::{end_byte, ofd_lock, ofd_lock_held, PRESENCE};
use super::mapping::page_size;
use super::names::{
    base_dir, channel_dir, check_name, validate_name, DIR_PREFIX, RING_FILE, TMP_PREFIX,
};
use crate::barrier::Barrier;
use crate::error::{Context, Error, ErrorKind};
use crate::header::{self, End, Header, Snapshot, FLAG_MEMBARRIER, FLAG_PERSIST, OPEN};

/// Opens channel `name`'s directory and segment file for inspection or removal: no owner
/// check, no lock, nothing mapped. The segment's type is checked before it is opened.
fn open_for_inspection(name: &str) -> Result<(PathBuf, OwnedFd), Error> {
    check_name(name)?;
    let dir_path = channel_dir(name);
    let dir = open_channel_dir(name, &dir_path)?;
    match rustix::fs::statat(&dir, RING_FILE, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::RegularFile => {}
        Ok(_) | Err(Errno::NOENT) => return Err(foreign(name, &dir_path)),
        Err(e) => {
            return Err(classify(
                name,
                &dir_path,
                Some(RING_FILE),
                "stat of the segment",
                e,
            ))
        }
    }
    let file = rustix::fs::openat(
        &dir,
        RING_FILE,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => foreign(name, &dir_path),
        e => classify(name, &dir_path, Some(RING_FILE), "opening the segment", e),
    })?;
    Ok((dir_path, file))
}

/// Reads one aligned u64 of the header with its own pread.
fn pread_u64(file: &OwnedFd, offset: usize) -> Option<u64> {
    let mut b = [0u8; 8];
    matches!(rustix::io::pread(file, &mut b, offset as u64), Ok(8)).then(|| u64::from_ne_bytes(b))
}

/// Reads `head` and `tail` of a segment whose ends may be working: head before tail (the
/// reader's head only ever moves up to a tail already published), each with its own pread,
/// retrying a torn or raced pair. `seen`: the pair as first read (for the error).
fn read_indices(
    file: &OwnedFd,
    name: &str,
    capacity: u64,
    seen: (u64, u64),
) -> Result<(u64, u64), Error> {
    let (mut head, mut tail) = seen;
    for _ in 0..16 {
        let h = pread_u64(file, std::mem::offset_of!(Header, head));
        let t = pread_u64(file, std::mem::offset_of!(Header, tail));
        if let (Some(h), Some(t)) = (h, t) {
            (head, tail) = (h, t);
            if h <= t && t - h <= capacity {
                return Ok((h, t));
            }
        }
    }
    Err(Error::corrupted(
        name,
        "head/tail",
        format!("head {head}, tail {tail}: not within one capacity ({capacity})"),
    ))
}

/// The most bytes of a message channel's ring [`count_messages`] reads.
const COUNT_BYTES_MAX: u64 = 64 << 20;

/// The whole messages in words `head..tail` of a message channel's ring (the data region
/// starts at `header_len`; word `i` lies at `i % capacity`), counted by walking their length
/// words as read with two preads. `None` if that is more than [`COUNT_BYTES_MAX`] bytes, a
/// read falls short, the reader's head moved while they were read (the writer may then have
/// written over them), or a length word runs past `tail` (a corrupt writer). A snapshot,
/// like every count of [`ChannelInfo`].
fn count_messages(
    file: &OwnedFd,
    header_len: u64,
    capacity: u64,
    head: u64,
    tail: u64,
) -> Option<u64> {
    let n = tail.checked_sub(head).filter(|n| *n <= capacity)?;
    if n.checked_mul(8)? > COUNT_BYTES_MAX || capacity == 0 {
        return None;
    }
    let mut words = vec![0u64; n as usize];
    // The words up to the end of the ring, then those from its start.
    let at = head % capacity;
    let first = n.min(capacity - at) as usize;
    let (a, b) = words.split_at_mut(first);
    for (part, from) in [(a, at), (b, 0)] {
        let bytes = bytemuck::cast_slice_mut::<u64, u8>(part);
        if bytes.is_empty() {
            continue;
        }
        let got = rustix::io::pread(file, &mut *bytes, header_len + from * 8).ok()?;
        if got != bytes.len() {
            return None;
        }
    }
    // The reader consumed while we read (and the writer may have written over what we
    // read): the words are not those of `head..tail`. An unmoved head means they are: an
    // honest writer writes only below the reader's head plus the capacity.
    if pread_u64(file, std::mem::offset_of!(Header, head)) != Some(head) {
        return None;
    }
    let (mut i, mut count) = (0u64, 0u64);
    while i < n {
        let len = words[i as usize];
        // The words this message takes, if they are all before `tail`.
        let w = len
            .checked_add(7)
            .map(|l| l / 8 + 1)
            .filter(|w| *w <= n - i)?;
        i += w;
        count += 1;
    }
    Some(count)
}

/// Reads and validates the header of an open segment file. `exclusive`: the caller holds
/// the presence lock exclusively (so nobody else has the channel open).
fn inspect_file(
    name: &str,
    dir_path: PathBuf,
    file: &OwnedFd,
    exclusive: bool,
) -> Result<ChannelInfo, Error> {
    let path = dir_path.join(RING_FILE);
    let st = rustix::fs::fstat(file).map_err(errno_err(name, "fstat"))?;
    let (buf, size) = read_header(file, name, &path)?;
    let mut snap = Snapshot::parse(&buf);
    read_descr(file, name, &mut snap, size)?;
    snap.validate(page_size(), size)
        .map_err(|inv| invalid_to_error(inv, name, &path))?;
    let mut dynamic = header::Dynamic::parse(&buf);
    (dynamic.head, dynamic.tail) =
        read_indices(file, name, snap.capacity, (dynamic.head, dynamic.tail))?;
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
    let reason = std::mem::take(&mut dynamic.reason);
    let writer_state = header::writer_state(dynamic.writer_state, || reason)
        .map_err(|detail| Error::corrupted(name, "writer_state", detail))?;
    Ok(ChannelInfo {
        name: name.to_string(),
        dir: dir_path,
        owner_uid: st.st_uid,
        mode: st.st_mode & 0o777,
        version: snap.version,
        elem_size: snap.elem_size,
        elem_align: snap.elem_align,
        elem_type: header::Primitive::from_code(snap.elem_kind),
        messages: snap.elem_kind == header::MESSAGE_KIND,
        message_count: (snap.elem_kind == header::MESSAGE_KIND)
            .then(|| {
                count_messages(
                    file,
                    u64::from(snap.header_len),
                    snap.capacity,
                    dynamic.head,
                    dynamic.tail,
                )
            })
            .flatten(),
        descr: snap.descr_str(),
        schema: snap.schema_str(),
        capacity: snap.capacity,
        header_len: snap.header_len,
        data_len: snap.data_len,
        persist: snap.flags & FLAG_PERSIST != 0,
        barrier: if snap.flags & FLAG_MEMBARRIER != 0 {
            Barrier::Membarrier
        } else {
            Barrier::Fence
        },
        creator_pid: snap.creator_pid,
        created_unix_ns: snap.created_unix_ns,
        origin: crate::Origin::from_words(snap.origin_stream, snap.origin_first),
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
pub(crate) fn inspect(name: &str) -> Result<ChannelInfo, Error> {
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
    decide: impl FnOnce(Result<&ChannelInfo, &Error>) -> bool,
) -> Result<Removal, Error> {
    remove_unused_seen(name, decide).map(|(removal, _)| removal)
}

/// What [`remove_unused_seen`] decided on: the header as read under the channel's lock, or
/// why the files under the name are not a readable channel; `None` if it never came to a
/// decision (no such channel, or one a process has open).
pub(super) type Seen = Option<Result<ChannelInfo, Error>>;

/// [`remove_unused`], also handing back what `decide` was given.
pub(super) fn remove_unused_seen(
    name: &str,
    decide: impl FnOnce(Result<&ChannelInfo, &Error>) -> bool,
) -> Result<(Removal, Seen), Error> {
    check_name(name)?;
    let io = |source: io::Error| removing(name, channel_dir(name), source);
    let (dir_path, file) = match open_for_inspection(name) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((Removal::NotFound, None)),
        Err(e) => {
            // No segment file to lock (a plain file, a directory without a ring...).
            let removal = if decide(Err(&e)) {
                match remove(name) {
                    Ok(()) => Removal::Removed,
                    Err(e) if e.kind() == ErrorKind::NotFound => Removal::NotFound,
                    Err(e) => return Err(e),
                }
            } else {
                Removal::Kept
            };
            return Ok((removal, Some(Err(e))));
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
        Ok(_) => return Ok((Removal::NotFound, None)), // replaced meanwhile: look again later
        Err(Errno::NOENT) => return Ok((Removal::NotFound, None)),
        Err(e) => return Err(io(e.into())),
    };
    match ofd_lock(file.as_fd(), PRESENCE, libc::F_WRLCK, false) {
        Ok(true) => {}
        Ok(false) => return Ok((Removal::InUse, None)),
        Err(e) => return Err(io(e)),
    }
    let st = rustix::fs::fstat(&file).map_err(|e| io(e.into()))?;
    if st.st_nlink == 0 {
        return Ok((Removal::NotFound, None));
    }
    let info = inspect_file(name, dir_path.clone(), &file, true);
    if !decide(info.as_ref()) {
        return Ok((Removal::Kept, Some(info)));
    }
    match remove_dir_if(&dir_path, Some(&file)) {
        Ok(()) => Ok((Removal::Removed, Some(info))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Removal::NotFound, Some(info))),
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
pub(crate) fn remove(name: &str) -> Result<(), Error> {
    check_name(name)?;
    let dir = channel_dir(name);
    let meta = fs::symlink_metadata(&dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::at(ErrorKind::NotFound, name, &dir)
        } else {
            removing(name, dir.clone(), e)
        }
    })?;
    let r = if meta.is_dir() {
        remove_dir_if(&dir, None)
    } else {
        fs::remove_file(&dir)
    };
    r.map_err(|e| removing(name, dir, e))
}

/// Removing `path` of channel `name` failed with `source`.
pub(super) fn removing(name: &str, path: PathBuf, source: io::Error) -> Error {
    Error::new(ErrorKind::Io, name)
        .with_context(Context::Op {
            op: "removing",
            path: Some(path),
        })
        .with_source(source)
}
