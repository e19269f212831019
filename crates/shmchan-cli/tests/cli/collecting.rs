//! `shmchan rm` and `shmchan gc`: what a live process holds stays, what a killed one left goes.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

#[test]
fn rm_refuses_a_live_channel_and_gc_removes_a_stale_one() {
    let _own = own_dir("gc-stale");
    let name = unique("stale");
    // A writer that waits on its stdin, holding the end, 7 bytes committed.
    let mut send = spawn(&["send", &name], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(b"partial").unwrap();
    eventually("the writer to commit", || {
        detail(&name).is_some_and(|d| d["writer"]["alive"] == true && d["len"] == 7)
    });
    let o = run(&["rm", &name]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("writer pid") && e.contains("--force"), "{e}");
    let gc = run(&["gc"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    let out = String::from_utf8_lossy(&gc.stdout).into_owned();
    assert!(
        out.contains(&format!("kept    {name}: open in a live process")),
        "{out}"
    );

    send.kill().unwrap(); // SIGKILL
    send.wait().unwrap();
    drop(stdin);
    let d = detail(&name).expect("readable");
    assert_eq!(d["writer"]["alive"], false);
    assert_eq!(d["state"], "stale");
    // Its 7 committed items still wait for a reader: gc keeps them unless --all.
    let gc = run(&["gc"]);
    let out = String::from_utf8_lossy(&gc.stdout).into_owned();
    assert!(
        out.contains(&format!("kept    {name}: 7 items wait for a reader")),
        "{out}"
    );
    let dry = run(&["gc", "--all", "--dry-run"]);
    let out = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        out.contains(&format!("would remove {name} (stale)")),
        "{out}"
    );
    assert!(!gone(&name));
    let gc = run(&["gc", "--all"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    let out = String::from_utf8_lossy(&gc.stdout).into_owned();
    assert!(out.contains(&format!("removed {name} (stale)")), "{out}");
    assert!(gone(&name));

    // A writer killed before it committed anything leaves nothing to deliver: plain gc.
    let name = unique("stale-empty");
    let mut send = spawn(&["send", &name], Stdio::piped());
    let stdin = send.stdin.take().unwrap();
    // Claimed and published (the lock alone is taken a moment before the claim is recorded).
    eventually("the writer to claim", || {
        detail(&name).is_some_and(|d| d["writer"]["alive"] == true && d["writer"]["claims"] == 1)
    });
    send.kill().unwrap();
    send.wait().unwrap();
    drop(stdin);
    let gc = run(&["gc"]);
    let out = String::from_utf8_lossy(&gc.stdout).into_owned();
    assert!(out.contains(&format!("removed {name} (stale)")), "{out}");
    assert!(gone(&name));
}

#[test]
fn gc_removes_what_a_killed_creator_left() {
    let guard = own_dir("gc-own");
    let own = guard.0.clone();
    let gc = |args: &[&str]| {
        let child = bin()
            .arg("gc")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        finish(child)
    };
    // A creator killed midway leaves its temporary directory, named after its pid.
    let mut gone_child = std::process::Command::new("true").spawn().unwrap();
    gone_child.wait().unwrap(); // reaped: its pid names no process now
    let left = own.join(format!(".shmchan-tmp.half.{}.0.7", gone_child.id()));
    std::fs::create_dir(&left).unwrap();
    let minutes_ago = std::time::SystemTime::now() - Duration::from_secs(120);
    std::fs::File::open(&left)
        .and_then(|d| d.set_modified(minutes_ago))
        .unwrap();
    let said = |o: &std::process::Output, verb: &str| {
        assert!(o.status.success(), "{}", stderr(o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let want = format!("{verb} {} (left by a killed process)\n", left.display());
        assert_eq!(out, want);
    };
    said(&gc(&["--dry-run"]), "would remove");
    assert!(left.exists());
    said(&gc(&[]), "removed");
    assert!(!left.exists());
    drop(guard);
}
