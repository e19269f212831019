//! The start record of `--resume`: where in its channel's stream a file starts.
//!
//! A channel counts its items from its creation: `tail` items committed, `head` consumed.
//! `recv FILE` records the `head` at which FILE's first byte was consumed, so that FILE
//! always holds items `start..head` (a few more while a write is being consumed: see
//! `recv`). A restarted `recv FILE --resume` truncates FILE to `(head − start) × size`
//! bytes, which drops whatever the dead one wrote but did not consume, and appends.
//! `send FILE` records the `tail` at which FILE's first byte was committed when that is not
//! 0 (0 is what a missing record means); `send FILE --resume` reads on from
//! `(tail − start) × size`.
//!
//! The record is a line `shmchan-start 1 NAME CREATED_NS CREATOR_PID START`, naming the
//! channel (a channel created anew under the same name is another one). It is kept in an
//! extended attribute of the file (`user.shmchan.start` for recv's output,
//! `user.shmchan.send-start` for send's input) where the file system allows, else in a file
//! next to it: `FILE.shmchan-start` / `FILE.shmchan-send-start`, replaced atomically.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use shmchan::ChannelInfo;

use crate::fail::Fail;

/// Which command's record: they differ in where it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// `recv`'s output file.
    Recv,
    /// `send`'s input file.
    Send,
}

impl Role {
    fn xattr(self) -> &'static CStr {
        match self {
            Role::Recv => c"user.shmchan.start",
            Role::Send => c"user.shmchan.send-start",
        }
    }

    fn sidecar(self, path: &Path) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(match self {
            Role::Recv => ".shmchan-start",
            Role::Send => ".shmchan-send-start",
        });
        PathBuf::from(s)
    }
}

/// A channel's identity: its name and its creation (a channel removed and created again
/// under the same name is another stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ident {
    pub(crate) name: String,
    created_ns: u64,
    creator_pid: u32,
}

impl Ident {
    pub(crate) fn of(i: &ChannelInfo) -> Ident {
        Ident {
            name: i.name.clone(),
            created_ns: i.created_unix_ns,
            creator_pid: i.creator_pid,
        }
    }
}

/// A record as read back: whose stream, and the position at which the file starts.
#[derive(Debug)]
pub(crate) struct Start {
    pub(crate) ident: Ident,
    pub(crate) start: u64,
}

const TAG: &str = "shmchan-start 1";

/// Records that `file` (at `path`) starts at item `start` of `ident`'s stream: in the
/// extended attribute if the file system takes it, else in the file beside it.
pub(crate) fn write(
    role: Role,
    file: &File,
    path: &Path,
    ident: &Ident,
    start: u64,
) -> Result<(), Fail> {
    let line = format!(
        "{TAG} {} {} {} {start}\n",
        ident.name, ident.created_ns, ident.creator_pid
    );
    let set = rustix::fs::fsetxattr(
        file,
        role.xattr(),
        line.as_bytes(),
        rustix::fs::XattrFlags::empty(),
    );
    let Err(xattr_err) = set.map_err(io::Error::from) else {
        return Ok(());
    };
    let side = role.sidecar(path);
    let mut tmp = side.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &line)
        .and_then(|()| std::fs::rename(&tmp, &side))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Fail::channel(format!(
                "cannot record where {} starts (for --resume): extended attribute: {xattr_err}; \
                 {}: {e}",
                path.display(),
                side.display()
            ))
        })
}

/// The record of `file` (at `path`), if there is one.
pub(crate) fn read(role: Role, file: &File, path: &Path) -> Result<Option<Start>, Fail> {
    let mut buf = [0u8; 256];
    let n = rustix::fs::fgetxattr(file, role.xattr(), &mut buf[..]);
    let text = if let Ok(n) = n {
        String::from_utf8_lossy(&buf[..n]).into_owned()
    } else {
        let side = role.sidecar(path);
        match std::fs::read_to_string(&side) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Fail::channel(format!(
                    "cannot read {}: {e}",
                    side.display()
                )))
            }
        }
    };
    parse(&text).map(Some).ok_or_else(|| {
        Fail::channel(format!(
            "the start record of {} is malformed: \"{}\"",
            path.display(),
            text.trim_end()
        ))
    })
}

fn parse(text: &str) -> Option<Start> {
    let rest = text.trim_end().strip_prefix(TAG)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let [name, created, pid, start] = f[..] else {
        return None;
    };
    Some(Start {
        ident: Ident {
            name: name.to_string(),
            created_ns: created.parse().ok()?,
            creator_pid: pid.parse().ok()?,
        },
        start: start.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes() {
        let s = parse("shmchan-start 1 feed 123 45 678\n").unwrap();
        assert_eq!(s.ident.name, "feed");
        assert_eq!((s.ident.created_ns, s.ident.creator_pid), (123, 45));
        assert_eq!(s.start, 678);
        assert!(parse("shmchan-start 1 feed 123 45").is_none());
        assert!(parse("shmchan-start 2 feed 1 2 3").is_none());
        assert!(parse("shmchan-start 1 feed x 2 3").is_none());
    }
}
