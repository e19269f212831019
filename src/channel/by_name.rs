//! What `ChannelIo` does with a channel by its name alone, without opening it for use:
//! inspect, list, wait for, remove and collect.

use super::ChannelIo;
use crate::error::Error;
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::segment::{self, ChannelInfo, Collected, GcOptions, Removal};

impl ChannelIo<()> {
    /// Reads channel `name`'s header without opening it for use (no lock, no mapping, no
    /// effect on its cleanup), validates it, and reports it.
    ///
    /// # Errors
    ///
    /// As [`open`](ChannelIo::open) for a missing, foreign, corrupt or unreadable channel
    /// (no element type or owner check).
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options, Primitive};
    /// # let name = format!("doc-inspect-{}", std::process::id());
    /// let chan = ChannelIo::<f32>::create(&name, Options::new().capacity(1024))?;
    /// let mut w = chan.writer()?;
    /// w.blocking_put(&[1.0, 2.0])?;
    /// let info = ChannelIo::inspect(&name)?;
    /// assert_eq!(info.elem_type, Some(Primitive::F32));
    /// assert_eq!((info.capacity, info.len()), (1024, 2));
    /// assert!(info.writer.held && info.in_use);
    /// # drop(w);
    /// # ChannelIo::remove(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inspect(name: &str) -> Result<ChannelInfo, Error> {
        segment::inspect(name)
    }

    /// Waits until channel `name` exists (at once if it does), at most `timeout`: for a
    /// process that may start before the one that creates its channel and needs what only
    /// the channel says (its element type, say) before it can open it. It watches the base
    /// directory with inotify: no polling.
    ///
    /// # Errors
    ///
    /// [`InvalidName`](ErrorKind::InvalidName); [`TimedOut`](ErrorKind::TimedOut) once
    /// `timeout` has passed; [`Io`](ErrorKind::Io) if the base directory cannot be watched
    /// (it does not exist, say).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only watches.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options, RawChannel};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), shmchan::Error> {
    /// # let name = format!("doc-wait-created-{}", std::process::id());
    /// # let _maker = ChannelIo::<f32>::create(&name, Options::new())?;
    /// ChannelIo::wait_created(&name, None).await?;
    /// let chan = RawChannel::open_any(&name, Options::new())?; // whatever its type
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_created(
        name: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), Error> {
        segment::wait_created(name, timeout).await
    }

    /// The blocking twin of [`wait_created`](Self::wait_created).
    ///
    /// # Errors
    ///
    /// As [`wait_created`](Self::wait_created).
    pub fn blocking_wait_created(
        name: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), Error> {
        segment::blocking_wait_created(name, timeout)
    }

    /// Every channel on the machine (in [`base_dir`](crate::base_dir)), sorted by name,
    /// each with what [`inspect`](ChannelIo::inspect) says of it.
    ///
    /// # Errors
    ///
    /// If the base directory cannot be read.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-list-{}", std::process::id());
    /// let _chan = ChannelIo::<u8>::create(&name, Options::new())?;
    /// let all = ChannelIo::list()?;
    /// assert!(all.iter().any(|(n, info)| *n == name && info.is_ok()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn list() -> std::io::Result<Vec<(String, Result<ChannelInfo, Error>)>> {
        let (names, _) = segment::scan()?;
        Ok(names
            .into_iter()
            .map(|n| {
                let info = segment::inspect(&n);
                (n, info)
            })
            .collect())
    }

    /// Removes channel `name` if no process has it open and `decide` says so, given what the
    /// header says (or the error, for files under the name that are not a readable channel).
    /// The decision is made on the header as read under the channel's presence lock, held
    /// exclusively: no process can open the channel between the decision and the removal.
    ///
    /// # Errors
    ///
    /// [`InvalidName`](ErrorKind::InvalidName), or [`Io`](ErrorKind::Io) if the files cannot
    /// be removed.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options, Removal};
    /// # let name = format!("doc-remove-unused-{}", std::process::id());
    /// let chan = ChannelIo::<u8>::create(&name, Options::new().persist(true))?;
    /// // Open here: refused.
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::InUse);
    /// drop(chan);
    /// // Keep it if it is persistent...
    /// let keep_persistent = |i: Result<&shmchan::ChannelInfo, &shmchan::Error>| {
    ///     !i.is_ok_and(|i| i.persist)
    /// };
    /// assert_eq!(ChannelIo::remove_unused(&name, keep_persistent)?, Removal::Kept);
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::Removed);
    /// assert_eq!(ChannelIo::remove_unused(&name, |_| true)?, Removal::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_unused(
        name: &str,
        decide: impl FnOnce(Result<&ChannelInfo, &Error>) -> bool,
    ) -> Result<Removal, Error> {
        segment::remove_unused(name, decide)
    }

    /// Temporary directories left in [`base_dir`](crate::base_dir) by a creator or remover
    /// that was killed midway (their process is gone). [`ChannelIo::remove`] does not see
    /// them; [`ChannelIo::gc`] removes them.
    ///
    /// # Errors
    ///
    /// If the base directory cannot be read.
    pub fn leftovers() -> std::io::Result<Vec<std::path::PathBuf>> {
        Ok(segment::scan()?.1)
    }

    /// Removes every channel in [`base_dir`](crate::base_dir) that no live process has open,
    /// unless something speaks for it, and the temporary directories of creators and
    /// removers that were killed midway (see [`leftovers`](ChannelIo::leftovers)).
    ///
    /// What speaks for a channel: it belongs to another user, it
    /// [persists](crate::Options::persist), or its items or its writer's end of stream (close or
    /// abort) wait for a reader ([`ChannelInfo::has_undelivered`]), even when the writer
    /// died; and files under a channel's name that are not a readable channel are kept
    /// too. [`GcOptions::all`] removes all of those except another user's channels.
    /// Each channel is judged on its header as read under its lock, held exclusively, as
    /// [`remove_unused`](ChannelIo::remove_unused) does: a process that opens the channel at
    /// that moment either keeps it or finds it gone. [`GcOptions::dry_run`] judges and
    /// removes nothing.
    ///
    /// Returns what it did with each channel and leftover, and why: channels sorted by
    /// name, then leftovers. A channel removed meanwhile by someone else is left out; one
    /// whose removal fails is reported ([`GcAction::Failed`](crate::GcAction::Failed)) and
    /// the others are collected all the same.
    ///
    /// # Errors
    ///
    /// If the base directory cannot be read.
    ///
    /// ```
    /// use shmchan::{ChannelIo, GcAction, GcOptions, GcReason, Options};
    /// # let name = format!("doc-gc-{}", std::process::id());
    /// # let dir = shmchan::base_dir().join(&name);
    /// # std::fs::create_dir(&dir)?;
    /// # // Its own directory, so that the example collects nobody else's channels.
    /// # std::env::set_var("SHMCHAN_DIR", &dir);
    /// let chan = ChannelIo::<u8>::create(&name, Options::new().persist(true))?;
    /// let kept = |c: &shmchan::Collected, why: fn(&GcReason) -> bool| {
    ///     c.name == name && matches!(&c.action, GcAction::Kept(r) if why(r))
    /// };
    /// let done = ChannelIo::gc(GcOptions::new())?;
    /// assert!(done.iter().any(|c| kept(c, |r| matches!(r, GcReason::InUse))));
    /// drop(chan);
    /// let done = ChannelIo::gc(GcOptions::new())?;
    /// assert!(done.iter().any(|c| kept(c, |r| matches!(r, GcReason::Persistent))));
    /// let done = ChannelIo::gc(GcOptions::new().all(true))?;
    /// assert!(matches!(&done[0].action, GcAction::Removed(GcReason::NotInUse(_))));
    /// assert!(ChannelIo::inspect(&name).is_err());
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn gc(options: GcOptions) -> std::io::Result<Vec<Collected>> {
        segment::gc(options)
    }

    /// Removes channel `name` and all its files, whether or not it is finished or in use.
    /// Processes that have it open keep working on their mapping; new opens no longer find
    /// it. This is the only way a channel holding unread items, or a persistent one, goes.
    ///
    /// # Errors
    ///
    /// [`NotFound`](ErrorKind::NotFound) if there is no such channel.
    ///
    /// ```
    /// use shmchan::{ChannelIo, Options};
    /// # let name = format!("doc-remove-{}", std::process::id());
    /// drop(ChannelIo::<u8>::create(&name, Options::new().persist(true))?);
    /// assert!(ChannelIo::<u8>::open(&name).is_ok()); // persisted
    /// ChannelIo::remove(&name)?;
    /// assert!(ChannelIo::<u8>::open(&name).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(name: &str) -> Result<(), Error> {
        segment::remove(name)
    }
}
