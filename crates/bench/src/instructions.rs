//! `shmchan-bench instructions`: what one put+get pair costs on one thread, in instructions
//! counted by callgrind, for shmchan's calls and for rtrb's, in one run.
//!
//! Each case is a loop of `n` pairs, run by this very binary (`instructions --run CASE`)
//! under `valgrind --tool=callgrind` at two values of `n`; the difference of the two totals
//! divided by the difference of `n` is the cost of one pair, start-up and set-up cancelled
//! out. The count repeats within an instruction whatever else the machine is doing, which is
//! what makes it fit for comparing small changes on a VM whose speed drifts. It counts
//! instructions, not time: a cache miss or a pipeline stall costs nothing here.
//!
//! Every loop passes its buffers through `black_box` and unwraps every result (`unwrap`, as
//! `examples/put_get_loop.rs` does, so the counts compare with the ones issue #13 started
//! from), so the counts include that harness, rtrb's as much as shmchan's.

use std::hint::black_box;
use std::process::Command;

use shmchan::{ChannelIo, MessageChannel, Options};

use crate::common::Res;

/// Arguments of `instructions`.
#[derive(clap::Args, Debug)]
pub struct InstrArgs {
    /// Pairs in the shorter of the two runs of each case (the longer runs twice as many).
    #[arg(long, default_value_t = 20_000)]
    iters: u64,
    /// Only the cases whose name contains this.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Runs one case's loop of `--pairs` pairs and exits (what callgrind runs).
    #[arg(long, hide = true, value_name = "CASE")]
    run: Option<String>,
    /// The pairs of `--run`.
    #[arg(long, hide = true, default_value_t = 0)]
    pairs: u64,
}

/// A case: its name, and its loop of `n` pairs.
type Case = (&'static str, fn(u64) -> Res<()>);

const CASES: [Case; 9] = [
    ("shmchan blocking_put + blocking_get, 1 u64", |n| {
        blocking(n, 1)
    }),
    ("shmchan blocking_put + blocking_get, 64 u64", |n| {
        blocking(n, 64)
    }),
    ("shmchan put + get (async, ready), 1 u64", |n| {
        asynchronous(n, 1)
    }),
    ("shmchan put + get (async, ready), 64 u64", |n| {
        asynchronous(n, 64)
    }),
    ("shmchan reserve + peek (zero-copy), 1 u64", zero_copy),
    (
        "shmchan messages: blocking_put + blocking_get, 8 bytes",
        messages_copied,
    ),
    (
        "shmchan messages: reserve + peek (zero-copy), 8 bytes",
        messages_in_place,
    ),
    ("rtrb push + pop, 1 u64", |n| rtrb_pairs(n, 1)),
    ("rtrb write_chunk + read_chunk, 64 u64", |n| {
        rtrb_pairs(n, 64)
    }),
];

/// A channel of `u64` with its two ends, removed when the process ends (the ends close it).
fn channel() -> Res<(shmchan::WriterFront<u64>, shmchan::ReaderFront<u64>)> {
    let name = format!("bench-instr-{}", std::process::id());
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 16))?;
    Ok((chan.writer()?, chan.reader()?))
}

fn blocking(n: u64, k: usize) -> Res<()> {
    let (mut w, mut r) = channel()?;
    let src: Vec<u64> = (0..k as u64).collect();
    let mut dst = vec![0u64; k];
    for _ in 0..n {
        w.blocking_put(black_box(&src)).unwrap();
        r.blocking_get(black_box(&mut dst)).unwrap();
    }
    Ok(())
}

fn asynchronous(n: u64, k: usize) -> Res<()> {
    let (mut w, mut r) = channel()?;
    let src: Vec<u64> = (0..k as u64).collect();
    let mut dst = vec![0u64; k];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        for _ in 0..n {
            w.put(black_box(&src)).await.unwrap();
            r.get(black_box(&mut dst)).await.unwrap();
        }
    });
    Ok(())
}

