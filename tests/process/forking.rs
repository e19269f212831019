//! Ends and handles inherited through `fork` (without exec): every call of an inherited end
//! that moves data or waits fails with `Forked` in the child, and nothing the child does
//! with them (use, drop, exit) touches the parent's ends, its stream or its async waits.
//!
//! Each test runs in a role process of its own, which has one thread when it forks, so the
//! forked child may run any code. A child arms its own alarm (a pending alarm is not
//! inherited) and ends with `_exit`, so it runs none of the parent's exit handlers.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use shmchan::{ChannelIo, End, ErrorKind, Options, WaitStrategy, WriterState};
use shmchan_testkit::unique;

use crate::harness::{check, env, gone, Peer, R};
use crate::waiting::{runtime, until_asleep, DATA_WAITING};

/// A handle inherited across fork is inert: it cannot claim, and dropping it neither closes
/// the parent's end nor releases its lock nor removes the channel.
pub fn fork_child_leaves_the_parents_ends_alone() -> R {
    let name = unique("fork");
    let out = Peer::spawn("fork_guard", &[("NAME", name.clone())]).success()?;
    check(out == "ok", format!("fork role said {out:?}"))?;
    check(gone(&name), "finished channel left behind")
}

/// An end used in a child forked from its claimant fails with `Forked`, whatever the call:
/// the parent's ends keep their positions, and the stream goes on with nothing lost or
/// duplicated.
pub fn fork_child_cannot_use_inherited_ends() -> R {
    let name = unique("forked-use");
    let out = Peer::spawn("fork_use", &[("NAME", name.clone())]).success()?;
    check(out == "ok", format!("fork role said {out:?}"))?;
    check(gone(&name), "finished channel left behind")
}

/// A child that drops the inherited ends (and handle), and one that exits without dropping
/// them, leave the stream open, both ends held, and the parent's async waits working (the
/// drop deregisters nothing from the tokio runtime whose epoll instance fork shares).
pub fn fork_child_exit_and_drop_leave_the_stream_alone() -> R {
    let name = unique("forked-drop");
    let out = Peer::spawn("fork_drop", &[("NAME", name.clone())]).success()?;
    check(out == "ok", format!("fork role said {out:?}"))?;
    check(gone(&name), "finished channel left behind")
}

/// Which side of a fork this process is on.
enum Side {
    Child,
    Parent(libc::pid_t),
}

/// Forks this (single-threaded) role process. In the child, arms an alarm of its own, so a
/// hang there cannot outlive the test.
fn fork() -> Result<Side, String> {
    // SAFETY: the roles that fork have one thread, so the child may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            // SAFETY: alarm(2) only arms a timer (its default action ends the child).
            unsafe { libc::alarm(60) };
            Ok(Side::Child)
        }
        pid => Ok(Side::Parent(pid)),
    }
}

/// Ends the child: 0 for `Ok`, 1 with the message on stderr for `Err`.
fn exit_child(result: Result<(), String>) -> ! {
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("forked child: {e}");
            1
        }
    };
    // SAFETY: ends the child without running the parent's exit handlers or flushing stdio
    // buffers it copied from the parent.
    unsafe { libc::_exit(code) }
}

/// Waits for the child `pid` (its alarm bounds the wait) and fails unless it exited with 0.
fn reap(pid: libc::pid_t) -> Result<(), String> {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("the forked child failed: status {status:#x}"));
    }
    Ok(())
}

/// `Ok` if `res` is a `Forked` error that names the claimant, `parent`.
fn forked<V: std::fmt::Debug>(
    what: &str,
    parent: u32,
    res: Result<V, shmchan::Error>,
) -> Result<(), String> {
    match res {
        Err(e) if e.kind() == ErrorKind::Forked && e.pid() == Some(parent) => Ok(()),
        other => Err(format!("{what} in the child: {other:?}")),
    }
}

