//! Ending a stream: close, abort and their reasons, what a get or put in progress sees, what
//! cannot be claimed again, and which files stay.

use std::path::Path;
use std::time::Duration;

use shmchan::{ChannelIo, Context, End, ErrorKind, Options};
use shmchan_testkit::{background, unique};

use crate::harness::{check, gone, report, Peer, R, TIMEOUT};
use crate::roles::{child_chan, stream_env};
use crate::waiting::{until_asleep, ROOM_WAITING};

/// The writer aborts with a reason: the reader drains everything, then sees the reason.
pub fn abort_reaches_reader_after_drain() -> R {
    let name = unique("abort");
    let mut e = stream_env(&name, 5000, 300, 1024, 3);
    e.push(("ABORT", "sensor lost".into()));
    let writer = Peer::spawn("stream_writer", &e);
    let reader = Peer::spawn("stream_reader", &e);
    writer.success()?;
    let out = reader.success()?;
    check(
        report(&out).0 == "read 5000 aborted:sensor lost",
        format!("reader said {out:?}"),
    )
}

/// get into a buffer larger than what remains after close: Closed{remaining}, nothing
/// removed, the rest readable. And a get larger than the ring is filled progressively.
pub fn closed_get_removes_nothing() -> R {
    let name = unique("closedget");
    let mut e = stream_env(&name, 10, 10, 512, 1);
    e.push(("PUT", "10".into()));
    let mut holder = Peer::spawn("hold_writer", &e);
    check(holder.read_line()? == "ready", "holder not ready")?;
    let chan = ChannelIo::<u64>::open(&name)?;
    let mut r = chan.reader()?;
    let mut four = [0u64; 4];
    r.blocking_get(&mut four)?;
    check(four == [0, 1, 2, 3], format!("{four:?}"))?;
    holder.success()?; // closes stdin: the writer closes normally and exits
    let mut eight = [0u64; 8];
    match r.blocking_get(&mut eight) {
        Err(e) if e.kind() == ErrorKind::Closed && e.remaining() == 6 && e.filled() == 0 => {}
        other => return Err(format!("expected Closed with 6 remaining, got {other:?}").into()),
    }
    let mut six = [0u64; 6];
    r.blocking_get(&mut six)?;
    check(six == [4, 5, 6, 7, 8, 9], format!("{six:?}"))?;
    // Larger than the ring (512), writer closed after 10: filled progressively, then Closed.
    let name2 = unique("bigget");
    let mut e2 = stream_env(&name2, 2000, 50, 512, 2);
    e2.push(("ASYNC", "1".into()));
    let chan2 = ChannelIo::<u64>::create_or_open(&name2, Options::new().capacity(512))?;
    let mut r2 = chan2.reader()?;
    let writer = Peer::spawn("stream_writer", &e2); // 2000 items through 512 slots

    let mut big = vec![0u64; 1500];
    r2.blocking_get(&mut big)?;
    check(
        big.iter().enumerate().all(|(i, v)| *v == i as u64),
        "big get out of order",
    )?;
    let mut bigger = vec![0u64; 1000];
    match r2.blocking_get(&mut bigger) {
        Err(e) if e.kind() == ErrorKind::Closed && e.remaining() == 0 && e.filled() == 500 => {}
        other => return Err(format!("expected Closed with 500 filled, got {other:?}").into()),
    }
    writer.success()?;
    check(
        bigger[..500]
            .iter()
            .enumerate()
            .all(|(i, v)| *v == 1500 + i as u64),
        "progressive fill out of order",
    )
}

/// The reader (another process) closes while the writer waits for room: put fails with
/// Closed and says how many items it accepted.
pub fn reader_close_fails_waiting_put() -> R {
    let name = unique("rclose");
    let e = stream_env(&name, 0, 1, 512, 1);
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    let mut w = chan.writer()?;
    w.blocking_put(&[7; 500])?;
    let mut holder = Peer::spawn("hold_reader", &e);
    check(holder.read_line()? == "ready", "holder not ready")?;
    let put = background("put", move || {
        let r = w.blocking_put(&[1; 100]); // 12 fit, then it waits
        (r, w)
    });
    until_asleep(&name, ROOM_WAITING, put.tid)?;
    holder.success()?; // the reader drops: close
    let (res, mut w) = put.wait(*TIMEOUT)?;
    match res {
        Err(e) if e.kind() == ErrorKind::Closed && e.accepted() == 12 => {}
        other => return Err(format!("expected Closed{{accepted: 12}}, got {other:?}").into()),
    }
    check(
        w.wait_stats().sleeps >= 1,
        "the put never slept: the wake path was not tested",
    )?;
    match w.blocking_put(&[1]) {
        Err(e) if e.kind() == ErrorKind::Closed && e.accepted() == 0 => {}
        other => return Err(format!("expected Closed{{accepted: 0}}, got {other:?}").into()),
    }
    drop(w);
    drop(chan);
    check(gone(&name), "reader-closed channel left files behind")
}

