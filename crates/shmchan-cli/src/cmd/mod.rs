//! One module per subcommand, each with its `run`; [`stream`] holds what `send` and `recv`
//! share (opening or creating the channel, the progress bar).

/// Runs `$f::<T>($args)` with `T` the Rust type of primitive `$p`.
macro_rules! with_type {
    ($p:expr, $f:ident ( $($a:expr),* )) => {
        match $p {
            shmchan::Primitive::U8 => $f::<u8>($($a),*),
            shmchan::Primitive::I8 => $f::<i8>($($a),*),
            shmchan::Primitive::U16 => $f::<u16>($($a),*),
            shmchan::Primitive::I16 => $f::<i16>($($a),*),
            shmchan::Primitive::U32 => $f::<u32>($($a),*),
            shmchan::Primitive::I32 => $f::<i32>($($a),*),
            shmchan::Primitive::U64 => $f::<u64>($($a),*),
            shmchan::Primitive::I64 => $f::<i64>($($a),*),
            shmchan::Primitive::F32 => $f::<f32>($($a),*),
            shmchan::Primitive::F64 => $f::<f64>($($a),*),
        }
    };
}

use shmchan::{ChannelInfo, ChannelIo, OpenError};

use crate::fail::Fail;

pub(crate) mod create;
pub(crate) mod gc;
pub(crate) mod inspect;
pub(crate) mod ls;
pub(crate) mod recv;
pub(crate) mod rm;
pub(crate) mod send;
mod stream;

/// A channel's name, and its header or why that could not be read.
type Listed = (String, Result<ChannelInfo, OpenError>);

/// Every channel (as `ChannelIo::list`); a directory that cannot be read fails the command.
fn list() -> Result<Vec<Listed>, Fail> {
    ChannelIo::list().map_err(|e| {
        Fail::channel(format!(
            "cannot read {}: {e}",
            shmchan::base_dir().display()
        ))
    })
}
