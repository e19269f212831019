//! Two bridge processes on 127.0.0.1 with explicit endpoints (no multicast): the push reads
//! a local channel, the pull writes a channel of another name on the same host (standing
//! for the far one). Every item is checked; every test has a watchdog.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use shmchan::{ChannelIo, Error, ErrorKind, Options};
use shmchan_testkit::{unique, Deadline};

mod crash;
mod hostile;
mod plain;
mod refusal;
mod stall;

const TIMEOUT: Duration = Duration::from_secs(120);
/// How long a whole test may take (twice the limit on one wait): past it, its [`Deadline`]
/// aborts the test binary (a hang fails instead of hanging).
const TEST_LIMIT: Duration = Duration::from_secs(240);

/// Removes the channels of a test when it ends (aborted or dead streams stay otherwise).
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = ChannelIo::remove(name);
        }
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

/// A bridge process; killed when dropped.
struct Bridge {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bridge {
    fn spawn(args: &[&str]) -> Bridge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shmchan-bridge"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("BRIDGE_STDERR").is_some() {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .spawn()
            .expect("the bridge starts");
        let out: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Bridge { child, lines }
    }

    /// The next line the bridge prints; panics after TIMEOUT.
    fn expect(&self, want: &str) {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(l) if l == want => {}
            other => panic!("bridge said {other:?}, expected {want:?}"),
        }
    }

    /// Exit status and stderr, waiting at most TIMEOUT.
    fn finish(mut self) -> (bool, String) {
        use wait_timeout::ChildExt;
        let status = self.child.wait_timeout(TIMEOUT).expect("wait");
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        match status {
            Some(status) => (status.success(), err),
            None => panic!("the bridge did not exit within {TIMEOUT:?}; it said:\n{err}"),
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A push of `local` listening on `port`, and a pull into `far` connecting to it, started
/// in the order given; both have said "ready" on return.
fn bridges(local: &str, far: &str, key: &str, push_first: bool) -> (Bridge, Bridge) {
    bridges_with(local, far, key, push_first, [&[], &[]])
}

/// As `bridges`, with more arguments for the push and the pull.
fn bridges_with(
    local: &str,
    far: &str,
    key: &str,
    push_first: bool,
    [push_args, pull_args]: [&[&str]; 2],
) -> (Bridge, Bridge) {
    let port = free_port();
    let ep = format!("tcp/127.0.0.1:{port}");
    let with = |a: &[&str], more: &[&str]| Bridge::spawn(&[a, more].concat());
    let push = || with(&["push", local, "--key", key, "--listen", &ep], push_args);
    let pull = || with(&["pull", key, "--into", far, "--connect", &ep], pull_args);
    if push_first {
        let p = push();
        p.expect("ready");
        let q = pull();
        q.expect("ready");
        (p, q)
    } else {
        let q = pull();
        q.expect("ready");
        let p = push();
        p.expect("ready");
        (p, q)
    }
}

/// A push and a pull on one port, each restarted at will.
struct Pair {
    local: String,
    far: String,
    key: String,
    ep: String,
    push: Option<Bridge>,
    pull: Option<Bridge>,
    push_args: Vec<String>,
    pull_args: Vec<String>,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        Pair {
            local: unique(&format!("{tag}l")),
            far: unique(&format!("{tag}f")),
            key: unique(&format!("{tag}k")),
            ep: format!("tcp/127.0.0.1:{}", free_port()),
            push: None,
            pull: None,
            push_args: Vec::new(),
            pull_args: Vec::new(),
        }
    }

    /// Starts a push (killing one there was); it has said "ready" on return.
    fn start_push(&mut self) -> &Bridge {
        self.push = None;
        let mut args = vec![
            "push",
            &self.local,
            "--key",
            &self.key,
            "--listen",
            &self.ep,
        ];
        args.extend(self.push_args.iter().map(String::as_str));
        let b = Bridge::spawn(&args);
        b.expect("ready");
        self.push.insert(b)
    }

    /// Starts a pull (killing one there was); it has said "ready" on return.
    fn start_pull(&mut self) -> &Bridge {
        self.pull = None;
        let mut args = vec![
            "pull",
            &self.key,
            "--into",
            &self.far,
            "--connect",
            &self.ep,
        ];
        args.extend(self.pull_args.iter().map(String::as_str));
        let b = Bridge::spawn(&args);
        b.expect("ready");
        self.pull.insert(b)
    }

    fn finish_push(&mut self) -> (bool, String) {
        self.push.take().expect("a push").finish()
    }

    fn finish_pull(&mut self) -> (bool, String) {
        self.pull.take().expect("a pull").finish()
    }

    /// Waits for both bridges to exit, and checks that both exit 0 (the stream ended, and
    /// its end is in the far channel).
    fn both_exit_0(&mut self) {
        let (ok, err) = self.finish_push();
        assert!(ok, "push: {err}");
        let (ok, err) = self.finish_pull();
        assert!(ok, "pull: {err}");
    }

    fn cleanup(&self) -> Cleanup {
        Cleanup(vec![self.local.clone(), self.far.clone()])
    }
}

/// Writes `count` u64s (0, 1, 2, …) into `w` in batches of 1..=1000, carrying on across the
/// deaths of its reader (each is reported once), then closes; returns how many deaths it saw.
fn counting_writer(w: shmchan::WriterFront<u64>, count: u64) -> std::thread::JoinHandle<u64> {
    writer_thread(w, count, None)
}

/// [`counting_writer`] that holds the last item back until [`Held::release`]: the stream
/// cannot end before, so a test that kills or stops bridges mid-stream (at whatever speed
/// the stream runs) never kills one that has already finished.
fn held_writer(w: shmchan::WriterFront<u64>, count: u64) -> Held {
    let (tx, rx) = mpsc::channel();
    Held {
        release: tx,
        thread: writer_thread(w, count, Some(rx)),
    }
}

struct Held {
    release: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<u64>,
}

impl Held {
    /// Lets the writer put the last item and close; its handle, for [`all_arrived`].
    fn release(self) -> std::thread::JoinHandle<u64> {
        let _ = self.release.send(());
        self.thread
    }
}

fn writer_thread(
    mut w: shmchan::WriterFront<u64>,
    count: u64,
    hold: Option<mpsc::Receiver<()>>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let (mut next, mut deaths) = (0u64, 0u64);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        // The item held back (none without a hold).
        let held_from = if hold.is_some() { count - 1 } else { count };
        // Puts from..to, counting the reader's deaths.
        let put = |w: &mut shmchan::WriterFront<u64>, from: u64, to: u64, deaths: &mut u64| {
            let batch: Vec<u64> = (from..to).collect();
            let mut at = 0;
            while at < batch.len() {
                match w.blocking_put(&batch[at..]) {
                    Ok(()) => at = batch.len(),
                    Err(e) if e.kind() == ErrorKind::PeerGone => {
                        at += e.accepted();
                        *deaths += 1;
                    }
                    Err(e) => panic!("writer: {e}"),
                }
            }
        };
        while next < held_from {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = (1 + x % 1000).min(held_from - next);
            put(&mut w, next, next + b, &mut deaths);
            next += b;
        }
        if let Some(hold) = hold {
            hold.recv().expect("the test releases the writer");
            put(&mut w, next, count, &mut deaths);
        }
        w.close();
        deaths
    })
}

