//! Tests of the `shmchan` command: they run the built binary as separate processes.
//!
//! Every child is waited for with a time limit, so a hang fails the test instead of CI.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

const LIMIT: Duration = Duration::from_secs(60);

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shmchan"))
}

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "c{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn tmpfile(tag: &str) -> PathBuf {
    std::env::temp_dir().join(unique(tag))
}

/// Deterministic pseudo-random bytes.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Waits for `child` with the time limit and collects its output.
fn finish(mut child: Child) -> Output {
    match child.wait_timeout(LIMIT).expect("wait") {
        Some(_) => child.wait_with_output().expect("output"),
        None => {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "child did not exit within {LIMIT:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn run(args: &[&str]) -> Output {
    finish(
        bin()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    )
}

fn spawn(args: &[&str], stdin: Stdio) -> Child {
    bin()
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn gone(name: &str) -> bool {
    !shmchan::channel_dir(name).exists()
}

/// Polls `cond` (a test-side wait for another process to reach a state; bounded).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn help_on_every_subcommand() {
    let top = run(&["--help"]);
    assert!(top.status.success());
    let text = String::from_utf8_lossy(&top.stdout);
    for sub in ["create", "send", "recv", "ls", "inspect", "rm", "gc"] {
        assert!(text.contains(sub), "top help lacks {sub}");
        let o = run(&[sub, "--help"]);
        assert!(o.status.success(), "{sub} --help failed");
        let h = String::from_utf8_lossy(&o.stdout);
        assert!(
            h.contains("Examples:"),
            "{sub} --help has no examples:\n{h}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["send"]).status.code(), Some(2));
    assert_eq!(
        run(&["create", "x", "--type", "q8", "--capacity", "1"])
            .status
            .code(),
        Some(2)
    );
    let o = run(&["rm", "../etc"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid channel name"),
        "{}",
        stderr(&o)
    );
    // A channel error is 1, with one line naming the channel.
    let name = unique("missing");
    let o = run(&["inspect", &name]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains(&name) && e.lines().count() == 1, "{e}");
}

fn roundtrip(recv_first: bool) {
    let name = unique("rt");
    let data = random_bytes(3_000_000 + 17, 42);
    let input = tmpfile("in");
    std::fs::write(&input, &data).unwrap();
    let output = tmpfile("out");
    let out_s = output.to_str().unwrap().to_string();
    let in_s = input.to_str().unwrap().to_string();
    // A ring much smaller than the data, so both sides wait for each other.
    let recv_args = ["recv", &name, &out_s, "--capacity", "65536"];
    let send_args = ["send", &name, &in_s, "--capacity", "65536"];
    let (recv, send) = if recv_first {
        let r = spawn(&recv_args, Stdio::null());
        (r, spawn(&send_args, Stdio::null()))
    } else {
        let s = spawn(&send_args, Stdio::null());
        (spawn(&recv_args, Stdio::null()), s)
    };
    let s = finish(send);
    let r = finish(recv);
    assert!(s.status.success(), "send: {}", stderr(&s));
    assert!(r.status.success(), "recv: {}", stderr(&r));
    let got = std::fs::read(&output).unwrap();
    assert!(
        got == data,
        "data differ ({} vs {} bytes)",
        got.len(),
        data.len()
    );
    assert!(gone(&name), "finished channel left behind");
    let _ = std::fs::remove_file(input);
    let _ = std::fs::remove_file(output);
}

#[test]
fn roundtrip_binary_recv_first() {
    roundtrip(true);
}

#[test]
fn roundtrip_binary_send_first() {
    roundtrip(false);
}

#[test]
fn text_f64_with_a_bad_token() {
    let name = unique("text");
    let mut send = spawn(
        &["send", &name, "--type", "f64", "--format", "text"],
        Stdio::piped(),
    );
    send.stdin
        .take()
        .unwrap()
        .write_all(b"1.5 2.5\n-3e2 oops 4\n")
        .unwrap();
    let s = finish(send);
    assert_eq!(s.status.code(), Some(1));
    assert!(
        stderr(&s).contains("token 4 (line 2) \"oops\" is not a valid f64"),
        "{}",
        stderr(&s)
    );
    let r = run(&["recv", &name, "--format", "text"]);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "1.5\n2.5\n-300\n");
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("aborted: token 4"), "{}", stderr(&r));
    assert!(gone(&name));
}

#[test]
fn text_count_stops_early() {
    let name = unique("count");
    let mut send = spawn(
        &["send", &name, "--type", "i32", "--format", "text"],
        Stdio::piped(),
    );
    send.stdin.take().unwrap().write_all(b"5 6 7 8 9").unwrap();
    assert!(finish(send).status.success());
    let r = run(&["recv", &name, "--format", "text", "--count", "2"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(String::from_utf8_lossy(&r.stdout), "5\n6\n");
    assert!(gone(&name), "recv closed the channel: it is finished");
}

#[test]
fn create_ls_inspect_json() {
    let name = unique("json");
    let o = run(&[
        "create",
        &name,
        "--type",
        "f32",
        "--capacity",
        "1000",
        "--schema",
        "imu/v2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = run(&["create", &name, "--type", "f32", "--capacity", "1000"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));

    let i = json(&run(&["inspect", &name, "--json"]));
    let d = &i["detail"];
    assert_eq!(i["ok"], true);
    assert_eq!(d["elem_type"], "f32");
    assert_eq!(d["elem_size"], 4);
    assert_eq!(d["capacity"], 1024);
    assert_eq!(d["schema"], "imu/v2");
    assert_eq!(d["persist"], true);
    assert_eq!(d["mode"], "0600");
    assert_eq!(d["len"], 0);
    assert_eq!(d["state"], "open");
    assert_eq!(d["writer"]["claims"], 0);

    // Items sent but not read: the channel keeps them and says so.
    let mut send = spawn(&["send", &name, "--format", "text"], Stdio::piped());
    send.stdin.take().unwrap().write_all(b"1 2 3").unwrap();
    assert!(finish(send).status.success());
    let all = json(&run(&["ls", "--json"]));
    let me = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name.as_str())
        .expect("ls lists the channel");
    assert_eq!(me["detail"]["len"], 3);
    assert_eq!(me["detail"]["writer_state"], "closed");
    assert_eq!(me["detail"]["writer"]["alive"], false);
    let table = String::from_utf8_lossy(&run(&["ls"]).stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("f32")),
        "{table}"
    );
    // A persistent channel stays after it was drained.
    let r = run(&["recv", &name, "--format", "text"]);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "1\n2\n3\n");
    assert!(!gone(&name));
    assert!(run(&["rm", &name]).status.success());
    assert!(gone(&name));
}

#[test]
fn rm_refuses_a_live_channel_and_gc_removes_a_stale_one() {
    let name = unique("stale");
    // A writer that waits on its stdin, holding the end.
    let mut send = spawn(&["send", &name], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(b"partial").unwrap();
    eventually("the writer to claim", || {
        shmchan::ChannelIo::inspect(&name).is_ok_and(|i| i.writer.held && i.len() == 7)
    });
    let o = run(&["rm", &name]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("writer pid") && e.contains("--force"), "{e}");
    let gc = run(&["gc"]);
    assert!(String::from_utf8_lossy(&gc.stdout).contains(&format!("kept    {name}")));

    send.kill().unwrap(); // SIGKILL
    send.wait().unwrap();
    drop(stdin);
    let i = json(&run(&["inspect", &name, "--json"]));
    assert_eq!(i["detail"]["writer"]["alive"], false);
    assert_eq!(i["detail"]["state"], "stale");
    let gc = run(&["gc"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    assert!(
        String::from_utf8_lossy(&gc.stdout).contains(&format!("removed {name} (stale)")),
        "{}",
        String::from_utf8_lossy(&gc.stdout)
    );
    assert!(gone(&name));
}

#[test]
fn garbage_under_a_channel_name() {
    let name = unique("junk");
    let dir = shmchan::channel_dir(&name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("ring"), vec![0x5a; 10_000]).unwrap();
    let o = run(&["inspect", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a shmchan segment"),
        "{}",
        stderr(&o)
    );
    let table = String::from_utf8_lossy(&run(&["ls"]).stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("unreadable")),
        "{table}"
    );
    let r = run(&["recv", &name]);
    assert_eq!(r.status.code(), Some(1));
    let gc = run(&["gc"]);
    assert!(String::from_utf8_lossy(&gc.stdout).contains(&format!("kept    {name}")));
    assert!(!gone(&name));
    assert!(run(&["rm", &name]).status.success());
    assert!(gone(&name));
}

#[test]
fn kill_send_while_recv_waits() {
    let name = unique("killsend");
    let mut send = spawn(&["send", &name], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(b"all of this is committed").unwrap();
    eventually("the writer to commit", || {
        shmchan::ChannelIo::inspect(&name).is_ok_and(|i| i.len() == 24)
    });
    let recv = spawn(&["recv", &name], Stdio::null());
    eventually("the reader to claim", || {
        shmchan::ChannelIo::inspect(&name).is_ok_and(|i| i.reader.held)
    });
    let killed = Instant::now();
    send.kill().unwrap();
    send.wait().unwrap();
    drop(stdin);
    let r = finish(recv);
    let took = killed.elapsed();
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("process died"), "{}", stderr(&r));
    assert_eq!(r.stdout, b"all of this is committed");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let _ = shmchan::ChannelIo::remove(&name);
}

#[test]
fn kill_recv_while_send_waits() {
    let name = unique("killrecv");
    let input = tmpfile("big");
    std::fs::write(&input, random_bytes(1 << 20, 7)).unwrap();
    // The reader claims but its output pipe is never read: it stalls, then the ring fills.
    let mut recv = spawn(&["recv", &name, "--capacity", "4096"], Stdio::null());
    eventually("the reader to claim", || {
        shmchan::ChannelIo::inspect(&name).is_ok_and(|i| i.reader.held)
    });
    let send = spawn(&["send", &name, input.to_str().unwrap()], Stdio::null());
    eventually("the ring to fill", || {
        shmchan::ChannelIo::inspect(&name).is_ok_and(|i| i.len() == i.capacity)
    });
    let killed = Instant::now();
    recv.kill().unwrap();
    recv.wait().unwrap();
    let s = finish(send);
    assert!(killed.elapsed() < Duration::from_secs(5));
    assert_eq!(s.status.code(), Some(1));
    assert!(
        stderr(&s).contains("reader's process died"),
        "{}",
        stderr(&s)
    );
    let _ = std::fs::remove_file(input);
    let _ = shmchan::ChannelIo::remove(&name);
}

#[test]
fn recv_into_a_closed_pipe_exits_quietly() {
    let name = unique("pipe");
    let input = tmpfile("pipein");
    std::fs::write(&input, random_bytes(8 << 20, 3)).unwrap();
    let mut recv = spawn(&["recv", &name], Stdio::null());
    let send = spawn(&["send", &name, input.to_str().unwrap()], Stdio::null());
    let mut first = [0u8; 100];
    recv.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then drop the pipe
    let r = finish(recv);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(stderr(&r), "", "recv should exit quietly");
    assert_eq!(&first[..], &random_bytes(8 << 20, 3)[..100]);
    // The reader closed early: the writer is told.
    let s = finish(send);
    assert_eq!(s.status.code(), Some(1));
    assert!(stderr(&s).contains("reader closed"), "{}", stderr(&s));
    let _ = std::fs::remove_file(input);
    assert!(gone(&name));
}

#[test]
fn send_rejects_a_partial_element() {
    let name = unique("partial");
    let mut send = spawn(&["send", &name, "--type", "u32"], Stdio::piped());
    send.stdin
        .take()
        .unwrap()
        .write_all(&[1, 0, 0, 0, 2, 0])
        .unwrap();
    let s = finish(send);
    assert_eq!(s.status.code(), Some(1));
    assert!(stderr(&s).contains("ends with 2 bytes"), "{}", stderr(&s));
    let r = run(&["recv", &name, "--format", "text"]);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "1\n");
    assert_eq!(r.status.code(), Some(1));
    // A type that differs from the channel's is refused.
    let name = unique("wrongtype");
    let mut send = spawn(&["send", &name, "--type", "f32"], Stdio::piped());
    drop(send.stdin.take());
    let _ = finish(send);
    let _ = shmchan::ChannelIo::remove(&name);
}
