//! One module per subcommand, each with its `run`; [`stream`] holds what `send` and `recv`
//! share (opening or creating the channel, the progress bar); [`pieces`] how `recv` writes
//! and consumes; [`record`] where a file starts in its channel's stream, for `--resume`;
//! [`numbers`] the elements' text form, the only code that knows each primitive's Rust
//! type (the channels themselves are [`RawChannel`](shmchan::RawChannel)s).

use shmchan::{ChannelInfo, ChannelIo, Error};

use crate::fail::Fail;

pub(crate) mod create;
pub(crate) mod gc;
pub(crate) mod inspect;
mod lines;
pub(crate) mod ls;
mod numbers;
mod pieces;
mod record;
pub(crate) mod recv;
pub(crate) mod rm;
pub(crate) mod send;
mod stream;

/// The hints of a stream that stopped short and can be resumed.
pub(crate) struct Resume;

impl Resume {
    /// How to go on reading into `file` (or stdout).
    pub(crate) fn recv(name: &str, file: Option<&std::path::Path>) -> String {
        match file {
            Some(f) => format!(
                "the channel is left as it is: `shmchan recv {name} {} --resume` continues",
                f.display()
            ),
            None => format!("the channel is left as it is: `shmchan recv {name}` continues"),
        }
    }

    /// How to go on sending `file` (stdin cannot resume).
    pub(crate) fn send(name: &str, file: Option<&std::path::Path>) -> String {
        match file {
            Some(f) => format!(
                "the channel is left as it is: `shmchan send {name} {} --resume` continues",
                f.display()
            ),
            None => "the channel is left as it is (a stream from stdin cannot resume)".to_string(),
        }
    }

    /// The writer went away: both ends are to be restarted.
    /// For a channel fed by a bridge: the bridge carries the stream on once its push (and
    /// the writer behind it) are back.
    pub(crate) fn bridged(name: &str, file: Option<&std::path::Path>) -> String {
        format!(
            "the channel is left as it is: once the bridge's push, and the writer behind it, \
             are running again, {} continues",
            match file {
                Some(f) => format!("`shmchan recv {name} {} --resume`", f.display()),
                None => format!("`shmchan recv {name}`"),
            }
        )
    }

    pub(crate) fn both(name: &str, file: Option<&std::path::Path>) -> String {
        format!(
            "the channel is left as it is: restart `shmchan send {name} FILE --resume`, then {}",
            match file {
                Some(f) => format!("`shmchan recv {name} {} --resume`", f.display()),
                None => format!("`shmchan recv {name}`"),
            }
        )
    }
}

/// A channel's name, and its header or why that could not be read.
type Listed = (String, Result<ChannelInfo, Error>);

/// Every channel (as `ChannelIo::list`); a directory that cannot be read fails the command.
fn list() -> Result<Vec<Listed>, Fail> {
    ChannelIo::list().map_err(|e| {
        Fail::channel(format!(
            "cannot read {}: {e}",
            shmchan::base_dir().display()
        ))
    })
}
