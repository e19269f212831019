//! Reading a channel's files: its directory, the header of its segment, its doorbells; and
//! the one classifier of failed system calls on them.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::names::{tmp_path, RING_FILE};
use super::Layout;
use crate::error::{Context, Error, ErrorKind};
use crate::header::{self, Descr, Invalid, Snapshot, HEADER_SIZE, SCHEMA_MAX};

/// An [`ErrorKind::Io`] of channel `name` for a failed `op` (for `map_err`).
pub(super) fn io_err<'a>(name: &'a str, op: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::io(name, op, source)
}

/// [`io_err`] for rustix's errors.
pub(super) fn errno_err<'a>(name: &'a str, op: &'static str) -> impl FnOnce(Errno) -> Error + 'a {
    move |e| io_err(name, op)(e.into())
}

/// What a failed call on one of channel `name`'s files (in directory `dir`; `file` in it, or
/// the directory itself) means to the caller: no permission, files that are not a channel's
/// (a symlink, a directory or a device where a file belongs), or an I/O error of `op`. The
/// meaning of `ENOENT` depends on the call (a channel that does not exist, one being
/// removed, a foreign directory), so callers decide it before they come here.
pub(super) fn classify(
    name: &str,
    dir: &Path,
    file: Option<&str>,
    op: &'static str,
    e: Errno,
) -> Error {
    match e {
        Errno::ACCESS | Errno::PERM => Error::at(
            ErrorKind::PermissionDenied,
            name,
            file.map_or_else(|| dir.to_path_buf(), |f| dir.join(f)),
        ),
        Errno::NOTDIR | Errno::LOOP | Errno::ISDIR | Errno::NXIO => foreign(name, dir),
        e => errno_err(name, op)(e),
    }
}

/// [`ErrorKind::NotAChannel`] for channel `name` in `dir`.
pub(super) fn foreign(name: &str, dir: &Path) -> Error {
    Error::at(ErrorKind::NotAChannel, name, dir)
}

/// Reads the identity fields of `file` (no mapping yet), its element description, and the
/// file's size.
pub(super) fn read_snapshot(
    file: &OwnedFd,
    name: &str,
    path: &Path,
) -> Result<(Snapshot, u64), Error> {
    let (buf, size) = read_header(file, name, path)?;
    let mut snap = Snapshot::parse(&buf);
    read_descr(file, name, &mut snap, size)?;
    Ok((snap, size))
}

/// Reads the element description that `snap`'s `descr_len` announces, if it is within
/// bounds (at most `DESCR_MAX` bytes, inside the file's `size`); `Snapshot::validate` refuses
/// a header whose description was not read in full.
pub(super) fn read_descr(
    file: &OwnedFd,
    name: &str,
    snap: &mut Snapshot,
    size: u64,
) -> Result<(), Error> {
    let Some((offset, len)) = snap.wants_descr(size) else {
        return Ok(());
    };
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match rustix::io::pread(file, &mut buf[got..], offset + got as u64) {
            Ok(0) => break, // cut short under us: validate says so
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(errno_err(name, "reading the element description")(e)),
        }
    }
    buf.truncate(got);
    snap.descr = buf;
    Ok(())
}

/// Reads the header bytes of `file` with pread, and the file's size.
pub(super) fn read_header(
    file: &OwnedFd,
    name: &str,
    path: &Path,
) -> Result<([u8; HEADER_SIZE], u64), Error> {
    let st = rustix::fs::fstat(file).map_err(errno_err(name, "fstat"))?;
    let size = st.st_size as u64;
    let too_small = |size| {
        Error::new(ErrorKind::TooSmall, name).with_context(Context::TooSmall {
            path: path.to_path_buf(),
            size,
            needed: HEADER_SIZE as u64,
        })
    };
    if size < HEADER_SIZE as u64 {
        if size == 0 {
            return Err(Error::new(ErrorKind::NotInitialized, name));
        }
        return Err(too_small(size));
    }
    let mut buf = [0u8; HEADER_SIZE];
    let mut got = 0;
    while got < HEADER_SIZE {
        match rustix::io::pread(file, &mut buf[got..], got as u64) {
            Ok(0) => return Err(too_small(got as u64)),
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(errno_err(name, "reading the header")(e)),
        }
    }
    Ok((buf, size))
}

