//! `shmchan-bench bridge`: the zenoh bridge on loopback, in one run, against raw zenoh
//! pub/sub and a TCP socket carrying the same payloads.
//!
//! - 64 KiB batches: the local writer puts batches of 8192 `u64`; the bridge (two
//!   `shmchan-bridge` processes) carries them; the far reader checks every item. Raw zenoh
//!   publishes 64 KiB payloads from one session to another (reliable, blocking congestion
//!   control, over TCP on loopback); TCP writes 64 KiB chunks.
//! - Single items: the writer puts one `u64` per call; the push batches them. Raw zenoh
//!   publishes one 8-byte sample per item; TCP writes 8 bytes per `write`.
//! - Latency: one item every 200 µs, stamped with the monotonic clock at the put; the far
//!   reader (or subscriber) subtracts. Bridged and raw zenoh, p50 and p99.
//!
//! The rounds alternate the order of the cases; the figures are medians.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shmchan::{ChannelIo, ErrorKind, Options};
use shmchan_testkit::unique;

use crate::common::Res;

mod latency;

/// Arguments of `bridge`.
#[derive(clap::Args, Debug)]
pub struct BridgeArgs {
    /// The shmchan-bridge binary.
    #[arg(long, default_value = "target/release/shmchan-bridge")]
    bridge: String,
    /// Rounds per case (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A tenth of the work, one round.
    #[arg(long)]
    quick: bool,
    /// The push's `--batch-bytes` (default: the bridge's own default).
    #[arg(long, value_name = "BYTES")]
    batch_bytes: Option<usize>,
    /// Only the cases whose name contains this (for profiling one); no latency runs.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Only the latency runs, this many times (alternating bridged and raw zenoh).
    #[arg(long, value_name = "TIMES")]
    latency_only: Option<usize>,
}

const BATCH: usize = 8192; // u64: 64 KiB
/// u64 in the bridge's default sample (`shmchan_zenoh::DEFAULT_BATCH_BYTES`), which fits one
/// zenoh batch on loopback: raw zenoh's best case.
const ONE_BATCH: usize = 6080;

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The bridge binary, and what the push is given beyond its channel, key and endpoint.
struct Bin<'a> {
    path: &'a str,
    push_args: Vec<String>,
}

/// A push of `local` and a pull into `far`, both ready; `started` says when the pull has
/// made the far channel.
struct Bridges(Child, Child, std::sync::mpsc::Receiver<()>);

impl Bridges {
    fn start(bin: &Bin, local: &str, far: &str) -> Res<Bridges> {
        let ep = format!("tcp/127.0.0.1:{}", free_port()?);
        let key = format!("bench/{local}");
        let spawn = |args: &[&str]| -> Res<(Child, BufReader<std::process::ChildStdout>)> {
            let mut c = Command::new(bin.path)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    let bin = bin.path;
                    format!("{bin}: {e} (build it: cargo build --release -p shmchan-zenoh)")
                })?;
            let out = BufReader::new(c.stdout.take().ok_or("no stdout")?);
            Ok((c, out))
        };
        let ready = |out: &mut BufReader<std::process::ChildStdout>, want: &str| -> Res<()> {
            let mut line = String::new();
            out.read_line(&mut line)?;
            if line.trim() != want {
                return Err(format!("bridge said {line:?}").into());
            }
            Ok(())
        };
        let mut args = vec!["push", local, "--key", &key, "--listen", &ep];
        args.extend(bin.push_args.iter().map(String::as_str));
        let (push, mut po) = spawn(&args)?;
        ready(&mut po, "ready")?;
        let (pull, mut qo) = spawn(&["pull", &key, "--into", far, "--connect", &ep])?;
        ready(&mut qo, "ready")?;
        // "started" comes once the far channel exists (on the first sample).
        let (tx, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            if qo.read_line(&mut line).is_ok() && line.trim() == "started" {
                let _ = tx.send(());
            }
            drop(po);
        });
        Ok(Bridges(push, pull, started))
    }
}