fn zero_copy(n: u64) -> Res<()> {
    let (mut w, mut r) = channel()?;
    for i in 0..n {
        let mut slots = w.blocking_reserve(1).unwrap();
        slots[0] = black_box(i);
        slots.commit(1);
        let view = r.blocking_peek(1).unwrap();
        black_box(view[0]);
        view.consume(1);
    }
    Ok(())
}

/// A message channel with its two ends, removed when the process ends.
fn message_channel() -> Res<(shmchan::MessageWriter, shmchan::MessageReader)> {
    let name = format!("bench-instr-msg-{}", std::process::id());
    let chan = MessageChannel::create(&name, Options::new().capacity(1 << 16))?;
    Ok((chan.writer()?, chan.reader()?))
}

fn messages_copied(n: u64) -> Res<()> {
    let (mut w, mut r) = message_channel()?;
    let src = [7u8; 8];
    let mut dst = vec![Vec::with_capacity(8)];
    for _ in 0..n {
        w.blocking_put(black_box(&[&src[..]])).unwrap();
        r.blocking_get(black_box(&mut dst)).unwrap();
    }
    Ok(())
}

fn messages_in_place(n: u64) -> Res<()> {
    let (mut w, mut r) = message_channel()?;
    for i in 0..n {
        let mut slot = w.blocking_reserve(8).unwrap();
        slot.copy_from_slice(&black_box(i).to_le_bytes());
        slot.commit();
        let m = r.blocking_peek().unwrap();
        black_box(m[0]);
        m.consume();
    }
    Ok(())
}

fn rtrb_pairs(n: u64, k: usize) -> Res<()> {
    let (mut p, mut c) = rtrb::RingBuffer::<u64>::new(1 << 16);
    let src: Vec<u64> = (0..k as u64).collect();
    let mut dst = vec![0u64; k];
    for _ in 0..n {
        if k == 1 {
            p.push(black_box(src[0])).unwrap();
            dst[0] = c.pop().unwrap();
            black_box(&mut dst);
        } else {
            p.write_chunk_uninit(k)
                .unwrap()
                .fill_from_iter(black_box(&src).iter().copied());
            let chunk = c.read_chunk(k).unwrap();
            let (a, b) = chunk.as_slices();
            let to = black_box(&mut dst);
            to[..a.len()].copy_from_slice(a);
            to[a.len()..].copy_from_slice(b);
            chunk.commit_all();
        }
    }
    Ok(())
}

/// Instructions of a whole run of `case` with `pairs` pairs, under callgrind.
fn count(case: &str, pairs: u64) -> Res<u64> {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("shmchan-instr-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", dir.join("cg").display()))
        .arg(&exe)
        .args(["instructions", "--run", case, "--pairs", &pairs.to_string()])
        .output()
        .map_err(|e| format!("valgrind: {e} (install it: apt install valgrind)"))?;
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{case} under callgrind failed: {err}").into());
    }
    // "==PID== Collected : N"
    err.lines()
        .find_map(|l| l.split("Collected : ").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no instruction count in callgrind's output: {err}").into())
}

/// Runs the comparison and prints it, or (`--run`) one case's loop.
pub fn run(a: InstrArgs) -> Res<()> {
    if let Some(case) = &a.run {
        let (_, body) = CASES
            .iter()
            .find(|(name, _)| name == case)
            .ok_or_else(|| format!("no case {case:?}"))?;
        return body(a.pairs);
    }
    let n = a.iters.max(1);
    println!(
        "# instructions per pair on one thread (callgrind; runs of {n} and {} pairs)",
        2 * n
    );
    let mut any = false;
    for (name, _) in CASES {
        if a.only.as_deref().is_some_and(|t| !name.contains(t)) {
            continue;
        }
        any = true;
        let (short, long) = (count(name, n)?, count(name, 2 * n)?);
        let per = long.saturating_sub(short) as f64 / n as f64;
        println!("{name:48} {per:7.1}");
    }
    if !any {
        return Err(format!("no case matches {:?}", a.only).into());
    }
    Ok(())
}
