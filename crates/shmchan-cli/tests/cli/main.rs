//! Tests of the `shmchan` command: they run the built binary as separate processes.
//!
//! Every child is waited for with a time limit, so a hang fails the test instead of CI.
//! Channels live in `$SHMCHAN_DIR` if it is set (CI sets a private one), else in
//! `/dev/shm/shmchan-clitest`: these tests run `shmchan gc`, which must not touch the
//! channels of whoever runs them.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod collecting;
#[path = "../common/mod.rs"]
mod common;
mod failed_recv;
mod lines;
mod messages;
mod text;
use common::*;

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
    // The first side has claimed its end before the second starts.
    let (recv, send) = if recv_first {
        let r = spawn(&recv_args, Stdio::null());
        eventually("the reader to claim", || {
            detail(&name).is_some_and(|d| d["reader"]["alive"] == true)
        });
        (r, spawn(&send_args, Stdio::null()))
    } else {
        let s = spawn(&send_args, Stdio::null());
        eventually("the writer to claim", || {
            detail(&name).is_some_and(|d| d["writer"]["alive"] == true)
        });
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
    assert_eq!(d["descr"], "'<f4'");
    assert_eq!(d["capacity"], 1024);
    assert_eq!(d["schema"], "imu/v2");
    assert_eq!(d["persist"], true);
    assert_eq!(d["mode"], "0600");
    assert_eq!(d["len"], 0);
    assert_eq!(d["state"], "unused"); // created, never claimed, not open anywhere
    assert_eq!(d["writer"]["claims"], 0);
    // The default: membarrier where this process may use it (see barrier.rs), else fence.
    let probe = format!("{name}-probe");
    let membarrier = shmchan::ChannelIo::<u8>::create(
        &probe,
        shmchan::Options::new().barrier(shmchan::Barrier::Membarrier),
    )
    .is_ok();
    assert_eq!(
        d["barrier"],
        if membarrier { "membarrier" } else { "fence" }
    );

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
fn create_with_a_fence_barrier() {
    let name = unique("fence");
    let o = run(&[
        "create",
        &name,
        "--type",
        "u64",
        "--capacity",
        "512",
        "--barrier",
        "fence",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let i = json(&run(&["inspect", &name, "--json"]));
    assert_eq!(i["detail"]["barrier"], "fence");
    let text = String::from_utf8_lossy(&run(&["inspect", &name]).stdout).into_owned();
    assert!(text.lines().any(|l| l == "barrier      fence"), "{text}");
    assert!(text.lines().any(|l| l == "descr        '<u8'"), "{text}");
    // It carries data like any other.
    let mut send = spawn(&["send", &name, "--format", "text"], Stdio::piped());
    send.stdin.take().unwrap().write_all(b"7 8").unwrap();
    assert!(finish(send).status.success());
    let r = run(&["recv", &name, "--format", "text"]);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "7\n8\n");
    assert!(run(&["rm", &name]).status.success());
    let bad = run(&[
        "create",
        &name,
        "--type",
        "u64",
        "--capacity",
        "512",
        "--barrier",
        "x",
    ]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad --barrier is a usage error"
    );
}

#[test]
fn garbage_under_a_channel_name() {
    let _own = own_dir("junk"); // it runs gc
    let name = unique("junk");
    let dir = channel_dir(&name);
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
        detail(&name).is_some_and(|d| d["len"] == 24)
    });
    let recv = spawn(&["recv", &name], Stdio::null());
    eventually("the reader to claim", || {
        detail(&name).is_some_and(|d| d["reader"]["alive"] == true)
    });
    let killed = Instant::now();
    send.kill().unwrap();
    send.wait().unwrap();
    drop(stdin);
    let r = finish(recv);
    let took = killed.elapsed();
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("the writer went away without closing the channel"),
        "{}",
        stderr(&r)
    );
    assert_eq!(r.stdout, b"all of this is committed");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(stderr(&r).contains("--resume"), "{}", stderr(&r));
    // Left as it is for a restarted writer: not closed by the reader, nothing in use.
    let d = detail(&name).expect("the channel is left for resuming");
    assert_eq!(d["state"], "stale");
    assert_eq!(d["reader_closed"], false);
    assert!(run(&["rm", &name]).status.success());
}

