//! `send`/`recv --format lines`: a message channel, one message per line, between two
//! processes; `ls` and `inspect` show it; a line too long for the ring aborts the stream.

use std::io::Write;
use std::process::Stdio;

use crate::common::*;

/// Lines of every length (empty ones, long ones, bytes that are not UTF-8, a last line
/// without its newline) go through whole and in order, with the reader started first.
#[test]
fn lines_go_through_whole_and_in_order() {
    let name = unique("lines");
    let mut input = Vec::new();
    for i in 0..5000u32 {
        let len = (i as usize * 7919) % 3000;
        input.extend((0..len).map(|k| b'a' + ((i as usize + k) % 26) as u8));
        if i % 97 == 0 {
            input.extend_from_slice(&[0xff, 0xfe, b'\r']); // not UTF-8, and a CR kept
        }
        input.push(b'\n');
    }
    input.extend_from_slice(b"the last line has no newline");
    // Into a file: a pipe nobody reads until the end would stop recv, and then send.
    let out = tmpfile("lines");
    let recv = spawn(
        &["recv", &name, out.to_str().unwrap(), "--format", "lines"],
        Stdio::null(),
    );
    let mut send = spawn(&["send", &name, "--format", "lines"], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    let data = input.clone();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let s = finish(send);
    feeder.join().unwrap().unwrap();
    assert!(s.status.success(), "send: {}", stderr(&s));
    let r = finish(recv);
    assert!(r.status.success(), "recv: {}", stderr(&r));
    let mut want = input;
    want.push(b'\n');
    let got = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the lines differ");
    assert!(gone(&name));
}

/// `ls` and `inspect` say "message", count the ring in bytes and the fill in messages; a numeric recv of a
/// message channel is told to use --format lines; `--count` stops after that many lines.
#[test]
fn a_message_channel_is_shown_as_one_and_read_as_lines_only() {
    let name = unique("linesls");
    let mut send = spawn(&["send", &name, "--format", "lines"], Stdio::piped());
    send.stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\nthree\n")
        .unwrap();
    let s = finish(send);
    assert!(s.status.success(), "send: {}", stderr(&s));
    let d = detail(&name).expect("the channel");
    assert_eq!(d["elem_type"], "message");
    assert_eq!(d["messages"], true);
    assert_eq!(d["message_count"], 3);
    let ls = run(&["ls"]);
    let line = String::from_utf8_lossy(&ls.stdout)
        .lines()
        .find(|l| l.starts_with(&name))
        .map(str::to_string)
        .expect("listed");
    assert!(line.contains("message") && line.contains("3 ("), "{line}");
    let text = run(&["inspect", &name]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("messages, framed in 8-byte words")
            && String::from_utf8_lossy(&text.stdout).contains("3 messages in 48 bytes"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    let r = run(&["recv", &name]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("--format lines"), "{}", stderr(&r));
    let r = run(&["recv", &name, "--format", "lines", "--count", "2"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(r.stdout, b"one\ntwo\n");
    assert!(
        gone(&name),
        "--count closes the channel: the rest is discarded"
    );
}

/// A line longer than the ring takes aborts the stream after the lines before it, and the
/// reader hears why; send holds at most the ring's worth of the line, not all of it.
#[test]
fn a_line_longer_than_the_ring_aborts_the_stream() {
    let name = unique("linelong");
    let mut send = spawn(
        &["send", &name, "--format", "lines", "--capacity", "4096"],
        Stdio::piped(),
    );
    let mut stdin = send.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(b"short\n");
        let _ = stdin.write_all(&vec![b'x'; 1 << 20]);
    });
    let s = finish(send);
    feeder.join().unwrap();
    assert_eq!(s.status.code(), Some(1), "{}", stderr(&s));
    assert!(
        stderr(&s).contains("line 2 is longer than the channel's longest message (4088 bytes)"),
        "{}",
        stderr(&s)
    );
    let r = run(&["recv", &name, "--format", "lines"]);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(r.stdout, b"short\n");
    assert!(stderr(&r).contains("aborted: line 2"), "{}", stderr(&r));
}

/// A recv started after its writer was killed writes out the dead writer's lines, then
/// waits for a restarted send (not exit 1), and ends with its close.
#[test]
fn a_recv_after_a_killed_send_waits_for_its_restart() {
    let name = unique("linesdead");
    let mut send = spawn(&["send", &name, "--format", "lines"], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(b"a\nb\n").unwrap();
    stdin.flush().unwrap();
    eventually("the two lines to be committed", || {
        detail(&name).is_some_and(|d| d["tail"] == 4)
    });
    send.kill().unwrap();
    send.wait().unwrap();
    drop(stdin);
    let recv = spawn(&["recv", &name, "--format", "lines"], Stdio::null());
    // Only once recv holds the reader (and drained the dead writer's lines), the restart.
    eventually("recv to drain the dead writer's lines", || {
        detail(&name).is_some_and(|d| d["head"] == 4)
    });
    let mut again = spawn(&["send", &name, "--format", "lines"], Stdio::piped());
    again.stdin.take().unwrap().write_all(b"c\n").unwrap();
    let s = finish(again);
    assert!(s.status.success(), "send: {}", stderr(&s));
    let r = finish(recv);
    assert!(r.status.success(), "recv: {}", stderr(&r));
    assert_eq!(r.stdout, b"a\nb\nc\n");
}