impl Drop for Bridges {
    fn drop(&mut self) {
        for c in [&mut self.0, &mut self.1] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Opens `far` once the pull has made it.
fn open_far(b: &Bridges, far: &str) -> Res<shmchan::ReaderFront<u64>> {
    b.2.recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the pull never started")?;
    Ok(ChannelIo::<u64>::open(far)?.reader()?)
}

/// The local ring of the bridged cases, in u64: 1 MiB, a channel's default.
const LOCAL_RING: usize = 1 << 17;

/// Bridged: `count` items put `per_put` at a time into a local ring of `ring` u64; the far
/// reader's seconds from its first item to its last.
fn bridged(bin: &Bin, count: u64, per_put: usize, ring: usize) -> Res<f64> {
    let (local, far) = (unique("l"), unique("f"));
    let chan = ChannelIo::<u64>::create(&local, Options::new().capacity(ring))?;
    let mut w = chan.writer()?;
    let b = Bridges::start(bin, &local, &far)?;
    let writer = std::thread::spawn(move || -> Result<(), shmchan::Error> {
        let mut buf = vec![0u64; per_put];
        let mut next = 0u64;
        while next < count {
            for v in buf.iter_mut() {
                *v = next;
                next += 1;
            }
            w.blocking_put(&buf)?;
        }
        w.close();
        Ok(())
    });
    let mut r = open_far(&b, &far)?;
    let mut buf = vec![0u64; BATCH];
    let mut next = 0u64;
    let mut start = None;
    loop {
        match r.blocking_get_some(&mut buf) {
            Ok(k) => {
                start.get_or_insert_with(Instant::now);
                if buf[0] != next || buf[k - 1] != next + k as u64 - 1 {
                    return Err(format!("bridged: item {next} is {}", buf[0]).into());
                }
                next += k as u64;
            }
            Err(e) if e.kind() == ErrorKind::Closed => break,
            Err(e) => return Err(e.into()),
        }
    }
    writer.join().map_err(|_| "writer panicked")??;
    if next != count {
        return Err(format!("bridged: {next} of {count} items").into());
    }
    // The bridges are killed when `b` goes, before the push has closed its reader end:
    // the channels would stay.
    drop(b);
    let _ = ChannelIo::remove(&local);
    let _ = ChannelIo::remove(&far);
    Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
}

/// Which zenoh configuration a raw case runs with.
#[derive(Clone, Copy)]
enum Zconf {
    /// Zenoh's defaults (peer mode, the endpoint, no multicast).
    Default,
    /// The bridge's own (`shmchan_zenoh::config`): the same transport settings.
    Bridge,
}

async fn zenoh_pair(conf: Zconf) -> Res<(zenoh::Session, zenoh::Session)> {
    let ep = format!("tcp/127.0.0.1:{}", free_port()?);
    let open = |listen: bool| -> Res<_> {
        let c = match conf {
            Zconf::Default => {
                let mut c = zenoh::Config::default();
                let role = if listen { "listen" } else { "connect" };
                let _ = c.insert_json5("mode", "\"peer\"");
                let _ = c.insert_json5(&format!("{role}/endpoints"), &format!("[\"{ep}\"]"));
                let _ = c.insert_json5("scouting/multicast/enabled", "false");
                c
            }
            Zconf::Bridge => {
                let eps = vec![ep.clone()];
                let (listen, connect) = if listen { (eps, vec![]) } else { (vec![], eps) };
                shmchan_zenoh::config(&shmchan_zenoh::Link {
                    key: String::new(),
                    connect,
                    listen,
                })
                .map_err(|e| e.to_string())?
            }
        };
        Ok(zenoh::open(c))
    };
    let a = open(true)?.await.map_err(|e| e.to_string())?;
    let b = open(false)?.await.map_err(|e| e.to_string())?;
    Ok((a, b))
}

/// A subscriber and a reliable, blocking publisher on one key, in two sessions, once the
/// subscription has reached the publisher's session: probes are published until one
/// arrives (a benchmark's start-up, not part of the measurement), then drained.
async fn raw_pair(
    tag: &str,
    conf: Zconf,
) -> Res<(
    (zenoh::Session, zenoh::Session),
    zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<zenoh::sample::Sample>>,
    zenoh::pubsub::Publisher<'static>,
)> {
    let (a, b) = zenoh_pair(conf).await?;
    let key = unique(tag);
    let sub = b
        .declare_subscriber(key.clone())
        .await
        .map_err(|e| e.to_string())?;
    let publisher = a
        .declare_publisher(key)
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        publisher
            .put(Vec::<u8>::new())
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(20), sub.recv_async()).await {
            break;
        }
    }
    while sub.try_recv().ok().flatten().is_some() {}
    Ok(((a, b), sub, publisher))
}

