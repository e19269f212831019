//! How a command fails: [`Fail`], one line for stderr and the exit status, and the
//! conversions from the library's errors, which add the command's own hints.

use std::fmt::Display;

use shmchan::{ClaimError, GetError, OpenError, PutError};

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

macro_rules! from_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Fail {
            fn from(e: $t) -> Fail {
                Fail::channel(e)
            }
        }
    )*};
}
from_error!(ClaimError, PutError, GetError);

impl From<OpenError> for Fail {
    fn from(e: OpenError) -> Fail {
        // What the user typed is wrong (exit 2), not the channel.
        let usage = matches!(
            e,
            OpenError::InvalidName { .. }
                | OpenError::InvalidCapacity { .. }
                | OpenError::InvalidSchema { .. }
        );
        // The library's texts name no command; the command adds its own hints.
        let hint = match &e {
            OpenError::AlreadyExists { name, .. }
            | OpenError::Foreign { name, .. }
            | OpenError::NotInitialized { name } => format!(" (`shmchan rm {name}`)"),
            OpenError::MembarrierUnavailable { .. } => {
                " (`shmchan create --barrier fence`)".to_string()
            }
            _ => String::new(),
        };
        let msg = format!("{e}{hint}");
        if usage {
            Fail::usage(msg)
        } else {
            Fail::channel(msg)
        }
    }
}

impl From<shmchan::RemoveError> for Fail {
    fn from(e: shmchan::RemoveError) -> Fail {
        match e {
            shmchan::RemoveError::InvalidName { .. } => Fail::usage(e),
            e => Fail::channel(e),
        }
    }
}
