//! The harness: children started as roles of this binary (and the role dispatch), time
//! limits on every wait, and what a child printed.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use libtest_mimic::Failed;
use shmchan::End;
use shmchan_testkit::watchdog;
use wait_timeout::ChildExt;

use crate::barrier::role_no_membarrier;
use crate::closing::role_abort_empty;
use crate::collecting::role_gc;
use crate::describing::{role_raw_described_reader, role_raw_described_writer};
use crate::forking::{role_fork_drop, role_fork_guard, role_fork_use};
use crate::messages::{role_message_reader, role_message_writer};
use crate::ownership::{role_create_persist, role_open_report};
use crate::peer_death::role_restart_writer;
use crate::roles::{role_hold, role_stream_reader, role_stream_writer};
use crate::streaming::role_records_writer;
use crate::waking::role_pingpong;

/// What a test returns: `Err` carries the failure's message.
pub type R = Result<(), Failed>;

/// The environment variable that names the role a child plays (see [`role_main`]).
pub const ROLE: &str = "SHMCHAN_TEST_ROLE";

/// Only a safety net for a parent that died: the parent's watchdogs bound every wait, and a
/// long stress child may run for minutes on a slow machine while it makes progress.
pub const CHILD_ALARM_SECS: u32 = 900;

/// How long a test waits for a child before calling it a hang: 60 s, or
/// `SHMCHAN_TEST_TIMEOUT` seconds (`scripts/control.sh` shortens it, since there the hang is
/// the expected outcome).
pub static TIMEOUT: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    Duration::from_secs(
        std::env::var("SHMCHAN_TEST_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
});

/// A child process playing a role; one still running when dropped is killed.
pub struct Peer {
    child: Child,
    role: String,
}

impl Peer {
    /// Starts this test binary as `role` with `env` pairs.
    pub fn spawn(role: &str, env: &[(&str, String)]) -> Peer {
        Peer::start(role, Peer::command(role, env))
    }

    /// Like [`spawn`](Self::spawn), as user and group 65534 (nobody; needs root).
    pub fn spawn_as_nobody(role: &str, env: &[(&str, String)]) -> Peer {
        let mut cmd = Peer::command(role, env);
        cmd.uid(65534).gid(65534);
        Peer::start(role, cmd)
    }

