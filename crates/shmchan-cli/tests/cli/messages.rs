//! What the command's messages say: quoted text escaped once, and a peer's going away
//! worded as what is known of it.

use std::io::Write;
use std::process::Stdio;

use crate::common::*;

/// Text that a message quotes (a name typed, a token read, a schema tag) is escaped once,
/// as `inspect` shows text: `"a\u{1b}[31mb"`, not `"a\\u{1b}[31mb"`.
#[test]
fn quoted_text_is_escaped_once() {
    for cmd in ["inspect", "rm", "recv"] {
        let o = run(&[cmd, "a\u{1b}[31mb"]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let e = stderr(&o);
        assert!(
            e.contains(r#"invalid channel name "a\u{1b}[31mb": "#) && !e.contains(r"\\"),
            "{cmd}: {e}"
        );
    }
    // A token: in send's message, in the abort reason that inspect shows and recv reports.
    let name = unique("esctoken");
    let mut send = spawn(&["send", &name, "--format", "text"], Stdio::piped());
    send.stdin
        .take()
        .unwrap()
        .write_all(b"1 a\x1b[31mb 2")
        .unwrap();
    let s = finish(send);
    assert_eq!(s.status.code(), Some(1));
    let quoted = r#"token 2 (line 1) "a\u{1b}[31mb" is not a valid u8"#;
    assert!(stderr(&s).contains(quoted), "{}", stderr(&s));
    let i = String::from_utf8_lossy(&run(&["inspect", &name]).stdout).into_owned();
    assert!(i.contains(&format!("abort reason {quoted}")), "{i}");
    let r = run(&["recv", &name, "--format", "text"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains(&format!("aborted: {quoted}")),
        "{}",
        stderr(&r)
    );
    // A schema tag with a backslash: doubled once, as inspect shows it.
    let name = unique("esctag");
    let o = run(&[
        "create",
        &name,
        "--type",
        "u8",
        "--capacity",
        "64",
        "--schema",
        r"a\b",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let i = String::from_utf8_lossy(&run(&["inspect", &name]).stdout).into_owned();
    assert!(i.contains(r"schema       a\\b"), "{i}");
    let o = run(&["send", &name, "--schema", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(r#"has schema tag "a\\b", not "x""#),
        "{}",
        stderr(&o)
    );
    assert!(run(&["rm", &name]).status.success());
}

/// A recv that stops on an error of its own (its output is full) lets go of the reader end
/// as a killed one would: send cannot tell which, and says what it knows, that the reader
/// went away without closing the channel, not that its process died.
#[test]
fn send_says_the_reader_went_away_when_recv_stops_on_an_error() {
    let name = unique("fullout");
    let input = tmpfile("fullin");
    std::fs::write(&input, random_bytes(1 << 20, 5)).unwrap();
    let send = spawn(
        &["send", &name, input.to_str().unwrap(), "--capacity", "4096"],
        Stdio::null(),
    );
    eventually("the ring to fill", || {
        detail(&name).is_some_and(|d| d["len"] == d["capacity"])
    });
    let r = run(&["recv", &name, "/dev/full"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("No space left on device"),
        "{}",
        stderr(&r)
    );
    let s = finish(send);
    assert_eq!(s.status.code(), Some(1));
    let e = stderr(&s);
    assert!(
        e.contains("the reader went away without closing the channel") && !e.contains("died"),
        "{e}"
    );
    assert_eq!(
        detail(&name).expect("left for resuming")["writer_state"],
        "open"
    );
    let _ = std::fs::remove_file(input);
    assert!(run(&["rm", &name]).status.success());
}

/// A channel fed by a bridge (it records an origin) whose writer goes: recv's advice is the
/// bridge's, not `send --resume`, which does not apply.
#[test]
fn recv_of_a_bridged_channel_advises_the_bridge() {
    let name = unique("bridged");
    // This test program again, as a pull: it creates the channel, then (run again, while
    // recv waits) writes three items and lets go of its writer end.
    let pull = || {
        let o = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "messages::role_bridged_writer", "--nocapture"])
            .env("SHMCHAN_DIR", dir())
            .env(BRIDGED, &name)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(o.success());
    };
    pull();
    let recv = spawn(&["recv", &name], Stdio::null());
    // recv holds its end before the writer goes (a writer found gone is waited for).
    eventually("recv to claim the reader", || {
        detail(&name).is_some_and(|d| d["reader"]["claims"] == 1)
    });
    pull();
    let r = finish(recv);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(r.stdout, b"abc");
    let e = stderr(&r);
    assert!(e.contains("bridge's push") && !e.contains("send"), "{e}");
    assert!(run(&["rm", &name]).status.success());
}

const BRIDGED: &str = "SHMCHAN_TEST_BRIDGED";

/// Not a test of its own: makes a channel that records an origin, as a pull makes it; run
/// again, writes three items into it and lets go of the writer end, as a pull lets go of it
/// when its push goes.
#[test]
fn role_bridged_writer() {
    let Ok(name) = std::env::var(BRIDGED) else {
        return;
    };
    if !shmchan::channel_dir(&name).exists() {
        let origin = shmchan::Origin::new(0x5eed, 0).unwrap();
        let o = shmchan::Options::new().origin(origin).persist(true);
        shmchan::ChannelIo::<u8>::create(&name, o).unwrap();
        return;
    }
    let chan = shmchan::ChannelIo::<u8>::open(&name).unwrap();
    let mut w = chan.writer().unwrap();
    w.blocking_put(b"abc").unwrap();
    w.leave();
}
