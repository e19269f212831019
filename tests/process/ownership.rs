//! Who may use a channel: ends held by other processes, another user's channels and
//! permissions, tampered or symlinked files, and a name reused after removal. (Handles and
//! ends inherited across fork: `forking`.)

use std::path::Path;

use libtest_mimic::Failed;
use shmchan::{ChannelIo, Context, End, ErrorKind, Options};
use shmchan_testkit::unique;

use crate::harness::{check, env, gone, Peer, R};
use crate::roles::stream_env;

/// An end held by a live process is refused with its pid; freed when the holder exits.
pub fn end_taken_across_processes() -> R {
    let name = unique("taken");
    let e = stream_env(&name, 0, 1, 512, 1);
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    let mut holder = Peer::spawn("hold_writer", &e);
    check(holder.read_line()? == "ready", "holder not ready")?;
    let pid = holder.pid();
    match chan.writer() {
        Err(e)
            if e.kind() == ErrorKind::EndTaken
                && e.context()
                    == &Context::Holder {
                        end: End::Writer,
                        pid: Some(pid),
                    } => {}
        other => return Err(format!("expected EndTaken by {pid}, got {other:?}").into()),
    }
    let msg = chan.writer().unwrap_err().to_string();
    check(msg.contains(&pid.to_string()) && msg.contains(&name), msg)?;
    holder.kill9();
    // Its writer was killed, not closed: the end is free for a new writer.
    let w = chan.writer();
    check(w.is_ok(), format!("end not freed after kill -9: {w:?}"))?;
    // That writer closes with no reader ever come: the channel waits for one; remove it.
    drop((w, chan));
    check(!gone(&name), "undelivered end of stream was removed")?;
    ChannelIo::remove(&name)?;
    Ok(())
}

/// create_or_open from many processes at once: exactly one channel, all of them open it.
pub fn create_or_open_race() -> R {
    let name = unique("race");
    let mut e = stream_env(&name, 0, 1, 512, 1);
    e.push(("REPORT_TAKEN", "1".into()));
    let mut holders: Vec<Peer> = (0..6).map(|_| Peer::spawn("hold_reader", &e)).collect();
    // Exactly one of them gets the reader end; the others report EndTaken. All opened it.
    let mut ready = 0;
    let mut taken = 0;
    for h in holders.iter_mut() {
        match h.read_line()?.as_str() {
            "ready" => ready += 1,
            "taken" => taken += 1,
            other => return Err(format!("a racer said {other:?}").into()),
        }
    }
    for h in holders {
        h.success()?;
    }
    check(
        ready == 1 && taken == 5,
        format!("{ready} readers, {taken} refused"),
    )
}

/// A channel created 0600 by one user cannot be opened by another: PermissionDenied.
pub fn permission_denied_for_other_user() -> R {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Without root we cannot become another user; check a mode that refuses us instead.
        let name = unique("perm");
        let chan = ChannelIo::<u64>::create(&name, Options::new().mode(0o000))?;
        let res = ChannelIo::<u64>::open(&name);
        drop(chan);
        ChannelIo::remove(&name).ok();
        return check(
            matches!(&res, Err(e) if e.kind() == ErrorKind::PermissionDenied),
            format!("{res:?}"),
        );
    }
    let name = unique("perm");
    let chan = ChannelIo::<u64>::create(&name, Options::new())?;
    let e = vec![("NAME", name.clone())];
    let out = Peer::spawn_as_nobody("open_report", &e).success()?;
    drop(chan);
    check(out == "PermissionDenied", format!("other user got {out:?}"))?;
    // Widened on purpose, the other user can open it.
    let name = unique("perm-wide");
    let chan = ChannelIo::<u64>::create(&name, Options::new().mode(0o666))?;
    let e = vec![("NAME", name.clone())];
    let out = Peer::spawn_as_nobody("open_report", &e).success()?;
    drop(chan);
    check(
        out == "ok",
        format!("other user with mode 0666 got {out:?}"),
    )
}

/// Opens NAME as u64 and prints "ok", "PermissionDenied" or "other: " and the error.
pub fn role_open_report() -> Result<(), String> {
    match ChannelIo::<u64>::open(&env("NAME")) {
        Ok(_) => println!("ok"),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => println!("PermissionDenied"),
        Err(e) => println!("other: {e}"),
    }
    Ok(())
}