/// The child's half of `fork_use`: every call of the inherited ends fails with `Forked`;
/// claiming through the inherited handle too; opening by name works.
fn use_inherited(
    name: &str,
    chan: &ChannelIo<u64>,
    w: &mut shmchan::WriterFront<u64>,
    r: &mut shmchan::ReaderFront<u64>,
    parent: u32,
) -> Result<(), String> {
    let rt = runtime();
    let mut one = [0u64];
    forked("blocking_put", parent, w.blocking_put(&[100]))?;
    forked("try_put", parent, w.try_put(&[100]))?;
    forked("put", parent, rt.block_on(w.put(&[100])))?;
    forked(
        "try_reserve",
        parent,
        w.try_reserve(1).map(|s| s.elements()),
    )?;
    forked(
        "blocking_reserve",
        parent,
        w.blocking_reserve(1).map(|s| s.elements()),
    )?;
    forked("writer prepare_wait", parent, w.prepare_wait(1))?;
    forked(
        "writer wait_fd",
        parent,
        w.wait_fd().map(|fd| fd.as_raw_fd()),
    )?;
    forked("writer finish_wait", parent, w.finish_wait())?;
    forked("blocking_get", parent, r.blocking_get(&mut one))?;
    forked("try_get", parent, r.try_get(&mut one))?;
    forked("try_get_some", parent, r.try_get_some(&mut one))?;
    forked("blocking_get_some", parent, r.blocking_get_some(&mut one))?;
    forked("get", parent, rt.block_on(r.get(&mut one)))?;
    forked("get_some", parent, rt.block_on(r.get_some(&mut one)))?;
    forked(
        "blocking_peek",
        parent,
        r.blocking_peek(1).map(|v| v.elements()),
    )?;
    forked(
        "try_peek",
        parent,
        r.try_peek(1).map(|v| v.map(|v| v.elements())),
    )?;
    forked("reader prepare_wait", parent, r.prepare_wait(1))?;
    forked(
        "reader wait_fd",
        parent,
        r.wait_fd().map(|fd| fd.as_raw_fd()),
    )?;
    forked("reader finish_wait", parent, r.finish_wait())?;
    forked("writer check_process", parent, w.check_process())?;
    forked("reader check_process", parent, r.check_process())?;
    // The message says what happened and what to do.
    let msg = w.blocking_put(&[100]).unwrap_err().to_string();
    if !(msg.contains(name) && msg.contains(&parent.to_string()) && msg.contains("by name")) {
        return Err(format!("message: {msg}"));
    }
    // Claiming through the inherited handle: refused the same way.
    for (end, res) in [
        (End::Writer, chan.writer().map(drop)),
        (End::Reader, chan.reader().map(drop)),
    ] {
        match res {
            Err(e) if e.kind() == ErrorKind::Forked && e.end() == Some(end) => {}
            other => return Err(format!("claiming the {end} in the child: {other:?}")),
        }
    }
    // What the error says to do: open by name; the ends are the parent's, so taken.
    let own = ChannelIo::<u64>::open(name).map_err(|e| format!("open by name: {e}"))?;
    match own.reader() {
        Err(e) if e.kind() == ErrorKind::EndTaken && e.pid() == Some(parent) => Ok(()),
        other => Err(format!(
            "claiming the reader by name in the child: {other:?}"
        )),
    }
}

/// Claims both ends, moves a little data, forks; the child tries every call on the inherited
/// ends (see `use_inherited`); the parent checks its ends are untouched and streams on.
pub fn role_fork_use() -> Result<(), String> {
    let name = env("NAME");
    let e = |e: shmchan::Error| e.to_string();
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512)).map_err(e)?;
    let (mut w, mut r) = (chan.writer().map_err(e)?, chan.reader().map_err(e)?);
    w.blocking_put(&[1, 2, 3, 4, 5, 6]).map_err(e)?;
    let mut two = [0u64; 2];
    r.blocking_get(&mut two).map_err(e)?;
    let parent = std::process::id();
    match fork()? {
        Side::Child => {
            let res = use_inherited(&name, &chan, &mut w, &mut r, parent);
            drop((w, r, chan));
            exit_child(res)
        }
        Side::Parent(pid) => reap(pid)?,
    }
    w.check_process().map_err(e)?;
    r.check_process().map_err(e)?;
    let info = ChannelIo::inspect(&name).map_err(e)?;
    if !info.writer.held
        || !info.reader.held
        || info.writer_state != WriterState::Open
        || info.reader_closed
        || (info.head, info.tail) != (2, 6)
    {
        return Err(format!("the child touched the channel: {info:?}"));
    }
    w.blocking_put(&[7, 8]).map_err(e)?;
    let mut six = [0u64; 6];
    r.blocking_get(&mut six).map_err(e)?;
    if six != [3, 4, 5, 6, 7, 8] {
        return Err(format!("after the child: read {six:?}"));
    }
    w.close();
    match r.blocking_get(&mut two) {
        Err(e) if e.kind() == ErrorKind::Closed && e.remaining() == 0 => {}
        other => return Err(format!("end of stream: {other:?}")),
    }
    println!("ok");
    Ok(())
}

