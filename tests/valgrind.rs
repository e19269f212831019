//! The library under valgrind's memcheck: a program that streams through a channel (with
//! waits on both sides, so the doorbells, `poll` and the pidfd are used), peeks and reserves
//! in place, and opens a channel that does not exist, must run to the end with no memcheck
//! error. (rustix's own backend once made every such program die with SIGSEGV under
//! valgrind, rustix #1559: shmchan takes the page size from libc.)
//!
//! Its own harness (`harness = false`): started with `SHMCHAN_VALGRIND_CHILD` set, the binary
//! runs the workload; otherwise it runs itself under `valgrind --error-exitcode=99`. Without
//! valgrind the test is ignored, unless `SHMCHAN_REQUIRE_VALGRIND` is set (as CI sets it),
//! which makes that a failure.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use shmchan::{ChannelIo, ErrorKind, Options, WaitStrategy};
use wait_timeout::ChildExt;

const CHILD: &str = "SHMCHAN_VALGRIND_CHILD";
const ITEMS: u64 = 20_000;

/// The workload: a writer thread and this thread's reader stream `ITEMS` items through a
/// small ring, both sleeping often; then zero-copy, then an open error.
fn workload() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("valgrind-{}", std::process::id());
    let opts = Options::new()
        .capacity(512)
        .wait_strategy(WaitStrategy::Sleep);
    let chan = ChannelIo::<u64>::create(&name, opts)?;
    let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    let writer = std::thread::spawn(move || -> Result<_, shmchan::Error> {
        let batch: Vec<u64> = (0..100).collect();
        for i in 0..ITEMS / 100 {
            let items: Vec<u64> = batch.iter().map(|b| i * 100 + b).collect();
            w.blocking_put(&items)?;
        }
        Ok(w)
    });
    let mut buf = vec![0u64; 333];
    let mut next = 0;
    while next < ITEMS {
        let n = r.blocking_get_some(&mut buf)?;
        for v in &buf[..n] {
            if *v != next {
                return Err(format!("expected {next}, got {v}").into());
            }
            next += 1;
        }
    }
    let mut w = writer.join().map_err(|_| "writer panicked")??;
    let mut slots = w.blocking_reserve(3)?;
    slots.copy_from_slice(&[7, 8, 9]);
    slots.commit_all();
    let view = r.blocking_peek(3)?;
    if *view != [7, 8, 9] {
        return Err(format!("peeked {:?}", &*view).into());
    }
    view.consume_all();
    w.close();
    match ChannelIo::<u64>::open(&format!("{name}-absent")) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        other => return Err(format!("open of a missing channel: {other:?}").into()),
    }
    println!("streamed {next}");
    Ok(())
}

/// Runs this binary's workload under memcheck.
fn memcheck() -> Result<(), Failed> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new("valgrind")
        .args(["--error-exitcode=99", "--quiet"])
        .arg(exe)
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting valgrind: {e}"))?;
    // The watchdog: memcheck runs the debug build some 50× slower, a few seconds here.
    let status = match child.wait_timeout(Duration::from_secs(600)) {
        Ok(Some(s)) => s,
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the program under valgrind did not finish within 600 s".into());
        }
    };
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        return Err(format!("valgrind: {status}\nstdout: {out}\nstderr: {err}").into());
    }
    if out.trim() != format!("streamed {ITEMS}") {
        return Err(format!("the workload said {out:?}; stderr: {err}").into());
    }
    Ok(())
}

fn valgrind_present() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        if let Err(e) = workload() {
            eprintln!("workload: {e}");
            std::process::exit(3);
        }
        return;
    }
    let args = Arguments::from_args();
    let present = valgrind_present();
    let required = std::env::var_os("SHMCHAN_REQUIRE_VALGRIND").is_some();
    let trial = if present || !required {
        Trial::test("memcheck_streaming", memcheck).with_ignored_flag(!present)
    } else {
        Trial::test("memcheck_streaming", || {
            Err("SHMCHAN_REQUIRE_VALGRIND is set, and there is no valgrind".into())
        })
    };
    libtest_mimic::run(&args, vec![trial]).exit();
}
