//! What the test programs share: the binary, the channel directory, children with time
//! limits, and small helpers.
#![allow(dead_code)] // each test program uses its own part

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use shmchan_testkit::{unique, Rng};
use wait_timeout::ChildExt;

pub const LIMIT: Duration = Duration::from_secs(60);

/// The channel directory of this test run (passed to every child as `SHMCHAN_DIR`), or the
/// current test's own one (see [`own_dir`]).
pub fn dir() -> PathBuf {
    if let Some(d) = OWN_DIR.with(|o| o.borrow().clone()) {
        return d;
    }
    shared_dir().to_path_buf()
}

fn shared_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("SHMCHAN_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        let d = PathBuf::from("/dev/shm/shmchan-clitest");
        let _ = std::fs::create_dir(&d);
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777));
        d
    })
}

thread_local! {
    static OWN_DIR: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Gives the calling test (its thread) a channel directory of its own until the guard drops,
/// for tests that run `gc`: in the shared directory, gc would also take what the tests running
/// alongside leave between their steps.
pub fn own_dir(tag: &str) -> OwnDir {
    let d = shared_dir().join(unique(tag));
    std::fs::create_dir(&d).expect("create the test's own directory");
    OWN_DIR.with(|o| *o.borrow_mut() = Some(d.clone()));
    OwnDir(d)
}

pub struct OwnDir(pub PathBuf);

impl Drop for OwnDir {
    fn drop(&mut self) {
        OWN_DIR.with(|o| *o.borrow_mut() = None);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shmchan"));
    c.env("SHMCHAN_DIR", dir());
    c
}

pub fn tmpfile(tag: &str) -> PathBuf {
    std::env::temp_dir().join(unique(tag))
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    Rng(seed | 1).bytes(n)
}

/// Waits for `child` with the time limit and collects its output.
pub fn finish(mut child: Child) -> Output {
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

pub fn run(args: &[&str]) -> Output {
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

pub fn spawn(args: &[&str], stdin: Stdio) -> Child {
    bin()
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

pub fn channel_dir(name: &str) -> PathBuf {
    dir().join(format!("shmchan.{name}"))
}

pub fn gone(name: &str) -> bool {
    !channel_dir(name).exists()
}

/// `shmchan inspect NAME --json`'s detail object, if the channel is readable.
pub fn detail(name: &str) -> Option<serde_json::Value> {
    let o = run(&["inspect", name, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    (v["ok"] == true).then(|| v["detail"].clone())
}

/// Polls `cond` (a test-side wait for another process to reach a state; bounded).
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
