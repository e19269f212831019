//! Collecting channels nobody uses: the policy of [`ChannelIo::gc`](crate::ChannelIo::gc)
//! over the tools layer's mechanisms ([`admin`](super::admin): the scan of the base
//! directory, and a removal decided under the channel's lock).
//!
//! A channel goes when no live process has it open, unless something still speaks for it:
//! it belongs to another user, it persists, or its items or its writer's end of stream wait
//! for a reader; files under a channel's name that are not a readable channel stay too.
//! `all` overrides all of these except another user's ownership. The temporary directories
//! of creators and removers that were killed midway go as well.

use std::io;
use std::path::{Path, PathBuf};

use super::admin::{remove_unused_seen, removing, scan};
use super::info::{ChannelInfo, ChannelState};
use super::names::{channel_dir, DIR_PREFIX, TMP_PREFIX};
use super::Removal;
use crate::error::Error;
use crate::header::WriterState;

/// What [`ChannelIo::gc`](crate::ChannelIo::gc) is to do: by default, remove what nothing
/// speaks for.
///
/// ```
/// use shmchan::GcOptions;
/// let everything_but_others = GcOptions::new().all(true);
/// let just_say = GcOptions::new().dry_run(true);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcOptions {
    all: bool,
    dry_run: bool,
}

impl GcOptions {
    /// The default: remove unused channels that nothing speaks for, and leftovers.
    pub fn new() -> GcOptions {
        GcOptions::default()
    }

    /// Remove persistent channels too, channels whose items or end of stream wait for a
    /// reader, and files under a channel's name that are not a readable channel. Another
    /// user's channels are kept all the same, and so is every channel a live process has
    /// open.
    pub fn all(mut self, all: bool) -> GcOptions {
        self.all = all;
        self
    }

    /// Decide, and say what would be removed, without removing anything.
    pub fn dry_run(mut self, dry_run: bool) -> GcOptions {
        self.dry_run = dry_run;
        self
    }
}

/// One channel (or leftover directory) that [`ChannelIo::gc`](crate::ChannelIo::gc) looked
/// at, and what it did with it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Collected {
    /// The channel's name; for a leftover directory, the name of the channel that its
    /// creator was making or its remover removing.
    pub name: String,
    /// The channel's directory, or the leftover directory.
    pub path: PathBuf,
    /// True for a leftover temporary directory, false for a channel.
    pub leftover: bool,
    /// What was done, and why.
    pub action: GcAction,
}

/// What [`ChannelIo::gc`](crate::ChannelIo::gc) did with a channel or leftover directory.
#[derive(Debug)]
#[non_exhaustive]
pub enum GcAction {
    /// Removed.
    Removed(GcReason),
    /// Would be removed: [`GcOptions::dry_run`].
    WouldRemove(GcReason),
    /// Left alone.
    Kept(GcReason),
    /// Removing it failed (the files are left as the failure left them), or what it is
    /// could not be found out.
    Failed(Error),
}

/// Why [`ChannelIo::gc`](crate::ChannelIo::gc) removes or keeps something. The first two
/// are reasons to remove, `Unreadable` is either (kept unless [`GcOptions::all`]), the
/// others are reasons to keep.
#[derive(Debug)]
#[non_exhaustive]
pub enum GcReason {
    /// No live process has the channel open, and nothing speaks for it (or
    /// [`GcOptions::all`] overrode what did); its state, as its header said under the
    /// channel's lock.
    NotInUse(ChannelState),
    /// A temporary directory that a creator or remover killed midway left behind: ours,
    /// older than a minute, and its process is gone.
    Leftover,
    /// The files under the channel's name are not a readable channel: why.
    Unreadable(Error),
    /// A live process has the channel open.
    InUse,
    /// The channel belongs to another user: this uid.
    OtherUser(u32),
    /// The channel persists ([`Options::persist`](crate::Options::persist)).
    Persistent,
    /// Items, or the writer's end of stream (close or abort), wait for a reader; their
    /// writer may have died.
    Undelivered {
        /// Items committed and not yet consumed.
        items: u64,
        /// The writer closed or aborted the stream, and no reader has read that yet.
        end_of_stream: bool,
    },
}

