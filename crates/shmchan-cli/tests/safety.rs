//! Output safety of the `shmchan` command: text that came from a segment (schema tags,
//! abort reasons, names) is escaped wherever it is printed, `create` refuses a tag that
//! could not be printed, and text input that is not UTF-8 is reported where it fails.
//!
//! Every child is waited for with a time limit (see `common`).

use std::io::Write;
use std::process::Stdio;

mod common;
use common::*;

#[test]
fn text_from_segments_is_escaped_on_the_terminal() {
    let name = unique("escape");
    let tag = HOSTILE_TAG;
    // This test program again, as the hostile writer (in the channel directory of the run).
    let o = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hostile_writer", "--nocapture"])
        .env("SHMCHAN_DIR", dir())
        .env("SHMCHAN_TEST_HOSTILE", &name)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        detail(&name).is_some(),
        "the hostile writer made no channel"
    );
    let raw = |b: &[u8]| b.iter().any(|&c| c == 0x1b || c == 0x07);
    let o = run(&["inspect", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!raw(&o.stdout), "{text:?}");
    assert!(text.contains("schema       tag\\u{1b}[2J\\u{7}"), "{text}");
    assert!(
        text.contains("abort reason bad\\u{1b}]0;pwned\\u{7}\\u{a}reason\\u{202e}"),
        "{text}"
    );
    let ls = run(&["ls"]);
    assert!(!raw(&ls.stdout));
    // JSON escapes them its own way, and stays exact.
    let j = json(&run(&["inspect", &name, "--json"]));
    assert_eq!(j["detail"]["schema"], tag);
    // An error that quotes the reason.
    let r = run(&["recv", &name]);
    assert_eq!(r.status.code(), Some(1));
    assert!(!raw(&r.stderr), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("aborted: bad\\u{1b}]0;pwned"),
        "{}",
        stderr(&r)
    );
    assert_eq!(stderr(&r).lines().count(), 1, "one line: {}", stderr(&r));
    assert!(gone(&name), "drained: removed");

    // create refuses a tag with control characters (a usage error).
    let o = run(&[
        "create",
        &name,
        "--type",
        "u8",
        "--capacity",
        "64",
        "--schema",
        "a\u{1b}b",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("control character"), "{}", stderr(&o));
    assert!(!raw(&o.stderr), "{}", stderr(&o));
    assert!(gone(&name));
}

/// A record's description is shown by `inspect` and `ls`, escaped like every text from a
/// segment (a field name may hold U+202E, which reorders what follows on a terminal, and a
/// backslash); JSON keeps it exact.
#[test]
fn descriptions_are_shown_and_escaped() {
    let name = unique("descr");
    let o = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hostile_descr_writer", "--nocapture"])
        .env("SHMCHAN_DIR", dir())
        .env("SHMCHAN_TEST_HOSTILE_DESCR", &name)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["inspect", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!text.contains('\u{202e}'), "{text:?}");
    assert!(
        text.contains(r"descr        [('x\u{202e}y', '<i4'), ('back\\\\slash', '<f4')]"),
        "{text}"
    );
    let ls = String::from_utf8_lossy(&run(&["ls"]).stdout).into_owned();
    let line = ls
        .lines()
        .find(|l| l.starts_with(&name))
        .expect("ls lists it");
    assert!(
        !line.contains('\u{202e}') && line.contains(r"[('x\u{202e}y', '<i4')…"),
        "{line}"
    );
    assert_eq!(detail(&name).unwrap()["descr"], HOSTILE_DESCR);
    assert!(run(&["rm", &name]).status.success());
}

/// A record field named with U+202E and a backslash.
const HOSTILE_DESCR: &str = "[('x\u{202e}y', '<i4'), ('back\\\\slash', '<f4')]";

/// Not a test of its own: the channel of `descriptions_are_shown_and_escaped`, made in the
/// channel directory of the run.
#[test]
fn hostile_descr_writer() {
    let Ok(name) = std::env::var("SHMCHAN_TEST_HOSTILE_DESCR") else {
        return;
    };
    let o = shmchan::Options::new().descr(HOSTILE_DESCR).persist(true);
    let elem = shmchan::ElementType::record(8, 4).unwrap();
    shmchan::RawChannel::create(&name, elem, o).expect("create");
}

#[test]
fn invalid_utf8_text_is_reported_with_its_offset() {
    let name = unique("utf8");
    let mut send = spawn(
        &["send", &name, "--type", "i32", "--format", "text"],
        Stdio::piped(),
    );
    send.stdin
        .take()
        .unwrap()
        .write_all(b"1 2\n3 \xff 4\n")
        .unwrap();
    let s = finish(send);
    assert_eq!(s.status.code(), Some(1));
    assert!(
        stderr(&s).contains("not UTF-8 text: byte 0xff at offset 6 (line 2)"),
        "{}",
        stderr(&s)
    );
    // The numbers before the bad byte are delivered, on its line too.
    let r = run(&["recv", &name, "--format", "text"]);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "1\n2\n3\n");
    assert_eq!(r.status.code(), Some(1));
}

const HOSTILE_TAG: &str = "tag\u{1b}[2J\u{7}";

/// Not a test of its own: when `SHMCHAN_TEST_HOSTILE` names a channel, it is the hostile
/// writer of `text_from_segments_is_escaped_on_the_terminal`. A same-user program can put
/// anything but NUL in a tag and a reason.
#[test]
fn hostile_writer() {
    let Ok(name) = std::env::var("SHMCHAN_TEST_HOSTILE") else {
        return;
    };
    let o = shmchan::Options::new().schema(HOSTILE_TAG);
    let chan = shmchan::ChannelIo::<u8>::create(&name, o).expect("create");
    let w = chan.writer().expect("writer");
    w.abort("bad\u{1b}]0;pwned\u{7}\nreason\u{202e}");
}