#[test]
fn kill_recv_while_send_waits() {
    let name = unique("killrecv");
    let input = tmpfile("big");
    std::fs::write(&input, random_bytes(1 << 20, 7)).unwrap();
    // The reader claims but its output pipe is never read: it stalls, then the ring fills.
    let mut recv = spawn(&["recv", &name, "--capacity", "4096"], Stdio::null());
    eventually("the reader to claim", || {
        detail(&name).is_some_and(|d| d["reader"]["alive"] == true)
    });
    let send = spawn(&["send", &name, input.to_str().unwrap()], Stdio::null());
    eventually("the ring to fill", || {
        detail(&name).is_some_and(|d| d["len"] == d["capacity"])
    });
    let killed = Instant::now();
    recv.kill().unwrap();
    recv.wait().unwrap();
    let s = finish(send);
    assert!(killed.elapsed() < Duration::from_secs(5));
    assert_eq!(s.status.code(), Some(1));
    assert!(
        stderr(&s).contains("the reader went away without closing the channel"),
        "{}",
        stderr(&s)
    );
    // Not aborted: a restarted reader and writer resume it.
    assert_eq!(detail(&name).expect("readable")["writer_state"], "open");
    let _ = std::fs::remove_file(input);
    assert!(run(&["rm", &name]).status.success());
}

#[test]
fn recv_into_a_closed_pipe_exits_quietly() {
    let name = unique("pipe");
    let input = tmpfile("pipein");
    std::fs::write(&input, random_bytes(8 << 20, 3)).unwrap();
    // A ring far smaller than the input: send cannot finish before recv quits.
    let mut recv = spawn(&["recv", &name, "--capacity", "65536"], Stdio::null());
    let send = spawn(
        &[
            "send",
            &name,
            input.to_str().unwrap(),
            "--capacity",
            "65536",
        ],
        Stdio::null(),
    );
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
    assert!(
        stderr(&r).contains("aborted: the input ends with 2 bytes"),
        "{}",
        stderr(&r)
    );
}

#[test]
fn an_element_split_across_reads_arrives_whole() {
    let name = unique("split");
    let mut send = spawn(&["send", &name, "--type", "u32"], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(&[7, 0]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50)); // two separate reads on the other side
    stdin.write_all(&[0, 0, 9, 0, 0, 0]).unwrap();
    drop(stdin);
    assert!(finish(send).status.success());
    let r = run(&["recv", &name, "--format", "text"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(String::from_utf8_lossy(&r.stdout), "7\n9\n");
}

#[test]
fn type_and_schema_of_an_existing_channel_are_checked() {
    let name = unique("typed");
    assert!(run(&[
        "create",
        &name,
        "--type",
        "u32",
        "--capacity",
        "64",
        "--schema",
        "a/v1"
    ])
    .status
    .success());
    let o = run(&["send", &name, "--type", "f32"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("holds u32, not f32"), "{}", stderr(&o));
    let o = run(&["recv", &name, "--schema", "a/v2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("schema tag"), "{}", stderr(&o));
    assert!(run(&["rm", &name]).status.success());
}

#[test]
fn a_failed_recv_leaves_the_output_file_alone() {
    let name = unique("keepfile");
    let out = tmpfile("keep");
    std::fs::write(&out, b"precious").unwrap();
    // The reader end is taken by a live recv: a second recv must fail before touching FILE.
    let first = spawn(&["recv", &name], Stdio::null());
    eventually("the reader to claim", || {
        detail(&name).is_some_and(|d| d["reader"]["alive"] == true)
    });
    let o = run(&["recv", &name, out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("held by"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let mut send = spawn(&["send", &name], Stdio::piped());
    drop(send.stdin.take());
    assert!(finish(send).status.success());
    assert!(finish(first).status.success());
    let _ = std::fs::remove_file(out);
}

#[test]
fn text_output_flows_before_the_stream_ends() {
    let name = unique("live");
    let mut send = spawn(
        &["send", &name, "--type", "f64", "--format", "text"],
        Stdio::piped(),
    );
    let mut stdin = send.stdin.take().unwrap();
    let mut recv = spawn(
        &["recv", &name, "--type", "f64", "--format", "text"],
        Stdio::null(),
    );
    stdin.write_all(b"1.25\n").unwrap();
    stdin.flush().unwrap();
    // The sender is still running: the line must arrive anyway.
    let mut out = recv.stdout.take().unwrap();
    let mut got = [0u8; 5];
    let reader = std::thread::spawn(move || out.read_exact(&mut got).map(|()| got));
    let start = Instant::now();
    while !reader.is_finished() {
        assert!(
            start.elapsed() < LIMIT,
            "the line never arrived while the stream was open"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(&reader.join().unwrap().unwrap(), b"1.25\n");
    drop(stdin);
    assert!(finish(send).status.success());
    assert!(finish(recv).status.success());
}