    /// This test binary as `role`, with `env` pairs, its stdin and stdout piped.
    fn command(role: &str, env: &[(&str, String)]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `cmd`, which plays `role`.
    fn start(role: &str, mut cmd: Command) -> Peer {
        Peer {
            child: cmd.spawn().expect("spawn child"),
            role: role.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child's first stdout line (e.g. "ready").
    pub fn read_line(&mut self) -> Result<String, Failed> {
        let out = self.child.stdout.take().ok_or("stdout already taken")?;
        let role = self.role.clone();
        let (line, out) = watchdog(*TIMEOUT, &format!("{role}: first line"), move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            (line, r.into_inner())
        })?;
        self.child.stdout = Some(out);
        Ok(line.trim().to_string())
    }

    /// Waits for exit; returns (exit code, rest of stdout).
    pub fn finish(mut self) -> Result<(i32, String), Failed> {
        drop(self.child.stdin.take());
        let status = match self
            .child
            .wait_timeout(*TIMEOUT)
            .map_err(|e| e.to_string())?
        {
            Some(s) => s,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(
                    format!("{}: did not exit within {:?} (hang)", self.role, *TIMEOUT).into(),
                );
            }
        };
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let code = status.code().unwrap_or(-1);
        Ok((code, out.trim().to_string()))
    }

    /// Waits for a successful exit and returns stdout.
    pub fn success(self) -> Result<String, Failed> {
        let role = self.role.clone();
        let (code, out) = self.finish()?;
        if code != 0 {
            return Err(format!("{role} exited with {code}; stdout: {out}").into());
        }
        Ok(out)
    }

    /// Like [`success`](Self::success) for a long-running child that prints a progress line
    /// ("at N") now and then: it may run as long as it keeps making progress, and is called
    /// hung when no line came for [`TIMEOUT`]. A lost wakeup stops a child for good; a slow
    /// machine (a loaded CI VM, where one `membarrier(2)` can take milliseconds) only slows
    /// it. Progress lines are left out of the returned output.
    pub fn success_while_progressing(mut self) -> Result<String, Failed> {
        let out = self.child.stdout.take().ok_or("stdout already taken")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut kept = Vec::new();
        loop {
            match rx.recv_timeout(*TIMEOUT) {
                Ok(line) if line.starts_with("at ") => {}
                Ok(line) => kept.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: did not exit, no progress for {:?} (hang)",
                        self.role, *TIMEOUT
                    )
                    .into());
                }
            }
        }
        let role = self.role.clone();
        let (code, _) = self.finish()?;
        let out = kept.join("\n");
        if code != 0 {
            return Err(format!("{role} exited with {code}; stdout: {out}").into());
        }
        Ok(out)
    }

    /// The child's stdout lines from now on, read by a thread of their own (so that the
    /// child never blocks on a full pipe); the channel disconnects at its exit.
    pub fn lines(&mut self) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        if let Some(out) = self.child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        rx
    }

    pub fn kill9(&mut self) {
        // std's kill sends SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test that fails while a child still runs (a hang, an early `?`) must not leave it behind
/// (it would hold its channel's files until its alarm): kill it.
impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// `Ok` if `cond` holds, else a failure saying `what`.
pub fn check(cond: bool, what: impl Into<String>) -> R {
    if cond {
        Ok(())
    } else {
        Err(Failed::from(what.into()))
    }
}

/// The number on a child's "KEY N" output line (0 if absent).
pub fn stat(out: &str, key: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// First line of a child's output (after an optional "claimed"), and its sleep count.
pub fn report(out: &str) -> (&str, u64) {
    let first = out
        .lines()
        .find(|l| *l != "claimed" && !l.starts_with("at "))
        .unwrap_or("");
    let sleeps = out
        .lines()
        .find_map(|l| l.strip_prefix("sleeps "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (first, sleeps)
}

/// Whether the channel `name` has no files left.
pub fn gone(name: &str) -> bool {
    !shmchan::channel_dir(name).exists()
}

/// The child's environment variable `k`; a child without it panics.
pub fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"))
}

/// [`env`] as a number.
pub fn env_u64(k: &str) -> u64 {
    env(k)
        .parse()
        .unwrap_or_else(|_| panic!("{k} is not a number"))
}

/// Plays `role` in this child process; returns its exit code: 0, or 3 with the error on
/// stderr.
pub fn role_main(role: &str) -> i32 {
    // SAFETY: alarm(2) only arms a timer; its default action ends this child if a test bug
    // would leave it waiting forever.
    unsafe { libc::alarm(CHILD_ALARM_SECS) };
    let r = match role {
        "stream_writer" => role_stream_writer(),
        "stream_reader" => role_stream_reader(),
        "hold_writer" => role_hold(End::Writer),
        "hold_reader" => role_hold(End::Reader),
        "open_report" => role_open_report(),
        "create_persist" => role_create_persist(),
        "abort_empty" => role_abort_empty(),
        "records_writer" => role_records_writer(),
        "raw_described_writer" => role_raw_described_writer(),
        "raw_described_reader" => role_raw_described_reader(),
        "fork_guard" => role_fork_guard(),
        "fork_use" => role_fork_use(),
        "fork_drop" => role_fork_drop(),
        "restart_writer" => role_restart_writer(),
        "message_writer" => role_message_writer(),
        "message_reader" => role_message_reader(),
        "pingpong" => role_pingpong(),
        "no_membarrier" => role_no_membarrier(),
        "gc" => role_gc(),
        other => Err(format!("unknown role {other}")),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child {role}: {e}");
            3
        }
    }
}