/// The first `u64` of a payload, however zenoh split it.
fn first_u64(z: &zenoh::bytes::ZBytes) -> Option<u64> {
    let mut b = [0u8; 8];
    let mut n = 0;
    for piece in z.slices() {
        let k = (8 - n).min(piece.len());
        b[n..n + k].copy_from_slice(&piece[..k]);
        n += k;
        if n == 8 {
            return Some(u64::from_le_bytes(b));
        }
    }
    None
}

/// Raw zenoh: `count` items in samples of `per_sample`, publisher session to subscriber
/// session; the subscriber's seconds from its first sample to its last.
fn raw_zenoh(count: u64, per_sample: usize, conf: Zconf) -> Res<f64> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (_sessions, sub, publisher) = raw_pair("raw", conf).await?;
        let producer = tokio::spawn(async move {
            let mut buf = vec![0u64; per_sample];
            let mut next = 0u64;
            while next < count {
                for v in buf.iter_mut() {
                    *v = next;
                    next += 1;
                }
                let bytes: &[u8] = bytemuck::cast_slice(&buf);
                if publisher.put(bytes.to_vec()).await.is_err() {
                    return;
                }
            }
        });
        let mut next = 0u64;
        let mut start = None;
        let mut lost = 0u64;
        while next < count {
            // Bounded, so that a lost last sample ends the case instead of hanging it.
            let s = match tokio::time::timeout(Duration::from_secs(10), sub.recv_async()).await {
                Ok(s) => s.map_err(|e| e.to_string())?,
                Err(_) => {
                    lost += count - next;
                    break;
                }
            };
            start.get_or_insert_with(Instant::now);
            // The payload as zenoh delivered it (a fragmented sample in pieces): its first
            // item and its length, without joining it into one piece.
            let first = first_u64(s.payload()).ok_or("raw zenoh: a sample without an item")?;
            if first < next {
                return Err(format!("raw zenoh: item {first} again after {next}").into());
            }
            // Not an error of ours to fail on: counted and reported.
            lost += first - next;
            next = first + (s.payload().len() / 8) as u64;
        }
        if lost > 0 {
            eprintln!("raw zenoh: {lost} of {count} items never arrived ({per_sample} per sample)");
        }
        let secs = start.map_or(0.0, |s: Instant| s.elapsed().as_secs_f64());
        // Bounded: after a loss the producer may still wait for room.
        let _ = tokio::time::timeout(Duration::from_secs(10), producer).await;
        Ok(secs)
    })
}

/// TCP over loopback: `count` items written `per_write` at a time.
fn tcp(count: u64, per_write: usize) -> Res<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u64; per_write];
        let mut next = 0u64;
        while next < count {
            for v in buf.iter_mut() {
                *v = next;
                next += 1;
            }
            s.write_all(bytemuck::cast_slice(&buf))?;
        }
        Ok(())
    });
    let (mut s, _) = listener.accept()?;
    let mut buf = vec![0u8; BATCH * 8];
    let mut got = 0u64; // bytes
    let mut start = None;
    while got < count * 8 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        start.get_or_insert_with(Instant::now);
        got += n as u64;
    }
    writer.join().map_err(|_| "tcp writer panicked")??;
    if got != count * 8 {
        return Err(format!("tcp: {got} of {} bytes", count * 8).into());
    }
    Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A case of the comparison: its name, items per run, and one timed run.
type Case<'a> = (&'a str, u64, Box<dyn Fn() -> Res<f64> + 'a>);

/// Runs the comparison and prints it.
pub fn run(a: BridgeArgs) -> Res<()> {
    let scale = if a.quick { 10 } else { 1 };
    let runs = if a.quick { 1 } else { a.runs.max(1) };
    let bin = &Bin {
        path: &a.bridge,
        push_args: match a.batch_bytes {
            Some(b) => vec!["--batch-bytes".into(), b.to_string()],
            None => Vec::new(),
        },
    };
    if let Some(times) = a.latency_only {
        for _ in 0..times {
            latency::latency(bin, scale)?;
        }
        return Ok(());
    }
    let cases: Vec<Case> = cases(bin, scale)
        .into_iter()
        .filter(|c| {
            a.only
                .as_ref()
                .is_none_or(|text| c.0.contains(text.as_str()))
        })
        .collect();
    if cases.is_empty() {
        return Err(format!("no case matches {:?}", a.only).into());
    }
    let secs = rounds(&cases, runs)?;
    println!(
        "# bridge on loopback: {runs} rounds, medians; the push's samples are at most {} bytes",
        a.batch_bytes.unwrap_or(shmchan_zenoh::DEFAULT_BATCH_BYTES)
    );
    report(&cases, &secs);
    if a.only.is_some() {
        return Ok(());
    }
    latency::latency(bin, scale)
}