/// Reads the far channel `far` (waiting for it to be made) until the stream ends, checking
/// that item i is i, across the deaths of its writer (each reported once); returns the end,
/// the items read and the deaths seen. Sends its count on `progress` every 65 536 items.
fn counting_reader(
    far: String,
    progress: mpsc::Sender<u64>,
) -> std::thread::JoinHandle<(Error, u64, u64)> {
    std::thread::spawn(move || {
        ChannelIo::blocking_wait_created(&far, Some(TIMEOUT)).expect("the far channel");
        let chan = ChannelIo::<u64>::open(&far).expect("the far channel");
        let mut r = chan.reader().expect("its reader");
        let mut buf = vec![0u64; 4096];
        let (mut next, mut deaths) = (0u64, 0u64);
        loop {
            match r.blocking_get_some(&mut buf) {
                Ok(k) => {
                    for v in &buf[..k] {
                        assert_eq!(*v, next, "item {next}: nothing lost, nothing twice");
                        next += 1;
                        if next % 65_536 == 0 {
                            let _ = progress.send(next);
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::PeerGone => deaths += 1,
                Err(e) => return (e, next, deaths),
            }
        }
    })
}

/// Joins the far reader and the writer, and checks that every one of `count` items arrived,
/// then the close; the deaths the writer saw of its reader, and the reader of its writer.
fn all_arrived(
    reader: std::thread::JoinHandle<(Error, u64, u64)>,
    writer: std::thread::JoinHandle<u64>,
    count: u64,
) -> (u64, u64) {
    let (end, n, reader_deaths) = reader.join().unwrap();
    assert!(
        end.kind() == ErrorKind::Closed && end.remaining() == 0,
        "{end} after {n} items"
    );
    assert_eq!(n, count);
    (writer.join().unwrap(), reader_deaths)
}

/// Waits until the far reader has read `n` items (by its progress reports).
fn read_past(progress: &mpsc::Receiver<u64>, n: u64) {
    loop {
        match progress.recv_timeout(TIMEOUT) {
            Ok(k) if k >= n => return,
            Ok(_) => {}
            Err(e) => panic!("the far reader did not reach item {n}: {e}"),
        }
    }
}

/// Opens the far channel once the pull has made it ("started" on its stdout).
fn far_reader<T: bytemuck::Pod>(pull: &Bridge, far: &str) -> shmchan::ReaderFront<T> {
    pull.expect("started");
    ChannelIo::<T>::open(far)
        .expect("the far channel")
        .reader()
        .expect("its reader")
}

#[test]
fn u8_256_mib_in_both_start_orders() {
    let _w = Deadline::new(TEST_LIMIT, "u8_256_mib_in_both_start_orders");
    for push_first in [true, false] {
        let (local, far, key) = (unique("u8l"), unique("u8f"), unique("u8k"));
        let _c = Cleanup(vec![local.clone(), far.clone()]);
        let chan = ChannelIo::<u8>::create(&local, Options::new().capacity(1 << 20)).unwrap();
        let mut w = chan.writer().unwrap();
        let (push, pull) = bridges(&local, &far, &key, push_first);
        const TOTAL: usize = 256 << 20;
        let writer = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut at = 0usize;
            while at < TOTAL {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = ((at + i) % 251) as u8;
                }
                w.blocking_put(&buf).unwrap();
                at += buf.len();
            }
            w.close();
        });
        let mut r = far_reader::<u8>(&pull, &far);
        let mut buf = vec![0u8; 1 << 16];
        let mut at = 0usize;
        loop {
            match r.blocking_get_some(&mut buf) {
                Ok(k) => {
                    for (i, b) in buf[..k].iter().enumerate() {
                        assert_eq!(*b as usize, (at + i) % 251, "byte {}", at + i);
                    }
                    at += k;
                }
                Err(e) if e.kind() == ErrorKind::Closed && e.remaining() == 0 => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(at, TOTAL);
        writer.join().unwrap();
        let (ok, err) = pull.finish();
        assert!(ok, "pull: {err}");
        let (ok, err) = push.finish();
        assert!(ok, "push: {err}");
    }
}

/// Items 0..count in batches of 1..=1000 (single items included), checked one by one.
fn u64_stream(count: u64, push_first: bool, end: Option<&'static str>) -> Error {
    u64_stream_with(count, push_first, end, [&[], &[]], None)
}

/// As `u64_stream`, with more arguments for the push and the pull, and the far reader
/// getting `exact` items per call (at most 4096) instead of whatever is there.
fn u64_stream_with(
    count: u64,
    push_first: bool,
    end: Option<&'static str>,
    args: [&[&str]; 2],
    exact: Option<usize>,
) -> Error {
    let (local, far, key) = (unique("u64l"), unique("u64f"), unique("u64k"));
    let _c = Cleanup(vec![local.clone(), far.clone()]);
    let chan = ChannelIo::<u64>::create(&local, Options::new().capacity(1 << 16)).unwrap();
    let mut w = chan.writer().unwrap();
    let (push, pull) = bridges_with(&local, &far, &key, push_first, args);
    let writer = std::thread::spawn(move || {
        let mut next = 0u64;
        let mut batch = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        while next < count {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = (1 + x % 1000).min(count - next);
            batch.clear();
            batch.extend(next..next + b);
            w.blocking_put(&batch).unwrap();
            next += b;
        }
        match end {
            Some(reason) => w.abort(reason),
            None => w.close(),
        }
    });
    let mut r = far_reader::<u64>(&pull, &far);
    // The pull made the far channel, with fences (see `pull::start`).
    assert_eq!(
        ChannelIo::<u64>::open(&far).unwrap().barrier(),
        shmchan::Barrier::Fence
    );
    let mut buf = vec![0u64; 4096];
    let mut next = 0u64;
    let err = loop {
        let got = match exact {
            // Exactly n at a time while n remain; the rest as it comes.
            Some(n) if count - next >= n as u64 => r.blocking_get(&mut buf[..n]).map(|()| n),
            _ => r.blocking_get_some(&mut buf),
        };
        match got {
            Ok(k) => {
                for v in &buf[..k] {
                    assert_eq!(*v, next);
                    next += 1;
                }
            }
            Err(e) => break e,
        }
    };
    assert_eq!(next, count, "{err}");
    writer.join().unwrap();
    assert!(pull.finish().0);
    assert!(push.finish().0);
    err
}

#[test]
fn ten_million_u64_in_both_start_orders() {
    let _w = Deadline::new(TEST_LIMIT, "ten_million_u64_in_both_start_orders");
    for push_first in [true, false] {
        let e = u64_stream(10_000_000, push_first, None);
        assert!(e.kind() == ErrorKind::Closed && e.remaining() == 0, "{e}");
    }
}

#[test]
fn samples_larger_than_a_zenoh_batch_arrive_whole() {
    let _w = Deadline::new(TEST_LIMIT, "samples_larger_than_a_zenoh_batch_arrive_whole");
    // 200 000-byte samples are fragmented into zenoh batches of at most 48 KiB on loopback,
    // whose edges split items; the far ring of 4096 u64 takes them in reservations of 2048
    // items, whose edges fall elsewhere. Every item still arrives, in order.
    let e = u64_stream_with(
        2_000_000,
        true,
        None,
        [&["--batch-bytes", "200000"], &["--capacity", "4096"]],
        None,
    );
    assert!(e.kind() == ErrorKind::Closed && e.remaining() == 0, "{e}");
}

#[test]
fn a_reader_that_gets_more_than_half_the_far_ring_at_once_is_served() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "a_reader_that_gets_more_than_half_the_far_ring_at_once_is_served",
    );
    // The far reader waits for 3000 of the ring's 4096 items at a time, and samples hold
    // 6080: the pull must fill whatever room there is, not wait for room for a fixed part
    // of a sample (which such a reader would never make).
    let e = u64_stream_with(
        1_000_000,
        true,
        None,
        [&[], &["--capacity", "4096"]],
        Some(3000),
    );
    assert!(e.kind() == ErrorKind::Closed && e.remaining() == 0, "{e}");
}

#[test]
fn abort_arrives_after_everything_before_it() {
    let _w = Deadline::new(TEST_LIMIT, "abort_arrives_after_everything_before_it");
    match u64_stream(100_000, true, Some("sensor lost")) {
        e if e.kind() == ErrorKind::Aborted && e.remaining() == 0 => {
            assert_eq!(e.reason(), Some("sensor lost"))
        }
        e => panic!("{e}"),
    }
}