/// The error for a header that failed validation.
pub(super) fn invalid_to_error(inv: Invalid, name: &str, path: &Path) -> Error {
    let version = |kind, found, supported| {
        Error::new(kind, name).with_context(Context::Version { found, supported })
    };
    match inv {
        Invalid::Uninitialised => Error::new(ErrorKind::NotInitialized, name),
        Invalid::Foreign => foreign(name, path),
        Invalid::Version(found) => version(ErrorKind::VersionMismatch, found, header::VERSION),
        Invalid::Abi(found) => version(ErrorKind::AbiMismatch, found, header::abi_word()),
        Invalid::Field(field, detail) => Error::corrupted(name, field, detail),
    }
}

/// Opens a doorbell FIFO through the channel's directory. Checks the type *before* opening
/// (opening a device node read-write could have effects) and again after.
pub(super) fn open_bell(dir: &OwnedFd, which: &str) -> io::Result<OwnedFd> {
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

/// Opens a directory (no symlinks), for use with the `*at` calls.
pub(super) fn open_dir(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens a channel's directory (no symlinks: another user could otherwise point us at their
/// files), mapping the errors of a missing, foreign or forbidden name.
pub(super) fn open_channel_dir(name: &str, dir_path: &Path) -> Result<OwnedFd, Error> {
    open_dir(dir_path).map_err(|e| match e {
        Errno::NOENT => Error::at(ErrorKind::NotFound, name, dir_path),
        e => classify(name, dir_path, None, "opening the channel directory", e),
    })
}

/// Unpublishes a channel directory atomically (rename to a temporary name), then deletes it.
/// With `only`, deletes it only if its `ring` is that very file; otherwise (the name was
/// removed and re-created meanwhile) puts it back.
pub(super) fn remove_dir_if(dir: &Path, only: Option<&OwnedFd>) -> io::Result<()> {
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

/// Checks that shmchan can carry elements of `layout`.
pub(super) fn check_layout(name: &str, layout: &Layout, page: u64) -> Result<(), Error> {
    let unsupported = |reason| {
        Error::invalid(
            ErrorKind::UnsupportedElement,
            name,
            layout.type_name,
            reason,
        )
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

/// `layout` with its element description: a primitive's own (a description given for it
/// must be that one), or for a record the one given, if any, which must describe
/// `layout.size` bytes.
pub(crate) fn describe(
    name: &str,
    mut layout: Layout,
    given: Option<&str>,
) -> Result<Layout, Error> {
    let bad =
        |text: &str, reason: String| Error::invalid(ErrorKind::InvalidDescr, name, text, reason);
    let given = match given {
        Some(text) => Some(Descr::parse(text).map_err(|e| bad(text, e.to_string()))?),
        None => None,
    };
    if layout.message {
        if let Some(d) = given {
            return Err(bad(
                d.as_str(),
                "a message channel's messages are bytes: it has no element description".into(),
            ));
        }
        return Ok(layout);
    }
    layout.descr = match (layout.kind, given) {
        (Some(p), None) => Some(Descr::primitive(p)),
        (Some(p), Some(d)) => {
            let own = Descr::primitive(p);
            if d != own {
                return Err(bad(d.as_str(), format!("{p} is described as {own}")));
            }
            Some(own)
        }
        (None, Some(d)) if d.size() != layout.size => {
            return Err(bad(
                d.as_str(),
                format!(
                    "it describes {} bytes, but the element type {} has {}",
                    d.size(),
                    layout.type_name,
                    layout.size
                ),
            ))
        }
        (None, d) => d,
    };
    Ok(layout)
}

/// Checks a schema tag.
pub(super) fn check_schema(name: &str, schema: &str) -> Result<(), Error> {
    let bad = |reason| Error::invalid(ErrorKind::InvalidSchema, name, schema, reason);
    if schema.len() > SCHEMA_MAX {
        return Err(bad("longer than 48 bytes"));
    }
    if schema.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    Ok(())
}