/// Registers the reader's doorbell with a tokio runtime, forks a child that drops the
/// inherited ends and handle and one that exits without dropping them; then checks that
/// both ends are still held and open, and that the reader's next async wait is woken by the
/// writer's put.
pub fn role_fork_drop() -> Result<(), String> {
    let name = env("NAME");
    let e = |e: shmchan::Error| e.to_string();
    let opts = Options::new()
        .capacity(512)
        .wait_strategy(WaitStrategy::Sleep);
    let chan = ChannelIo::<u64>::create(&name, opts).map_err(e)?;
    let (mut w, mut r) = (chan.writer().map_err(e)?, chan.reader().map_err(e)?);
    w.blocking_put(&[1, 2, 3]).map_err(e)?;
    let rt = runtime();
    // An async wait (for a fourth item that does not come) registers the reader's doorbell
    // with the runtime.
    r.set_timeout(Some(Duration::from_millis(1)));
    let mut four = [0u64; 4];
    match rt.block_on(r.get(&mut four)) {
        Err(e) if e.kind() == ErrorKind::TimedOut => {}
        other => return Err(format!("the registering wait: {other:?}")),
    }
    match fork()? {
        Side::Child => {
            drop((w, r, chan));
            exit_child(Ok(()))
        }
        Side::Parent(pid) => reap(pid)?,
    }
    match fork()? {
        Side::Child => exit_child(Ok(())),
        Side::Parent(pid) => reap(pid)?,
    }
    let info = ChannelIo::inspect(&name).map_err(e)?;
    if !info.writer.held
        || !info.reader.held
        || info.writer_state != WriterState::Open
        || info.reader_closed
        || info.len() != 3
    {
        return Err(format!(
            "a child's drop or exit touched the channel: {info:?}"
        ));
    }
    // The writer puts the fourth item once the reader sleeps in the runtime's epoll_wait:
    // only the doorbell, through the runtime's registration, can wake it.
    let tid = std::process::id() as i32;
    let writer = std::thread::spawn({
        let name = name.clone();
        move || -> Result<(), String> {
            until_asleep(&name, DATA_WAITING, tid).map_err(|f| format!("{f:?}"))?;
            w.blocking_put(&[4]).map_err(|e| e.to_string())?;
            w.close();
            Ok(())
        }
    });
    r.set_timeout(Some(Duration::from_secs(20)));
    let start = Instant::now();
    let got = rt.block_on(r.get(&mut four));
    let took = start.elapsed();
    writer.join().map_err(|_| "the writer thread panicked")??;
    got.map_err(|e| format!("the async get after the children, {took:?}: {e}"))?;
    if four != [1, 2, 3, 4] || took > Duration::from_secs(10) {
        return Err(format!("read {four:?} after {took:?}"));
    }
    match r.blocking_get(&mut four) {
        Err(e) if e.kind() == ErrorKind::Closed && e.remaining() == 0 => {}
        other => return Err(format!("end of stream: {other:?}")),
    }
    println!("ok");
    Ok(())
}

/// Claims the writer, forks (this child process is single-threaded, so the fork is safe);
/// the grandchild tries to claim through the inherited handle and drops everything; the
/// parent checks its end is untouched and keeps writing.
pub fn role_fork_guard() -> Result<(), String> {
    let name = env("NAME");
    let chan =
        ChannelIo::<u64>::create(&name, Options::new().capacity(512)).map_err(|e| e.to_string())?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    w.blocking_put(&[1, 2, 3]).map_err(|e| e.to_string())?;
    match fork()? {
        Side::Child => {
            let res = match chan.reader() {
                Ok(_) => Err("an inherited handle claimed the reader".to_string()),
                Err(_) => Ok(()),
            };
            drop(w);
            drop(chan);
            exit_child(res)
        }
        Side::Parent(pid) => reap(pid)?,
    }
    let info = ChannelIo::inspect(&name).map_err(|e| e.to_string())?;
    if !info.writer.held || info.writer_state != WriterState::Open {
        return Err(format!("the child's drop touched our end: {info:?}"));
    }
    w.blocking_put(&[4]).map_err(|e| e.to_string())?;
    let mut r = chan.reader().map_err(|e| e.to_string())?;
    let mut got = [0u64; 4];
    r.blocking_get(&mut got).map_err(|e| e.to_string())?;
    if got != [1, 2, 3, 4] {
        return Err(format!("read {got:?}"));
    }
    println!("ok");
    Ok(())
}
