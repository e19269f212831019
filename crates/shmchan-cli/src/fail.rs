//! How a command fails: [`Fail`], one line for stderr and the exit status, and the
//! conversion from the library's error, which adds the command's own hints.

use std::fmt::Display;

use shmchan::{Context, ErrorKind};

/// How a command failed: the message (one line) and the exit status.
pub(crate) struct Fail {
    /// The exit status: 1 for a channel error, 2 for a usage error, 0 for an end that is no
    /// failure (the reader of our output went away).
    pub(crate) code: u8,
    /// What `main` prints after `shmchan: ` (nothing if empty).
    pub(crate) msg: String,
}

impl Fail {
    /// A channel error (exit 1).
    pub(crate) fn channel(msg: impl Display) -> Fail {
        Fail {
            code: 1,
            msg: msg.to_string(),
        }
    }
    /// What the user typed is wrong (exit 2).
    pub(crate) fn usage(msg: impl Display) -> Fail {
        Fail {
            code: 2,
            msg: msg.to_string(),
        }
    }
    /// A quiet end, exit 0: the reading side of our output went away (`| head`).
    pub(crate) fn quiet() -> Fail {
        Fail {
            code: 0,
            msg: String::new(),
        }
    }
}

/// What the command suggests for an error of `kind` on channel `name` (empty: nothing).
/// The library's texts name no command; the command adds its own.
pub(crate) fn hint(kind: ErrorKind, name: &str) -> String {
    match kind {
        ErrorKind::AlreadyExists | ErrorKind::NotAChannel | ErrorKind::NotInitialized => {
            format!(" (`shmchan rm {name}`)")
        }
        ErrorKind::MembarrierUnavailable => " (`shmchan create --barrier fence`)".to_string(),
        ErrorKind::CapacityMismatch => {
            format!(" (drop --capacity to use it as it is, or `shmchan rm {name}`)")
        }
        ErrorKind::ForeignOwner => " (to share it on purpose: --any-owner)".to_string(),
        ErrorKind::PermissionDenied => " (create it with a wider --mode, e.g. 0660)".to_string(),
        _ => String::new(),
    }
}

/// The library's message of `e`, with the values it quotes as Rust's `{:?}` (a name, a schema
/// tag, an invalid value) put back as they are between plain quotes: `{:?}` escapes them
/// already, and `main` escapes the whole message, which would show an escape doubled
/// (`\\u{1b}`). So every text in a message is escaped once, as `inspect` shows it.
fn unquoted(e: &shmchan::Error) -> String {
    let mut values = vec![e.channel()];
    match e.context() {
        Context::Invalid { value, .. } => values.push(value),
        Context::Schema { expected, found } => {
            values.extend(expected.iter().chain(found).map(String::as_str));
        }
        _ => {}
    }
    values.into_iter().fold(e.to_string(), |msg, v| {
        let (debug, plain) = (format!("{v:?}"), format!("\"{v}\""));
        if debug == plain {
            msg
        } else {
            msg.replace(&debug, &plain)
        }
    })
}

impl From<shmchan::Error> for Fail {
    fn from(e: shmchan::Error) -> Fail {
        let msg = format!("{}{}", unquoted(&e), hint(e.kind(), e.channel()));
        match e.kind() {
            // What the user typed is wrong, not the channel.
            ErrorKind::InvalidName | ErrorKind::InvalidCapacity | ErrorKind::InvalidSchema => {
                Fail::usage(msg)
            }
            _ => Fail::channel(msg),
        }
    }
}
