//! The OFD locks of a channel's segment file.
//!
//! Each open handle (one open file description of `ring`) holds a shared lock on byte
//! [`PRESENCE`]; each claimed end holds an exclusive lock on its own byte ([`end_byte`]). The
//! kernel drops OFD locks when their holder's last descriptor closes, so a process killed with
//! SIGKILL frees its end at once, with no pid check (no pid-reuse race, works across pid
//! namespaces).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::header::End;

/// Lock byte held shared by every open handle.
pub(crate) const PRESENCE: i64 = 0;

/// The lock byte of an end.
pub(crate) fn end_byte(end: End) -> i64 {
    1 + end.index() as i64
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
