//! Channel names and where their files live.
//!
//! A channel named `NAME` is the directory `$SHMCHAN_DIR/shmchan.NAME` (default `/dev/shm`),
//! holding the segment [`RING_FILE`] and the doorbells [`DATA_BELL`] and [`ROOM_BELL`].
//! Directories being built or removed carry [`TMP_PREFIX`] instead.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::Mode;

use crate::error::{Error, ErrorKind};

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

/// The segment file in a channel's directory.
pub(crate) const RING_FILE: &str = "ring";
/// The doorbell the reader sleeps on (rung when items arrive).
pub(crate) const DATA_BELL: &str = "data.bell";
/// The doorbell the writer sleeps on (rung when room frees up).
pub(crate) const ROOM_BELL: &str = "room.bell";

/// Checks a channel name: 1 to [`NAME_MAX`] characters from `A-Z a-z 0-9 _ . -`, not starting
/// with `.` or `-`.
///
/// # Errors
///
/// A short reason, as an [`ErrorKind::InvalidName`] error says it.
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

/// [`validate_name`], as an [`Error`].
pub(super) fn check_name(name: &str) -> Result<(), Error> {
    validate_name(name).map_err(|reason| Error::invalid(ErrorKind::InvalidName, name, name, reason))
}

/// A unique temporary name in the base directory.
pub(super) fn tmp_path(base: &Path, name: &str) -> PathBuf {
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

/// The permission bits of `mode`, as rustix takes them.
pub(super) fn mode_of(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode & 0o777)
}

/// The directory mode for a file mode: each class that may read or write gets search (x).
pub(super) fn dir_mode(mode: u32) -> u32 {
    let m = mode & 0o666;
    let mut d = m | 0o700;
    for shift in [0, 3] {
        if (m >> shift) & 0o6 != 0 {
            d |= 1 << shift;
        }
    }
    d
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
    fn dir_modes() {
        assert_eq!(dir_mode(0o600), 0o700);
        assert_eq!(dir_mode(0o660), 0o770);
        assert_eq!(dir_mode(0o644), 0o755);
    }
}
