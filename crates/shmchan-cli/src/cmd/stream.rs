//! What `send` and `recv` share: the channel they name, opened or created ([`Target`]), and
//! the progress bar.

use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shmchan::{
    ChannelInfo, ChannelIo, ElementType, ErrorKind, MessageChannel, Options, Primitive, RawChannel,
};

use crate::cli::{BarrierArg, StreamArgs};
use crate::fail::Fail;

/// Default ring for `send`/`recv` when they create the channel: 16 MiB.
const DEFAULT_RING_BYTES: usize = 16 << 20;

/// What `send`/`recv` need to open or create a channel.
pub(crate) struct Target<'a> {
    pub(crate) name: &'a str,
    ty: Option<Primitive>,
    capacity: Option<usize>,
    schema: Option<&'a str>,
    any_owner: bool,
    barrier: BarrierArg,
}

impl<'a> Target<'a> {
    pub(crate) fn of(s: &'a StreamArgs) -> Target<'a> {
        Target {
            name: &s.name,
            ty: s.ty,
            capacity: s.capacity,
            schema: s.schema.as_deref(),
            any_owner: s.any_owner,
            barrier: s.barrier,
        }
    }
}

/// What [`Target::resolve`] found: the element type and the schema tag to open the channel
/// with, and whether it exists.
pub(crate) struct Found {
    pub(crate) ty: Primitive,
    schema: Option<String>,
    exists: bool,
}

impl Target<'_> {
    /// The element type to use: the channel's if it exists (checked against --type), else
    /// --type or u8. Also the schema tag to open it with.
    pub(crate) fn resolve(&self) -> Result<Found, Fail> {
        match ChannelIo::inspect(self.name) {
            Ok(info) => {
                if info.messages {
                    return Err(Fail::usage(format!(
                        "channel '{}' carries messages, not numbers: use --format lines",
                        self.name
                    )));
                }
                let Some(found) = info.elem_type else {
                    return Err(Fail::channel(format!(
                        "channel '{}' holds {}-byte elements of an application type; the \
                         command line reads only u8 i8 u16 i16 u32 i32 u64 i64 f32 f64",
                        self.name, info.elem_size
                    )));
                };
                if let Some(t) = self.ty {
                    if t != found {
                        return Err(Fail::channel(format!(
                            "channel '{}' holds {found}, not {t}; drop --type or use --type {found}",
                            self.name
                        )));
                    }
                }
                if let Some(s) = self.schema {
                    if info.schema.as_deref() != Some(s) {
                        return Err(Fail::channel(format!(
                            "channel '{}' has schema tag \"{}\", not \"{s}\"",
                            self.name,
                            info.schema.as_deref().unwrap_or("")
                        )));
                    }
                }
                Ok(Found {
                    ty: found,
                    schema: info.schema,
                    exists: true,
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Found {
                ty: self.ty.unwrap_or(Primitive::U8),
                schema: self.schema.map(str::to_string),
                exists: false,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the channel for elements of the type and with the schema tag that
    /// [`resolve`](Self::resolve) found, creating it if it does not exist; and whether it was
    /// created here. A channel that exists must have the capacity --capacity asks for (as a
    /// create would round it), else the library's `CapacityMismatch`; without --capacity,
    /// any.
    pub(crate) fn open(&self, found: Found) -> Result<(RawChannel, bool), Fail> {
        let Found { ty, schema, exists } = found;
        let size = ty.size() as usize;
        let o = match self.capacity {
            Some(c) => Options::new().capacity(c),
            None => Options::new().capacity_if_created(DEFAULT_RING_BYTES / size),
        };
        let mut o = o
            .accept_other_owner(self.any_owner)
            .barrier(self.barrier.into());
        if let Some(s) = schema {
            o = o.schema(s);
        }
        let elem = ElementType::primitive(ty);
        if !exists {
            // Not there when resolve looked: create it, unless another process just did.
            match RawChannel::create(self.name, elem, o.clone()) {
                Ok(chan) => return Ok((chan, true)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((RawChannel::create_or_open(self.name, elem, o)?, false))
    }
}

impl Target<'_> {
    /// Opens message channel `name`, creating it if it does not exist (for `--format
    /// lines`): --capacity counts bytes of ring there (rounded up to whole pages, 16 MiB if
    /// not given); a channel that exists must have what that makes.
    pub(crate) fn open_messages(&self) -> Result<MessageChannel, Fail> {
        if let Some(t) = self.ty {
            return Err(Fail::usage(format!(
                "--format lines carries messages, not numbers: drop --type {t}"
            )));
        }
        let words = |bytes: usize| bytes.div_ceil(8).max(1);
        let o = match self.capacity {
            Some(c) => Options::new().capacity(words(c)),
            None => Options::new().capacity_if_created(words(DEFAULT_RING_BYTES)),
        };
        let mut o = o
            .accept_other_owner(self.any_owner)
            .barrier(self.barrier.into());
        if let Some(s) = self.schema {
            o = o.schema(s);
        }
        Ok(MessageChannel::create_or_open(self.name, o)?)
    }
}

/// The progress bar on stderr: hidden with --quiet or when stderr is not a terminal; a bar
/// when the total is known, else a spinner.
pub(crate) fn progress(quiet: bool, total: Option<u64>, verb: &str) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} {spinner} {binary_bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(verb.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The peer end as this end found it when it claimed: if it was dead already (claimed
/// before, not held), the first `PeerGone` is about that old death, which the peer's
/// restart is to follow; it is then waited for like a peer that has not come yet.
pub(crate) struct DeadPeer {
    /// The dead peer's claim count at our start, until its death was reported.
    claims: Option<u64>,
    writer: bool,
}

impl DeadPeer {
    /// `peer` of channel `info`: its writer (`writer`) or its reader.
    pub(crate) fn at_start(info: &ChannelInfo, writer: bool) -> DeadPeer {
        let e = if writer { &info.writer } else { &info.reader };
        DeadPeer {
            claims: (e.claims > 0 && !e.held).then_some(e.claims),
            writer,
        }
    }

    /// A `PeerGone` was just reported on `name`: true (once) if it is the death found at
    /// start (no new peer has claimed since), and the stream is to wait for a new peer.
    pub(crate) fn stale(&mut self, name: &str) -> bool {
        let Some(c) = self.claims.take() else {
            return false;
        };
        ChannelIo::inspect(name).is_ok_and(|i| {
            let e = if self.writer { &i.writer } else { &i.reader };
            e.claims == c
        })
    }
}