/// The cases, their sizes divided by `scale`.
fn cases<'a>(bin: &'a Bin<'a>, scale: u64) -> Vec<Case<'a>> {
    // 1 GiB of u64, in whole samples of both sizes.
    let both = (BATCH * ONE_BATCH / gcd(BATCH, ONE_BATCH)) as u64;
    let big = (1u64 << 27) / scale / both * both;
    let singles = 10_000_000 / scale;
    let raw_singles = 2_000_000 / scale;
    vec![
        (
            "bridged, 64 KiB batches",
            big,
            Box::new(move || bridged(bin, big, BATCH, LOCAL_RING)),
        ),
        (
            "bridged, 64 KiB batches, 4 MiB local ring",
            big,
            Box::new(move || bridged(bin, big, BATCH, 4 * LOCAL_RING)),
        ),
        (
            "raw zenoh, 64 KiB samples",
            big,
            Box::new(move || raw_zenoh(big, BATCH, Zconf::Default)),
        ),
        (
            "raw zenoh, 47.5 KiB samples",
            big,
            Box::new(move || raw_zenoh(big, ONE_BATCH, Zconf::Default)),
        ),
        (
            "raw zenoh, 64 KiB samples, bridge config",
            big,
            Box::new(move || raw_zenoh(big, BATCH, Zconf::Bridge)),
        ),
        (
            "raw zenoh, 47.5 KiB samples, bridge config",
            big,
            Box::new(move || raw_zenoh(big, ONE_BATCH, Zconf::Bridge)),
        ),
        (
            "TCP loopback, 64 KiB writes",
            big,
            Box::new(move || tcp(big, BATCH)),
        ),
        (
            "bridged, single u64 puts",
            singles,
            Box::new(move || bridged(bin, singles, 1, LOCAL_RING)),
        ),
        (
            "raw zenoh, one sample per u64",
            raw_singles,
            Box::new(move || raw_zenoh(raw_singles, 1, Zconf::Default)),
        ),
        (
            "TCP loopback, one 8-byte write per u64",
            raw_singles,
            Box::new(move || tcp(raw_singles, 1)),
        ),
    ]
}

/// Seconds of each case in each of `runs` rounds, the order reversed every other round.
fn rounds(cases: &[Case<'_>], runs: usize) -> Res<Vec<Vec<f64>>> {
    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for round in 0..runs {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..cases.len()).collect()
        } else {
            (0..cases.len()).rev().collect()
        };
        for i in order {
            secs[i].push((cases[i].2)()?);
        }
    }
    Ok(secs)
}

/// Prints each case's median rate, and the bridged batches' ratio to each raw zenoh case.
fn report(cases: &[Case<'_>], secs: &[Vec<f64>]) {
    let medians: Vec<f64> = secs.iter().cloned().map(median).collect();
    for (i, (name, items, _)) in cases.iter().enumerate() {
        let t = medians[i];
        println!(
            "{name:44} {:9.2} M items/s {:8.3} GB/s",
            *items as f64 / t / 1e6,
            *items as f64 * 8.0 / t / 1e9
        );
    }
    // Throughput ratios of the same bytes, paired by round (the machine's speed drifts
    // between rounds, much less within one).
    let at = |name: &str| cases.iter().position(|c| c.0 == name);
    for (bridged, short) in [
        ("bridged, 64 KiB batches", "bridged 64 KiB"),
        (
            "bridged, 64 KiB batches, 4 MiB local ring",
            "bridged 64 KiB, 4 MiB ring",
        ),
    ] {
        for raw in cases
            .iter()
            .map(|c| c.0)
            .filter(|n| n.contains("KiB samples"))
        {
            if let (Some(b), Some(r)) = (at(bridged), at(raw)) {
                let mut q: Vec<f64> = secs[b].iter().zip(&secs[r]).map(|(b, r)| r / b).collect();
                q.sort_by(f64::total_cmp);
                println!(
                    "{short} / {raw:44}: median {:.3} (rounds {:.3}..{:.3})",
                    median(q.clone()),
                    q[0],
                    q[q.len() - 1]
                );
            }
        }
    }
}
