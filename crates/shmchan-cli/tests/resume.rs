//! Crash and restart from the shell: `send --resume` and `recv --resume` deliver a file
//! exactly once across kills, `--timeout` ends a wait for a peer that never comes, and a
//! send whose reader died leaves the channel resumable.
//!
//! Every child is waited for with a time limit (see `common`).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// One side of a stream in the storm: its arguments and its running process, if any.
struct Side {
    args: Vec<String>,
    child: Option<Child>,
    done: bool,
    starts: u32,
}

impl Side {
    fn new(args: &[&str]) -> Side {
        Side {
            args: args.iter().map(|s| s.to_string()).collect(),
            child: None,
            done: false,
            starts: 0,
        }
    }

    /// Starts the command, with --resume after its first start.
    fn start(&mut self) {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        if self.starts > 0 {
            args.push("--resume");
        }
        self.starts += 1;
        self.child = Some(spawn(&args, Stdio::null()));
    }

    /// If it exited: 0 is done; 1 (stopped short: its peer died) starts it again with
    /// --resume unless `peer_done`. Anything else fails the test.
    fn reap(&mut self, peer_done: bool) {
        let Some(c) = self.child.as_mut() else { return };
        let Some(status) = c.try_wait().expect("try_wait") else {
            return;
        };
        let out = self
            .child
            .take()
            .unwrap()
            .wait_with_output()
            .expect("output");
        match status.code() {
            Some(0) => self.done = true,
            Some(1) if peer_done => self.done = true,
            Some(1) => self.start(),
            other => panic!(
                "{:?} exited {other:?}: {}",
                self.args,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// SIGKILL if running (then to be started again). Returns whether it killed.
    fn kill(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        if c.try_wait().expect("try_wait").is_some() {
            self.child = Some(c); // exited meanwhile: reap decides
            return false;
        }
        c.kill().expect("kill");
        c.wait().expect("wait");
        true
    }
}

/// One stream of `len` bytes, its send and recv killed at random moments and restarted with
/// --resume until the output is complete; returns the kills, and of them the kills of a
/// recv that had written bytes it had not consumed.
fn storm_round(rng: &mut Rng, len: usize, round_limit: Duration) -> (u32, u32) {
    let name = unique("storm");
    let data = random_bytes(len, rng.below(1 << 30) + 1);
    let input = tmpfile("storm-in");
    let output = tmpfile("storm-out");
    std::fs::write(&input, &data).unwrap();
    // A persistent channel, made first: each side starts with the channel in place.
    let c = run(&["create", &name, "--type", "u8", "--capacity", "4096"]);
    assert!(c.status.success(), "{}", stderr(&c));
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let mut send = Side::new(&["send", &name, i, "--quiet"]);
    let mut recv = Side::new(&["recv", &name, o, "--quiet"]);
    send.start();
    recv.start();
    let start = Instant::now();
    let mut kills = (0, 0);
    while !(send.done && recv.done) {
        assert!(
            start.elapsed() < round_limit,
            "round did not finish in {round_limit:?} ({} kills)",
            kills.0
        );
        // A random moment: the test's own pacing (the commands never sleep).
        std::thread::sleep(Duration::from_micros(rng.below(12_000)));
        recv.reap(send.done);
        send.reap(recv.done);
        let to_recv = rng.below(2) == 0;
        let victim = if to_recv { &mut recv } else { &mut send };
        if victim.done || !victim.kill() {
            continue;
        }
        kills.0 += 1;
        if to_recv {
            // Bytes the dead recv wrote but did not consume (the channel is of u8 and
            // started at 0): the restarted one must cut them off.
            let head = detail(&name).map_or(0, |d| d["head"].as_u64().unwrap());
            let len = std::fs::metadata(&output).map_or(0, |m| m.len());
            if len > head {
                kills.1 += 1;
            }
        }
        victim.start();
    }
    let got = std::fs::read(&output).unwrap();
    assert!(
        got == data,
        "after {} kills the output differs: {} bytes vs {}; first difference at {:?}",
        kills.0,
        got.len(),
        data.len(),
        got.iter().zip(&data).position(|(a, b)| a != b)
    );
    eprintln!(
        "round: {len} bytes, {} kills ({} cut), {} send and {} recv starts, {:?}",
        kills.0,
        kills.1,
        send.starts,
        recv.starts,
        start.elapsed()
    );
    assert!(run(&["rm", &name]).status.success());
    for p in [input, output] {
        let _ = std::fs::remove_file(&p);
    }
    kills
}

#[test]
fn kill_storm_send_and_recv_resume_exactly_once() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill storm seed {seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut kills, mut cuts, mut bytes, mut rounds) = (0, 0, 0, 0);
    // As many kills as about 10 s allow, at least 30 (no new stream after 10 s: a stream
    // takes well under a second, so the whole stays near 20 s even on a loaded machine).
    while kills < 150 && started.elapsed() < Duration::from_secs(10) {
        let len = 2_000_000 + rng.below(2_000_000) as usize;
        let (k, c) = storm_round(&mut rng, len, LIMIT);
        kills += k;
        cuts += c;
        bytes += len;
        rounds += 1;
    }
    eprintln!(
        "kill storm: {kills} kills ({cuts} of a recv with written, unconsumed bytes) over \
         {rounds} streams, {bytes} bytes, {:?}",
        started.elapsed()
    );
    assert!(kills >= 30, "only {kills} kills in {rounds} rounds");
}

#[test]
fn send_resumes_after_its_reader_died() {
    let name = unique("readerdied");
    let data = random_bytes(2_000_003, 11);
    let input = tmpfile("rd-in");
    let output = tmpfile("rd-out");
    std::fs::write(&input, &data).unwrap();
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    // The reader writes into a pipe nobody reads: it stalls, the ring fills.
    let mut recv = spawn(&["recv", &name, "--capacity", "4096"], Stdio::null());
    eventually("the reader to claim", || {
        detail(&name).is_some_and(|d| d["reader"]["alive"] == true)
    });
    let send = spawn(&["send", &name, i], Stdio::null());
    eventually("the ring to fill", || {
        detail(&name).is_some_and(|d| d["len"] == d["capacity"] && d["head"] != 0)
    });
    recv.kill().unwrap();
    let stalled = recv.wait_with_output().unwrap();
    let s = finish(send);
    assert_eq!(s.status.code(), Some(1), "{}", stderr(&s));
    let e = stderr(&s);
    assert!(
        e.contains("reader went away") && e.contains("--resume"),
        "{e}"
    );
    let d = detail(&name).expect("left for resuming");
    assert_eq!(d["writer_state"], "open", "not aborted");
    let head = d["head"].as_u64().unwrap() as usize;
    // What the dead reader consumed went to its pipe; a new reader goes on from there.
    let recv = spawn(&["recv", &name, o], Stdio::null());
    let send = spawn(&["send", &name, i, "--resume"], Stdio::null());
    let s = finish(send);
    assert!(s.status.success(), "send --resume: {}", stderr(&s));
    let r = finish(recv);
    assert!(r.status.success(), "recv: {}", stderr(&r));
    let got = std::fs::read(&output).unwrap();
    // Into a pipe, a write the kill cut short leaves bytes that were never consumed: at most
    // one piece (64 KiB) more than the channel counts as consumed.
    let piped = stalled.stdout.len();
    assert!(
        piped >= head && piped <= head + (64 << 10),
        "{piped} vs {head}"
    );
    assert!(stalled.stdout == data[..piped]);
    assert!(got == data[head..], "{} bytes from {head}", got.len());
    assert!(gone(&name));
    for p in [input, output] {
        let _ = std::fs::remove_file(&p);
    }
}

#[test]
fn a_stdin_send_cannot_resume() {
    let name = unique("stdin-resume");
    let o = run(&["send", &name, "--resume"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("stdin cannot resume"), "{}", stderr(&o));
    assert!(gone(&name), "nothing was created");
}

#[test]
fn timeouts_end_a_wait_for_a_peer_that_never_comes() {
    let name = unique("timeout-recv");
    let t = Instant::now();
    let o = run(&["recv", &name, "--timeout", "0.5"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--timeout"), "{}", stderr(&o));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(run(&["rm", &name]).status.success());

    // A writer with more than the ring holds and no reader: it waits for room, then stops,
    // and what it committed is not aborted.
    let name = unique("timeout-send");
    let input = tmpfile("to-in");
    std::fs::write(&input, random_bytes(100_000, 5)).unwrap();
    let i = input.to_str().unwrap();
    let t = Instant::now();
    let o = run(&["send", &name, i, "--capacity", "4096", "--timeout", "0.5"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no room came"), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let d = detail(&name).expect("left for resuming");
    assert_eq!(d["writer_state"], "open");
    assert_eq!(d["len"], 4096);
    let bad = run(&["recv", &name, "--timeout", "-1"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad --timeout is a usage error"
    );
    assert!(run(&["rm", &name]).status.success());
    let _ = std::fs::remove_file(input);
}

#[test]
fn recv_resume_cuts_what_was_written_but_not_consumed() {
    let name = unique("cut");
    let output = tmpfile("cut-out");
    let o = output.to_str().unwrap();
    let mut send = spawn(&["send", &name, "--type", "u32"], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(&[1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
    stdin.flush().unwrap();
    eventually("the writer to commit", || {
        detail(&name).is_some_and(|d| d["tail"] == 2)
    });
    // A recv that consumed the two items, then was killed: its file and record stay.
    let mut first = spawn(&["recv", &name, o], Stdio::null());
    eventually("the reader to consume", || {
        detail(&name).is_some_and(|d| d["head"] == 2)
    });
    first.kill().unwrap();
    first.wait().unwrap();
    // As if it had written a piece it did not get to consume: resume cuts it off.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&output)
        .unwrap();
    f.write_all(&[9, 9, 9, 9, 9, 9]).unwrap();
    drop(f);
    let recv = spawn(&["recv", &name, o, "--resume"], Stdio::null());
    eventually("the reader to claim", || {
        detail(&name).is_some_and(|d| d["reader"]["alive"] == true)
    });
    stdin.write_all(&[3, 0, 0, 0]).unwrap();
    drop(stdin);
    assert!(finish(send).status.success());
    let r = finish(recv);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(
        std::fs::read(&output).unwrap(),
        [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
    );
    // Read to its end and removed: a further resume has nothing to do and leaves the file.
    let again = run(&["recv", &name, o, "--resume"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("nothing to resume"),
        "{}",
        stderr(&again)
    );
    assert!(gone(&name));
    assert_eq!(std::fs::read(&output).unwrap().len(), 12);
    let _ = std::fs::remove_file(output);
}

#[test]
fn a_failed_resume_leaves_the_channel_alone() {
    let name = unique("badresume");
    let data = random_bytes(10_000, 21);
    let input = tmpfile("br-in");
    let short = tmpfile("br-short");
    let output = tmpfile("br-out");
    std::fs::write(&input, &data).unwrap();
    std::fs::write(&short, &data[..100]).unwrap();
    let (i, sh, o) = (
        input.to_str().unwrap(),
        short.to_str().unwrap(),
        output.to_str().unwrap(),
    );
    // No reader: the send commits a ring's worth and stops (--timeout), resumable.
    let s = run(&["send", &name, i, "--capacity", "4096", "--timeout", "0.3"]);
    assert_eq!(s.status.code(), Some(1), "{}", stderr(&s));
    // Not the file that was sent: refused, and the stream is neither closed nor aborted.
    let bad = run(&["send", &name, sh, "--resume"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("not the file that was sent"),
        "{}",
        stderr(&bad)
    );
    let d = detail(&name).expect("still there");
    assert_eq!(
        (d["writer_state"].as_str(), d["tail"].as_u64()),
        (Some("open"), Some(4096))
    );
    // A recv --resume onto something that is not a regular file: a usage error, no claim.
    let dev = run(&["recv", &name, "/dev/null", "--resume"]);
    assert_eq!(dev.status.code(), Some(2), "{}", stderr(&dev));
    assert_eq!(detail(&name).unwrap()["reader"]["claims"], 0);
    // The right file resumes, and the stream arrives whole.
    let recv = spawn(&["recv", &name, o], Stdio::null());
    let s = finish(spawn(&["send", &name, i, "--resume"], Stdio::null()));
    assert!(s.status.success(), "{}", stderr(&s));
    let r = finish(recv);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(std::fs::read(&output).unwrap() == data);
    for p in [input, short, output] {
        let _ = std::fs::remove_file(&p);
    }
}

/// The extended attribute `name` of `path`, removed (None if it has none).
fn take_xattr(path: &std::path::Path, name: &std::ffi::CStr) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and live for the call; the pointer and length
    // describe `buf`, which the call may fill.
    let n = unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 256) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    // SAFETY: both strings are NUL-terminated and live for the call.
    assert_eq!(unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) }, 0);
    Some(buf)
}

#[test]
fn the_start_record_beside_the_file_is_read_too() {
    let name = unique("sidecar");
    let output = tmpfile("sc-out");
    let o = output.to_str().unwrap();
    let mut send = spawn(&["send", &name], Stdio::piped());
    let mut stdin = send.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(b"abc").unwrap();
    stdin.flush().unwrap();
    let mut first = spawn(&["recv", &name, o], Stdio::null());
    eventually("the reader to consume", || {
        detail(&name).is_some_and(|d| d["head"] == 3)
    });
    first.kill().unwrap();
    first.wait().unwrap();
    // Where the file system has no extended attributes, the record is a file beside FILE:
    // move it there, as such a file system would have it.
    let rec = take_xattr(&output, c"user.shmchan.start").expect("recorded in the xattr");
    assert!(rec.starts_with(b"shmchan-start 1 "), "{rec:?}");
    let mut side = output.as_os_str().to_owned();
    side.push(".shmchan-start");
    std::fs::write(&side, &rec).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&output)
        .unwrap()
        .write_all(b"XYZ")
        .unwrap();
    let recv = spawn(&["recv", &name, o, "--resume"], Stdio::null());
    stdin.write_all(b"def").unwrap();
    drop(stdin);
    assert!(finish(send).status.success());
    let r = finish(recv);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&output).unwrap(), b"abcdef");
    for p in [output, side.into()] {
        let _ = std::fs::remove_file(&p);
    }
}

#[test]
fn a_resume_asks_for_the_capacity_it_asked_for() {
    let name = unique("rescap");
    let data = random_bytes(10_000, 33);
    let input = tmpfile("rc-in");
    let output = tmpfile("rc-out");
    std::fs::write(&input, &data).unwrap();
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    // No reader: the send commits a ring's worth (4096 bytes, one page) and stops, resumable.
    let s = run(&["send", &name, i, "--capacity", "4096", "--timeout", "0.3"]);
    assert_eq!(s.status.code(), Some(1), "{}", stderr(&s));
    // Another capacity is refused, naming both, and leaves the channel as it was (the
    // --timeout only bounds a command that would wait, were it not refused).
    for cmd in ["send", "recv"] {
        let file = if cmd == "send" { i } else { o };
        let side = [cmd, &name, file, "--resume", "--capacity", "8192"];
        let side = [&side[..], &["--timeout", "0.3"]].concat();
        let bad = run(&side);
        assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
        let e = stderr(&bad);
        assert!(
            e.contains(&format!("channel '{name}' exists with capacity 4096"))
                && e.contains("asks for 8192")
                && e.contains(&format!(
                    "drop --capacity to use it as it is, or `shmchan rm {name}`"
                )),
            "{e}"
        );
        let d = detail(&name).expect("still there");
        assert_eq!(
            (d["tail"].as_u64(), d["writer"]["claims"].as_u64()),
            (Some(4096), Some(1))
        );
        assert_eq!(d["reader"]["claims"], 0);
    }
    assert!(!output.exists(), "a refused recv made its FILE");
    // The capacity it asked for before, or one that rounds to it, opens: the stream arrives
    // whole.
    let recv = spawn(&["recv", &name, o, "--capacity", "4000"], Stdio::null());
    let s = finish(spawn(
        &["send", &name, i, "--resume", "--capacity", "4096"],
        Stdio::null(),
    ));
    assert!(s.status.success(), "{}", stderr(&s));
    let r = finish(recv);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(std::fs::read(&output).unwrap() == data);
    assert!(gone(&name));
    for p in [input, output] {
        let _ = std::fs::remove_file(&p);
    }
}
