//! `shmchan send --format text`: the input is parsed as it comes, a token is bounded, and
//! floats are range-checked.

use std::io::Write;
use std::process::Stdio;

use crate::common::*;

/// A token longer than 1024 bytes is refused as soon as it is that long: send stops reading
/// (the rest of the input is never taken in), aborts the stream, and names the token by its
/// first 40 characters, not by all of it.
#[test]
fn a_long_token_is_refused_before_it_ends() {
    let name = unique("longtok");
    let mut send = spawn(&["send", &name, "--format", "text"], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    // Up to 64 MiB of digits without whitespace, written until send stops taking them.
    let total = 64 << 20;
    let writer = std::thread::spawn(move || {
        let block = vec![b'7'; 1 << 20];
        let mut sent = 0;
        while sent < total && stdin.write_all(&block).is_ok() {
            sent += block.len();
        }
        sent
    });
    let s = finish(send);
    let sent = writer.join().unwrap();
    assert_eq!(s.status.code(), Some(1), "{}", stderr(&s));
    let e = stderr(&s);
    let shown = "7".repeat(40);
    assert!(
        e.len() < 400
            && e.contains(&format!(
                "token 1 (line 1) \"{shown}…\" is not a valid u8: longer than 1024 bytes"
            )),
        "{} bytes of stderr: {}",
        e.len(),
        &e[..e.len().min(400)]
    );
    assert!(sent < total, "send read all {sent} bytes of the token");
    let r = run(&["recv", &name, "--format", "text"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("aborted: token 1"), "{}", stderr(&r));
    assert!(gone(&name));
}

/// Numbers go out as they are read, not once their line is complete: a line without a
/// newline is not held whole.
#[test]
fn numbers_flow_before_their_line_ends() {
    let name = unique("noline");
    let mut send = spawn(
        &["send", &name, "--type", "u16", "--format", "text"],
        Stdio::piped(),
    );
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(b"1 2 3 ").unwrap();
    stdin.flush().unwrap();
    eventually("the numbers to be committed before their line ends", || {
        detail(&name).is_some_and(|d| d["len"] == 3)
    });
    stdin.write_all(b"4\n").unwrap();
    drop(stdin);
    assert!(finish(send).status.success());
    let r = run(&["recv", &name, "--format", "text"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(String::from_utf8_lossy(&r.stdout), "1\n2\n3\n4\n");
}

/// A finite decimal that would be read as infinity, or a nonzero one that would be read as
/// 0, is refused like an integer out of range; inf and nan are read as written.
#[test]
fn floats_beyond_their_type_are_refused() {
    for (ty, token, why) in [
        ("f32", "3.4e39", "too large, it would be infinity"),
        ("f64", "1e400", "too large, it would be infinity"),
        ("f64", "-1e400", "too large, it would be infinity"),
        ("f64", "1e-400", "too small, it would be 0"),
        ("f32", "1e-46", "too small, it would be 0"),
    ] {
        let name = unique("float");
        let mut send = spawn(
            &["send", &name, "--type", ty, "--format", "text"],
            Stdio::piped(),
        );
        let input = format!("1.5\n{token} 2\n");
        send.stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let s = finish(send);
        assert_eq!(s.status.code(), Some(1), "{ty} {token}: {}", stderr(&s));
        let expected = format!("token 2 (line 2) \"{token}\" is not a valid {ty}: {why}");
        assert!(stderr(&s).contains(&expected), "{}", stderr(&s));
        let r = run(&["recv", &name, "--format", "text"]);
        assert_eq!(String::from_utf8_lossy(&r.stdout), "1.5\n", "{ty} {token}");
        assert_eq!(r.status.code(), Some(1));
        assert!(gone(&name));
    }
    let name = unique("inf");
    let mut send = spawn(
        &["send", &name, "--type", "f64", "--format", "text"],
        Stdio::piped(),
    );
    send.stdin
        .take()
        .unwrap()
        .write_all(b"inf -inf nan -Infinity 1.7976931348623157e308 2.5e-3 -0")
        .unwrap();
    let s = finish(send);
    assert!(s.status.success(), "{}", stderr(&s));
    let r = run(&["recv", &name, "--format", "text"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    let max = f64::MAX.to_string();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["inf", "-inf", "NaN", "-inf", &max, "0.0025", "-0"]
    );
}