/// A writer that closes (here: aborts) with no item and exits before any reader came: the
/// channel stays, and the reader later gets the end of stream with the reason.
pub fn writer_abort_before_reader_came() -> R {
    let name = unique("abortempty");
    let e = stream_env(&name, 0, 1, 512, 1);
    check(
        Peer::spawn("abort_empty", &e).success()? == "aborted",
        "child",
    )?;
    check(
        !gone(&name),
        "a channel whose abort was never delivered was removed",
    )?;
    let chan = ChannelIo::<u64>::open(&name)?;
    let mut r = chan.reader()?;
    match r.blocking_get_some(&mut [0u64; 4]) {
        Err(e)
            if e.kind() == ErrorKind::Aborted
                && e.remaining() == 0
                && e.reason() == Some("no data today") => {}
        other => return Err(format!("expected Aborted, got {other:?}").into()),
    }
    drop((r, chan));
    check(gone(&name), "delivered channel left files behind")
}

/// Creates NAME, claims the writer and aborts at once, with no item, then exits.
pub fn role_abort_empty() -> Result<(), String> {
    let chan = child_chan()?;
    chan.writer()
        .map_err(|e| e.to_string())?
        .abort("no data today");
    println!("aborted");
    Ok(())
}

/// An end closed by its holder cannot be claimed again: the `Closed` error names who closed.
pub fn closed_ends_cannot_be_reclaimed() -> R {
    let name = unique("reclaim");
    let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    chan.writer()?.close();
    match chan.writer() {
        Err(e)
            if e.kind() == ErrorKind::Closed && e.context() == &Context::ClosedBy(End::Writer) => {}
        other => return Err(format!("writer after writer close: {other:?}").into()),
    }
    chan.reader()?.close();
    match (chan.reader(), chan.writer()) {
        (Err(a), Err(b))
            if [&a, &b].iter().all(|e| {
                e.kind() == ErrorKind::Closed && e.context() == &Context::ClosedBy(End::Reader)
            }) => {}
        other => return Err(format!("after reader close: {other:?}").into()),
    }
    drop(chan);
    check(gone(&name), "finished channel left behind")
}

/// get/get_some/peek are cancel safe: a timed-out get removed nothing.
pub fn cancelled_get_removes_nothing() -> R {
    let name = unique("cancel");
    let chan = ChannelIo::<u32>::create(&name, Options::new())?;
    let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    w.blocking_put(&[1, 2, 3])?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut five = [0u32; 5];
    let res = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), r.get(&mut five)).await
    });
    check(res.is_err(), "get of 5 with 3 available did not wait")?;
    let peeked = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), r.peek(4))
            .await
            .is_err()
    });
    check(peeked, "peek of 4 with 3 available did not wait")?;
    let mut all = [0u32; 8];
    let n = r.blocking_get_some(&mut all)?;
    check(
        n == 3 && all[..3] == [1, 2, 3],
        format!("after cancel: {:?}", &all[..n]),
    )
}

/// An abort reason longer than REASON_MAX is cut at a character boundary.
pub fn long_abort_reason_is_cut_cleanly() -> R {
    let name = unique("reason");
    let chan = ChannelIo::<u8>::create(&name, Options::new())?;
    let (w, mut r) = (chan.writer()?, chan.reader()?);
    let reason = "é".repeat(200); // 400 bytes
    w.abort(&reason);
    match r.blocking_get_some(&mut [0u8; 1]) {
        Err(e) if e.kind() == ErrorKind::Aborted => {
            let got = e.reason().unwrap_or_default();
            check(
                got.len() <= shmchan::REASON_MAX && got.len() >= 250 && reason.starts_with(got),
                format!("{} bytes: {got:?}", got.len()),
            )
        }
        other => Err(format!("expected Aborted, got {other:?}").into()),
    }
}

/// A created-and-dropped channel, and one whose reader closed, leave no files; a persistent
/// one stays until removed.
pub fn cleanup_rules() -> R {
    let a = unique("unused");
    drop(ChannelIo::<u8>::create(&a, Options::new())?);
    check(gone(&a), "unused channel left files")?;
    let b = unique("persist");
    drop(ChannelIo::<u8>::create(&b, Options::new().persist(true))?);
    check(!gone(&b), "persistent channel removed")?;
    {
        let chan = ChannelIo::<u8>::open(&b)?;
        let mut w = chan.writer()?;
        w.blocking_put(b"x")?;
        let r = chan.reader()?;
        r.close();
    }
    check(!gone(&b), "persistent channel removed after use")?;
    ChannelIo::remove(&b)?;
    check(gone(&b), "remove left files")?;
    let c = unique("rclosed");
    {
        let chan = ChannelIo::<u8>::create(&c, Options::new())?;
        let mut w = chan.writer()?;
        w.blocking_put(b"unread")?;
        drop(chan.reader()?); // reader closes: discards the rest
    }
    check(gone(&c), "reader-closed channel left files")?;
    check(
        !Path::new(&shmchan::base_dir())
            .read_dir()
            .map_err(|e| e.to_string())?
            .filter_map(|d| d.ok())
            .any(|d| {
                let f = d.file_name().to_string_lossy().into_owned();
                f.starts_with(".shmchan-tmp.")
                    && [&a, &b, &c].iter().any(|n| f.contains(n.as_str()))
            }),
        "temporary directories left behind",
    )
}
