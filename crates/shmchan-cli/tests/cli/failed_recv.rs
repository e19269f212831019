//! A `recv` that fails before it consumes anything leaves no channel and no file that was
//! not there before, and a channel that was there as it was.

use std::process::Stdio;

use crate::common::*;

/// An output that cannot be written (or given its start record): no channel is left behind
/// under the name, with --resume or without.
#[test]
fn a_recv_that_cannot_write_creates_no_channel() {
    for resume in [true, false] {
        let name = unique("norecv");
        let mut args = vec!["recv", &name, "/proc/version"];
        if resume {
            args.push("--resume");
        }
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            gone(&name),
            "recv {args:?} left a channel: {:?}",
            detail(&name)
        );
    }
}

/// A FILE that cannot be opened fails before the channel is touched: a channel that exists
/// is not claimed (a writer there would take a claim let go for a reader gone). A FILE made
/// by a recv that then fails (the reader end is held) is removed again.
#[test]
fn a_recv_that_cannot_write_leaves_a_channel_as_it_was() {
    let name = unique("keepchan");
    let o = run(&["create", &name, "--type", "u8", "--capacity", "64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["recv", &name, "/nonexistent-shmchan-dir/out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
    let d = detail(&name).expect("the channel is still there");
    assert_eq!(d["reader"]["claims"], 0, "{d}");
    assert_eq!(d["state"], "unused", "{d}");
    assert!(run(&["rm", &name]).status.success());

    let name = unique("heldrecv");
    let first = spawn(&["recv", &name], Stdio::null());
    eventually("the reader to claim", || {
        detail(&name).is_some_and(|d| d["reader"]["alive"] == true)
    });
    let out = tmpfile("made");
    let o = run(&["recv", &name, out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("held by"), "{}", stderr(&o));
    assert!(
        !out.exists(),
        "the failed recv left {} behind",
        out.display()
    );
    let mut send = spawn(&["send", &name], Stdio::piped());
    drop(send.stdin.take());
    assert!(finish(send).status.success());
    assert!(finish(first).status.success());
}