/// Channels of another user are refused unless accepted; symlinks are never followed.
pub fn foreign_owner_and_symlinks() -> R {
    let target = unique("symtarget");
    let chan = ChannelIo::<u64>::create(&target, Options::new())?;
    let link = unique("symlink");
    std::os::unix::fs::symlink(shmchan::channel_dir(&target), shmchan::channel_dir(&link))
        .map_err(|e| e.to_string())?;
    let res = ChannelIo::<u64>::open(&link);
    std::fs::remove_file(shmchan::channel_dir(&link)).map_err(|e| e.to_string())?;
    drop(chan);
    check(
        matches!(&res, Err(e) if e.kind() == ErrorKind::NotAChannel),
        format!("symlink: {res:?}"),
    )?;

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(()); // cannot act as another user
    }
    let name = unique("foreign");
    let e = vec![("NAME", name.clone())];
    check(
        Peer::spawn_as_nobody("create_persist", &e).success()? == "created",
        "child",
    )?;
    let res = ChannelIo::<u64>::open(&name);
    let accepted = ChannelIo::<u64>::open_with(&name, Options::new().accept_other_owner(true));
    ChannelIo::remove(&name)?;
    check(
        matches!(
             &res,
             Err(e) if e.kind() == ErrorKind::ForeignOwner
                 && e.context() == &Context::Owner { owner: 65534, uid: 0 }
        ),
        format!("another user's channel: {res:?}"),
    )?;
    check(accepted.is_ok(), format!("accepted: {accepted:?}"))
}

/// Creates NAME (u64, persistent) and exits.
pub fn role_create_persist() -> Result<(), String> {
    ChannelIo::<u64>::create(&env("NAME"), Options::new().persist(true))
        .map_err(|e| e.to_string())?;
    println!("created");
    Ok(())
}

/// Tampered channel files: a bell that is not a FIFO, a symlinked ring, a ring of another
/// owner — all refused as foreign, never followed or opened as something else.
pub fn tampered_files_are_foreign() -> R {
    let tamper = |f: &dyn Fn(&Path) -> std::io::Result<()>| -> Result<shmchan::Error, Failed> {
        let name = unique("tamper");
        drop(ChannelIo::<u64>::create(
            &name,
            Options::new().persist(true),
        )?);
        f(&shmchan::channel_dir(&name)).map_err(|e| e.to_string())?;
        let res = ChannelIo::<u64>::open(&name);
        ChannelIo::remove(&name)?;
        res.err()
            .ok_or_else(|| Failed::from("tampered channel opened"))
    };
    let e = tamper(&|d| {
        std::fs::remove_file(d.join("data.bell"))?;
        std::fs::write(d.join("data.bell"), b"")
    })?;
    check(
        e.kind() == ErrorKind::NotAChannel,
        format!("regular-file bell: {e:?}"),
    )?;
    let e = tamper(&|d| {
        std::fs::remove_file(d.join("room.bell"))?;
        std::os::unix::fs::symlink("/dev/null", d.join("room.bell"))
    })?;
    check(
        e.kind() == ErrorKind::NotAChannel,
        format!("symlinked bell: {e:?}"),
    )?;
    let e = tamper(&|d| {
        std::fs::rename(d.join("ring"), d.join("ring.real"))?;
        std::os::unix::fs::symlink(d.join("ring.real"), d.join("ring"))
    })?;
    check(
        e.kind() == ErrorKind::NotAChannel,
        format!("symlinked ring: {e:?}"),
    )?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let e = tamper(&|d| std::os::unix::fs::chown(d.join("ring"), Some(65534), None))?;
        check(
            e.kind() == ErrorKind::NotAChannel,
            format!("ring of another owner: {e:?}"),
        )?;
    }
    Ok(())
}

/// Removing a channel and creating another under its name: dropping the old handle later
/// must not touch the new channel.
pub fn old_handle_drop_spares_a_recreated_channel() -> R {
    let name = unique("recreate");
    let old = ChannelIo::<u64>::create(&name, Options::new())?;
    let old_reader = old.reader()?; // makes the old channel "finished" when it closes
    ChannelIo::remove(&name)?;
    let new = ChannelIo::<u64>::create(&name, Options::new())?;
    let mut w = new.writer()?;
    w.blocking_put(&[5, 6, 7])?;
    drop(old_reader);
    drop(old);
    let again = ChannelIo::<u64>::open(&name)?;
    check(
        again.len() == 3,
        format!("re-created channel has {} items", again.len()),
    )?;
    drop((w, again, new));
    ChannelIo::remove(&name)?;
    Ok(())
}
