//! Waiting for a channel to be created: inotify on the base directory, so that a process
//! may start before the one that creates its channel, without polling.
//!
//! A channel appears by a rename of its finished directory into the base directory
//! (`IN_MOVED_TO`); `IN_CREATE` covers a directory made in place. The watch is added before
//! the first check, so a creation between the two is not missed; each event only prompts a
//! new check of the name, so a full event queue (`IN_Q_OVERFLOW`) loses nothing either.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::task::Poll;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::io::Errno;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::files::io_err;
use super::names::{base_dir, channel_dir, check_name};
use crate::error::{Error, ErrorKind};

/// Whether channel `name`'s directory is there (published, or being removed).
fn exists(name: &str) -> bool {
    std::fs::symlink_metadata(channel_dir(name)).is_ok()
}

/// An inotify descriptor watching the base directory for new entries, or `None` if `name`
/// exists already.
fn watch(name: &str) -> Result<Option<OwnedFd>, Error> {
    check_name(name)?;
    let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
        .map_err(|e| io_err(name, "watching for the channel to be created")(e.into()))?;
    let dir = base_dir();
    inotify::add_watch(
        &fd,
        &dir,
        WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::ONLYDIR,
    )
    .map_err(|e| io_err(name, "watching the channel directory")(e.into()))?;
    Ok((!exists(name)).then_some(fd))
}

/// Reads every pending event (they only prompt a new check); `WouldBlock` once none is left.
fn drain(fd: &OwnedFd) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(_) | Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn timed_out(name: &str) -> Error {
    Error::at(ErrorKind::TimedOut, name, channel_dir(name))
}

/// Blocks until channel `name` exists, at most `timeout`.
pub(crate) fn blocking_wait_created(name: &str, timeout: Option<Duration>) -> Result<(), Error> {
    match watch(name)? {
        Some(fd) => blocking_wait_on(&fd, name, timeout),
        None => Ok(()),
    }
}

/// Blocks until an event on `fd` (a [`watch`]) finds `name` there, at most `timeout`.
fn blocking_wait_on(fd: &OwnedFd, name: &str, timeout: Option<Duration>) -> Result<(), Error> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => Some(left),
                None => return Err(timed_out(name)),
            },
            None => None,
        };
        let spec = left.map(|l| rustix::time::Timespec {
            tv_sec: l.as_secs() as i64,
            tv_nsec: l.subsec_nanos() as i64,
        });
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, spec.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => {
                return Err(io_err(name, "waiting for the channel to be created")(
                    e.into(),
                ))
            }
        }
        match drain(fd) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_err(name, "waiting for the channel to be created")(e)),
            Ok(()) => {}
        }
        if exists(name) {
            return Ok(());
        }
    }
}

/// Registers `fd` with the current tokio runtime, for reading.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "an async method was called outside a tokio runtime; use its blocking_ twin",
        ));
    }
    // SAFETY: `fd` is an open descriptor that the AsyncFd takes ownership of; it stays open,
    // and refers to the same open file description, until the AsyncFd is dropped, since
    // nothing else owns it.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

/// Waits until channel `name` exists, at most `timeout` (kept by a timerfd, for the library
/// does not need tokio's timer). Cancel safe: it only watches.
pub(crate) async fn wait_created(name: &str, timeout: Option<Duration>) -> Result<(), Error> {
    match watch(name)? {
        Some(fd) => wait_on(fd, name, timeout).await,
        None => Ok(()),
    }
}

/// Waits until an event on `fd` (a [`watch`]) finds `name` there, at most `timeout`.
async fn wait_on(fd: OwnedFd, name: &str, timeout: Option<Duration>) -> Result<(), Error> {
    let failed = |e: io::Error| io_err(name, "waiting for the channel to be created")(e);
    let events = register(fd).map_err(failed)?;
    let timer = match timeout {
        Some(t) => {
            let fd = rustix::time::timerfd_create(
                rustix::time::TimerfdClockId::Monotonic,
                rustix::time::TimerfdFlags::CLOEXEC | rustix::time::TimerfdFlags::NONBLOCK,
            )
            .map_err(|e| failed(e.into()))?;
            // A zero timeout would disarm the timer: wait at least a nanosecond.
            crate::notify::arm_timer(fd.as_fd(), t.max(Duration::from_nanos(1))).map_err(failed)?;
            Some(register(fd).map_err(failed)?)
        }
        None => None,
    };
    poll_fn(|cx| {
        if let Some(t) = &timer {
            if t.poll_read_ready(cx).is_ready() {
                return Poll::Ready(Err(timed_out(name)));
            }
        }
        loop {
            let mut guard = match events.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(failed(e))),
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|fd| drain(fd.get_ref())) {
                Ok(Err(e)) if e.kind() != io::ErrorKind::WouldBlock => {
                    return Poll::Ready(Err(failed(e)))
                }
                _ => {}
            }
            if exists(name) {
                return Poll::Ready(Ok(()));
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChannelIo, Options};

    /// Bounds a wait that an event must end (a missed event fails the test, not hangs it).
    const LIMIT: Option<Duration> = Some(Duration::from_secs(60));

    #[test]
    fn a_channel_created_after_the_watch_ends_the_wait() {
        let name = format!("appear-{}", std::process::id());
        let e = blocking_wait_created(&name, Some(Duration::from_millis(20))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(e.to_string().contains("to be created"), "{e}");
        // Watching, then created: only the event can end the wait.
        let fd = watch(&name).unwrap().expect("not there yet");
        let chan = ChannelIo::<u8>::create(&name, Options::new().persist(true)).unwrap();
        blocking_wait_on(&fd, &name, LIMIT).unwrap();
        // There already: at once, even with a zero timeout.
        blocking_wait_created(&name, Some(Duration::ZERO)).unwrap();
        drop(chan);
        ChannelIo::remove(&name).unwrap();
    }

    #[tokio::test]
    async fn the_async_twin_waits_for_the_event_too() {
        let name = format!("appear-async-{}", std::process::id());
        let e = wait_created(&name, Some(Duration::from_millis(20)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        let fd = watch(&name).unwrap().expect("not there yet");
        let chan = ChannelIo::<u8>::create(&name, Options::new().persist(true)).unwrap();
        wait_on(fd, &name, LIMIT).await.unwrap();
        wait_created(&name, None).await.unwrap();
        drop(chan);
        ChannelIo::remove(&name).unwrap();
    }
}