/// The policy for a readable channel that no live process has open, given its header as
/// read under its lock: why it stays, or `None` if it may go. `me` is our effective uid
/// (root's 0 may remove anyone's). (Files that are not a readable channel go only with
/// `all`.)
fn judge(info: &ChannelInfo, all: bool, me: u32) -> Option<GcReason> {
    if info.owner_uid != me && me != 0 {
        Some(GcReason::OtherUser(info.owner_uid))
    } else if info.persist && !all {
        Some(GcReason::Persistent)
    } else if info.has_undelivered() && !all {
        Some(GcReason::Undelivered {
            items: info.len(),
            end_of_stream: info.writer_state != WriterState::Open,
        })
    } else {
        None
    }
}

/// Removes every channel in the base directory that no live process has open and nothing
/// speaks for, and the leftover directories of killed creators and removers; with
/// `dry_run`, only decides. Channels first (sorted by name), then leftovers.
pub(crate) fn gc(options: GcOptions) -> io::Result<Vec<Collected>> {
    let (names, leftovers) = scan()?;
    let me = rustix::process::geteuid().as_raw();
    let mut done: Vec<Collected> = names
        .iter()
        .filter_map(|name| collect(name, options, me))
        .collect();
    done.extend(
        leftovers
            .into_iter()
            .filter_map(|dir| leftover(dir, options.dry_run)),
    );
    Ok(done)
}

/// Judges channel `name` under its lock and removes it if it may go (with `dry_run`, only
/// judges). `None` if there is nothing to say: the channel was removed meanwhile.
fn collect(name: &str, options: GcOptions, me: u32) -> Option<Collected> {
    let mut keep = None;
    let decide = |seen: Result<&ChannelInfo, &Error>| {
        let go = match seen {
            Ok(info) => {
                keep = judge(info, options.all, me);
                keep.is_none()
            }
            Err(_) => options.all,
        };
        go && !options.dry_run
    };
    let action = match remove_unused_seen(name, decide) {
        Err(e) => GcAction::Failed(e),
        Ok((Removal::InUse, _)) => GcAction::Kept(GcReason::InUse),
        Ok((removal @ (Removal::Removed | Removal::Kept), Some(seen))) => {
            let (go, reason) = match (seen, keep) {
                (Err(e), _) => (options.all, GcReason::Unreadable(e)),
                (Ok(_), Some(why)) => (false, why),
                (Ok(info), None) => (true, GcReason::NotInUse(info.state())),
            };
            match removal {
                Removal::Removed => GcAction::Removed(reason),
                _ if go => GcAction::WouldRemove(reason),
                _ => GcAction::Kept(reason),
            }
        }
        // Removed meanwhile (NotFound), or what a later `Removal` may add: nothing to say.
        Ok(_) => return None,
    };
    Some(Collected {
        name: name.to_string(),
        path: channel_dir(name),
        leftover: false,
        action,
    })
}

/// Removes leftover directory `dir` (with `dry_run`, only names it). `None` if it is gone
/// already.
fn leftover(dir: PathBuf, dry_run: bool) -> Option<Collected> {
    let name = leftover_name(&dir);
    let action = if dry_run {
        GcAction::WouldRemove(GcReason::Leftover)
    } else {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => GcAction::Removed(GcReason::Leftover),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => GcAction::Failed(removing(&name, dir.clone(), e)),
        }
    };
    Some(Collected {
        name,
        path: dir,
        leftover: true,
        action,
    })
}

/// The name a temporary directory `.shmchan-tmp.NAME.PID.N.NANOS` was made for.
fn leftover_name(dir: &Path) -> String {
    let file_name = dir.file_name().unwrap_or_default().to_string_lossy();
    let rest = file_name.strip_prefix(TMP_PREFIX).unwrap_or(&file_name);
    // NAME may hold dots: the last three fields are PID, N and NANOS.
    let name = rest.rsplitn(4, '.').nth(3).unwrap_or(rest);
    name.strip_prefix(DIR_PREFIX).unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests;
