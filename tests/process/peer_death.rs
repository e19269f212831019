//! A peer's death: kill -9 of either end while the other waits, a scribbled or unwatchable
//! peer record, and writers killed and restarted at random points.

use std::io::Read;
use std::time::Duration;

use libtest_mimic::Failed;
use shmchan::{ChannelIo, ErrorKind, ReaderFront};
use shmchan_testkit::{background, unique, Rng};

use crate::harness::{check, env, env_u64, gone, Peer, R, TIMEOUT};
use crate::roles::stream_env;
use crate::waiting::{
    get_with, no_spin, put_with, until_asleep, ALL_VIAS, DATA_WAITING, ROOM_WAITING,
};

/// A writer process that claimed and committed `0..put` (with `extra` in its environment),
/// and this process's reader of the same channel (no spinning).
pub fn held_writer_and_reader(
    name: &str,
    put: u64,
    extra: &[(&'static str, String)],
) -> Result<(Peer, ChannelIo<u64>, shmchan::ReaderFront<u64>), Failed> {
    let mut e = stream_env(name, 0, 1, 512, 1);
    e.push(("PUT", put.to_string()));
    e.extend(extra.iter().cloned());
    let mut holder = Peer::spawn("hold_writer", &e);
    check(holder.read_line()? == "ready", "holder not ready")?;
    let chan = ChannelIo::<u64>::open_with(name, no_spin())?;
    let r = chan.reader()?;
    Ok((holder, chan, r))
}

/// kill -9 of the writer while the reader waits: the reader drains, then gets PeerGone.
pub fn kill_writer_while_reader_waits() -> R {
    for via in ALL_VIAS {
        let name = unique("killw");
        let (mut holder, chan, mut r) = held_writer_and_reader(&name, 100, &[])?;
        let got = background("get", move || {
            let mut buf = vec![0u64; 150];
            let res = get_with(&mut r, &mut buf, via);
            let returned = std::time::Instant::now();
            let mut rest = vec![0u64; 100];
            let drained = r.blocking_get_some(&mut rest).map(|n| rest[..n].to_vec());
            // Drained: the next call reports the end (does not wait) ...
            let end = r.blocking_get_some(&mut rest);
            (res, returned, drained, end, r)
        });
        until_asleep(&name, DATA_WAITING, got.tid)?;
        let killed = std::time::Instant::now();
        holder.kill9();
        let (res, returned, drained, end, mut r) = got.wait(*TIMEOUT)?;
        let after = returned.saturating_duration_since(killed);
        eprintln!("kill -9 of the writer (via {via:?}): PeerGone {after:?} later");
        // Measured here in milliseconds (pidfd); the bound leaves room for a loaded CI.
        check(
            after < Duration::from_secs(2),
            format!("PeerGone took {after:?}"),
        )?;
        check(
            r.wait_stats().sleeps >= 1,
            "the get never slept: the pidfd path was not tested",
        )?;
        match res {
            Err(e) if e.kind() == ErrorKind::PeerGone && e.remaining() == 100 => {}
            other => return Err(format!("expected PeerGone with 100 left, got {other:?}").into()),
        }
        check(
            drained.as_deref().ok() == Some(&(0..100).collect::<Vec<u64>>()[..]),
            format!("drain after PeerGone: {drained:?}"),
        )?;
        check(
            matches!(&end, Err(e) if e.kind() == ErrorKind::PeerGone && e.remaining() == 0),
            format!("after the drain: {end:?}"),
        )?;
        // ... and once reported with nothing left, the next get waits for a new writer (it
        // does not fail again). The dead writer's end is free at once; the new writer appends after
        // the last committed item and the same reader goes on.
        let next = background("get after restart", move || {
            let mut two = [0u64; 2];
            r.blocking_get(&mut two).map(|()| two)
        });
        until_asleep(&name, DATA_WAITING, next.tid)?;
        let mut w = chan.writer()?;
        w.blocking_put(&[100, 101])?;
        let two = next.wait(*TIMEOUT)?;
        check(
            matches!(two, Ok([100, 101])),
            format!("after restart: {two:?}"),
        )?;
    }
    Ok(())
}

/// kill -9 of the reader while the writer waits for room: put returns PeerGone; a new reader
/// resumes exactly at the first item the dead one had not consumed.
pub fn kill_reader_while_writer_waits() -> R {
    for via in ALL_VIAS {
        let name = unique("killr");
        let mut e = stream_env(&name, 0, 1, 512, 1);
        e.push(("GET", "100".into())); // the holder consumes 0..100 first
        let chan = ChannelIo::<u64>::create(&name, no_spin().capacity(512))?;
        let mut w = chan.writer()?;
        let mut holder = Peer::spawn("hold_reader", &e);
        let put = background("put", move || {
            let items: Vec<u64> = (0..700).collect();
            let r = put_with(&mut w, &items, via);
            (r, std::time::Instant::now(), w.wait_stats().sleeps)
        });
        check(holder.read_line()? == "ready", "holder not ready")?;
        // 100 consumed, 512 in the ring: the writer waits for room.
        let start = std::time::Instant::now();
        while chan.len() < 512 && start.elapsed() < *TIMEOUT {
            std::thread::yield_now();
        }
        until_asleep(&name, ROOM_WAITING, put.tid)?;
        let killed = std::time::Instant::now();
        holder.kill9();
        let (res, returned, sleeps) = put.wait(*TIMEOUT)?;
        let after = returned.saturating_duration_since(killed);
        eprintln!("kill -9 of the reader (via {via:?}): PeerGone {after:?} later");
        check(
            after < Duration::from_secs(2),
            format!("PeerGone took {after:?}"),
        )?;
        match res {
            Err(e) if e.kind() == ErrorKind::PeerGone && e.accepted() == 612 => {}
            other => {
                return Err(format!("expected PeerGone{{accepted: 612}}, got {other:?}").into())
            }
        }
        check(
            sleeps >= 1,
            "the put never slept: the pidfd path was not tested",
        )?;
        let mut r = chan.reader()?;
        let mut buf = vec![0u64; 512];
        r.blocking_get(&mut buf)?;
        check(
            buf.iter().enumerate().all(|(i, v)| *v == 100 + i as u64),
            format!("resumed at {} instead of 100", buf[0]),
        )?;
    }
    Ok(())
}

/// A same-user process scribbles the writer's record in the header, then the writer really
/// dies: the reader that waits must still learn of it within seconds, never sleep forever.
/// Three scribbles: the claim count zeroed before the reader sleeps (it would read as "never
/// claimed", a wait with no death watch), the same after it sleeps, and the pid set to 1
/// with the start time zeroed (it would watch init's pidfd, which never fires).
pub fn scribbled_peer_record_cannot_hang_the_survivor() -> R {
    use std::os::unix::fs::FileExt;
    let claims = (shmchan::layout::ENDS + 16) as u64;
    let (pid, start) = (
        shmchan::layout::ENDS as u64,
        (shmchan::layout::ENDS + 8) as u64,
    );
    /// Bytes written at header offsets.
    type Writes<'a> = &'a [(u64, &'a [u8])];
    let scribbles: [(&str, bool, Writes); 3] = [
        ("claims zeroed first", true, &[(claims, &[0; 8])]),
        ("claims zeroed while asleep", false, &[(claims, &[0; 8])]),
        (
            "pid 1, no start time",
            true,
            &[(pid, &1u32.to_ne_bytes()), (start, &[0; 8])],
        ),
    ];
    for (what, before, writes) in scribbles {
        let name = unique("scribble");
        let (mut holder, _chan, mut r) = held_writer_and_reader(&name, 0, &[])?;
        let ring = std::fs::OpenOptions::new()
            .write(true)
            .open(shmchan::channel_dir(&name).join("ring"))?;
        let scribble = || -> R {
            for (off, bytes) in writes {
                ring.write_at(bytes, *off)?;
            }
            Ok(())
        };
        if before {
            scribble()?;
        }
        let got = background("get", move || {
            let res = r.blocking_get(&mut [0u64; 1]);
            (res, std::time::Instant::now())
        });
        until_asleep(&name, DATA_WAITING, got.tid)?;
        if !before {
            scribble()?;
        }
        let killed = std::time::Instant::now();
        holder.kill9();
        let (res, when) = got.wait(*TIMEOUT)?;
        let after = when.saturating_duration_since(killed);
        eprintln!("scribbled writer record ({what}): {res:?} {after:?} after kill -9");
        check(
            matches!(&res, Err(e) if matches!(e.kind(), ErrorKind::PeerGone | ErrorKind::Corrupted)),
            format!("{what}: expected PeerGone or Corrupted, got {res:?}"),
        )?;
        check(
            after < Duration::from_secs(5),
            format!("{what}: the death was found {after:?} after the kill"),
        )?;
    }
    Ok(())
}

/// A peer whose recorded pid cannot be watched (as from another pid namespace): its death is
/// still found, by re-checking its lock, within about a second.
pub fn unwatchable_peer_death_is_found() -> R {
    for via in ALL_VIAS {
        let name = unique("unwatch");
        let fake = [("FAKE_PID", "2147483000".to_string())];
        let (mut holder, _chan, mut r) = held_writer_and_reader(&name, 3, &fake)?;
        let got = background("get", move || {
            let mut buf = [0u64; 10];
            let res = get_with(&mut r, &mut buf, via);
            (res, std::time::Instant::now(), r.wait_stats())
        });
        until_asleep(&name, DATA_WAITING, got.tid)?;
        std::thread::sleep(Duration::from_millis(100)); // let a few re-checks pass
        let killed = std::time::Instant::now();
        holder.kill9();
        let (res, when, stats) = got.wait(*TIMEOUT)?;
        check(
            matches!(&res, Err(e) if e.kind() == ErrorKind::PeerGone && e.remaining() == 3),
            format!("expected PeerGone with 3 left, got {res:?}"),
        )?;
        let after = when.saturating_duration_since(killed);
        eprintln!(
            "unwatchable peer (via {via:?}): death found {after:?} after kill -9, {} timed sleeps",
            stats.timed_sleeps
        );
        // The re-check backs off to 1 s at most; a pidfd would have needed no timed sleep.
        check(
            after < Duration::from_secs(3),
            format!("found after {after:?}"),
        )?;
        check(
            stats.timed_sleeps >= 3,
            format!("{} timed sleeps", stats.timed_sleeps),
        )?;
    }
    Ok(())
}

/// Writers killed with SIGKILL at random points and restarted, while one reader reads on;
/// the last one aborts at a random point: every item arrives once, in order; each death is
/// reported once (PeerGone), after which the reader waits for the restarted writer; the
/// abort comes after exactly the items committed before it.
pub fn writer_restarts_at_random_points() -> R {
    let name = unique("wrestart");
    let total = 3_000_000u64;
    let chan = ChannelIo::<u64>::create(&name, no_spin().capacity(4096))?;
    let r = chan.reader()?;
    let reader = background("reader", move || read_through_restarts(r));
    let mut rng = Rng(0xabcdef);
    let mut kills = 0;
    for round in 0..8u64 {
        let mut env = vec![
            ("NAME", name.clone()),
            ("TOTAL", total.to_string()),
            ("SEED", (round + 1).to_string()),
        ];
        if round == 7 {
            // The last one writes a random stretch more, then aborts.
            env.push(("ABORT_AFTER", (1 + rng.below(100_000)).to_string()));
            Peer::spawn("restart_writer", &env).success()?;
            break;
        }
        // It writes a random stretch and holds: killed while writing or while holding
        // (round 0: surely while holding, with the reader asleep, so at least one death
        // is seen with nothing left to read).
        env.push(("HOLD", (1 + rng.below(400_000)).to_string()));
        let mut w = Peer::spawn("restart_writer", &env);
        check(w.read_line()? == "claimed", "writer did not claim")?;
        if round == 0 {
            until_asleep(&name, DATA_WAITING, reader.tid)?;
        } else {
            std::thread::sleep(Duration::from_millis(rng.below(15)));
        }
        w.kill9();
        kills += 1;
    }
    let (got, deaths, aborted) = reader.wait(*TIMEOUT)?.map_err(Failed::from)?;
    eprintln!(
        "writer restarts: {kills} writers killed, {deaths} deaths reported, {got} items in \
         order, ended by {}",
        if aborted { "the abort" } else { "a close" }
    );
    // Ended by the abort, after exactly the items before it (its reason names the count,
    // checked by the reader).
    check(
        aborted,
        format!("ended by a close after {got} items, not by the abort"),
    )?;
    check(
        deaths >= 1 && deaths <= kills,
        format!("{deaths} deaths reported for {kills} kills"),
    )?;
    drop(chan);
    check(gone(&name), "finished channel left behind")
}

/// The reader of [`writer_restarts_at_random_points`]: reads until the stream ends, checking
/// that item i is i; returns the items read, the deaths reported with nothing left to read,
/// and whether the abort (naming the count) ended it rather than a close.
fn read_through_restarts(mut r: ReaderFront<u64>) -> Result<(u64, u64, bool), String> {
    let mut expect = 0u64;
    let mut deaths = 0u64;
    let mut buf = vec![0u64; 1000];
    loop {
        match r.blocking_get_some(&mut buf) {
            Ok(n) => {
                for v in &buf[..n] {
                    if *v != expect {
                        return Err(format!("expected {expect}, got {v}"));
                    }
                    expect += 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::PeerGone && e.remaining() == 0 => deaths += 1,
            // Items of the dead writer still to read: read them, then it is reported.
            Err(e) if e.kind() == ErrorKind::PeerGone => {}
            Err(e)
                if e.kind() == ErrorKind::Aborted
                    && e.remaining() == 0
                    && e.reason() == Some(&format!("stopped at {expect}")) =>
            {
                return Ok((expect, deaths, true))
            }
            Err(e) if e.kind() == ErrorKind::Closed && e.remaining() == 0 => {
                return Ok((expect, deaths, false))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A writer that appends after the last item its predecessors committed (item i has value
/// i) until TOTAL, in random batches, then closes.
pub fn role_restart_writer() -> Result<(), String> {
    let name = env("NAME");
    let total = env_u64("TOTAL");
    let mut rng = Rng(env_u64("SEED") | 1);
    // No other writer is alive (the previous one was killed and reaped): tail is final.
    let start = ChannelIo::inspect(&name).map_err(|e| e.to_string())?.tail;
    let chan = ChannelIo::<u64>::open(&name).map_err(|e| e.to_string())?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    println!("claimed");
    // ABORT_AFTER / HOLD: write that many items after our start, then abort instead of
    // closing, or hold (neither closing nor exiting) until killed.
    let stop = std::env::var("ABORT_AFTER").or_else(|_| std::env::var("HOLD"));
    let end = match stop.ok().and_then(|a| a.parse::<u64>().ok()) {
        Some(k) => (start + k).min(total),
        None => total,
    };
    let mut next = start;
    let mut buf = vec![0u64; 777];
    while next < end {
        let n = (1 + rng.below(777)).min(end - next) as usize;
        for (i, v) in buf[..n].iter_mut().enumerate() {
            *v = next + i as u64;
        }
        w.blocking_put(&buf[..n]).map_err(|e| e.to_string())?;
        next += n as u64;
    }
    if std::env::var("HOLD").is_ok() {
        // Wait to be killed (stdin stays open): this writer never ends the stream.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return Ok(());
    }
    if std::env::var("ABORT_AFTER").is_ok() {
        w.abort(&format!("stopped at {next}"));
    } else {
        w.close();
    }
    Ok(())
}
