//! The suite's cross-process cases: the producer (this process, CPU 0) and the consumer
//! process it starts (`suite --consume …`, CPU 1), over a shmchan channel, a pipe or a Unix
//! socket.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Stdio};
use std::time::Instant;

use shmchan::{Barrier, ChannelIo, ErrorKind, Options, ReaderFront, WriterFront};

use super::{latency, Rec64, Transport};
use crate::common::{self, check, collect, pin, report, Item, Res};

/// Starts a consumer of the suite: `suite --consume ARGS…`.
pub(super) fn spawn_consumer(args: &[String], stdin: Stdio) -> Res<Child> {
    common::spawn_consumer("suite", args, stdin)
}

/// Waits for the consumer's "ready" line (it has claimed its end, or is about to read its
/// stdin), so the clock it starts at its first item does not include a ring the producer
/// filled before the consumer existed.
fn await_ready(child: &mut Child) -> Res<()> {
    let out = child.stdout.as_mut().ok_or("no consumer stdout")?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        match out.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => return Err("the consumer ended before it was ready".into()),
        }
    }
    if line != b"ready\n" {
        return Err(format!("the consumer said {:?}", String::from_utf8_lossy(&line)).into());
    }
    Ok(())
}

/// Fills `buf` with items number `next`, `next + 1`, …
fn fill<T: Item>(buf: &mut [T], next: u64) {
    for (i, v) in buf.iter_mut().enumerate() {
        *v = T::make(next + i as u64);
    }
}

/// Runs one cross-process case; returns the consumer's seconds from its first item to its
/// last, and for shmchan the system calls both ends' waiting made.
pub(super) fn cross_process<T: Item>(
    t: Transport,
    batch: usize,
    items: u64,
    ring_bytes: usize,
) -> Res<(f64, Option<u64>)> {
    pin(0);
    let args = vec![
        t.key().to_string(),
        batch.to_string(),
        items.to_string(),
        T::KEY.to_string(),
    ];
    match t {
        _ if t.is_shmchan() => shm_producer::<T>(t, batch, items, ring_bytes, args),
        Transport::Pipe | Transport::Pipe1M | Transport::Unix => {
            Ok((stream_producer::<T>(t, batch, items, &args)?, None))
        }
        _ => Err("not a cross-process transport".into()),
    }
}

/// If a case fails midway, its channel (with an end of stream nobody read) is removed rather
/// than left in /dev/shm.
struct RemoveOnError<'a>(&'a str, bool);

impl Drop for RemoveOnError<'_> {
    fn drop(&mut self) {
        if !self.1 {
            let _ = ChannelIo::remove(self.0);
        }
    }
}

fn shm_producer<T: Item>(
    t: Transport,
    batch: usize,
    items: u64,
    ring_bytes: usize,
    mut args: Vec<String>,
) -> Res<(f64, Option<u64>)> {
    let name = format!("bench-{}-{}", std::process::id(), t.key());
    // A 1 MiB ring (by default), whatever the item size.
    let cap = (ring_bytes / std::mem::size_of::<T>()).max(1);
    let barrier = if t == Transport::ShmCopyFence {
        Barrier::Fence
    } else {
        Barrier::Auto
    };
    let chan = ChannelIo::<T>::create(&name, Options::new().capacity(cap).barrier(barrier))?;
    let mut guard = RemoveOnError(&name, false);
    let mut w = chan.writer()?;
    args.push(name.clone());
    let mut child = spawn_consumer(&args, Stdio::null())?;
    await_ready(&mut child)?;
    produce_shm(t, &mut w, batch, items)?;
    let ours = w.wait_stats().syscalls();
    w.close();
    let (secs, theirs) = collect(child)?;
    guard.1 = true;
    Ok((secs, Some(ours + theirs)))
}

/// The producer's loop of a shmchan case.
fn produce_shm<T: Item>(t: Transport, w: &mut WriterFront<T>, batch: usize, items: u64) -> Res<()> {
    let mut buf = vec![T::zeroed(); batch];
    let mut next = 0;
    match t {
        Transport::ShmCopy | Transport::ShmCopyFence => {
            while next < items {
                fill(&mut buf, next);
                w.blocking_put(&buf)?;
                next += batch as u64;
            }
        }
        Transport::ShmCopyAsync => {
            common::runtime()?.block_on(async {
                while next < items {
                    fill(&mut buf, next);
                    w.put(&buf).await?;
                    next += batch as u64;
                }
                Ok::<_, shmchan::Error>(())
            })?;
        }
        _ => {
            while next < items {
                let mut slots = w.blocking_reserve(batch)?;
                fill(&mut slots, next);
                slots.commit_all();
                next += batch as u64;
            }
        }
    }
    Ok(())
}

/// A pipe or Unix-socket case: the consumer reads its stdin. Returns the consumer's seconds.
fn stream_producer<T: Item>(t: Transport, batch: usize, items: u64, args: &[String]) -> Res<f64> {
    let (rd, wr): (OwnedFd, OwnedFd) = if t == Transport::Unix {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        (a.into(), b.into())
    } else {
        rustix::pipe::pipe()?
    };
    if t == Transport::Pipe1M {
        rustix::pipe::fcntl_setpipe_size(wr.as_fd(), 1 << 20)
            .map_err(|e| format!("F_SETPIPE_SZ: {e}"))?;
    }
    let mut child = spawn_consumer(args, Stdio::from(rd))?;
    await_ready(&mut child)?;
    let mut out = std::fs::File::from(wr);
    let mut buf = vec![T::zeroed(); batch];
    let mut next = 0;
    while next < items {
        fill(&mut buf, next);
        out.write_all(bytemuck::cast_slice(&buf))?;
        next += batch as u64;
    }
    drop(out);
    Ok(collect(child)?.0)
}

/// The consumer process: reports its seconds from first item to last.
pub(super) fn consume(a: &[String]) -> Res<()> {
    pin(1);
    let bad = || "--consume TRANSPORT BATCH ITEMS TYPE [NAME]";
    if a[0] == "echo" || a[0] == "idle" {
        return latency::echo(a);
    }
    let t = Transport::from_key(&a[0]).ok_or_else(bad)?;
    let batch: usize = a[1].parse().map_err(|_| bad())?;
    let items: u64 = a[2].parse().map_err(|_| bad())?;
    let name = a.get(4).map(String::as_str);
    let (start, syscalls) = match a.get(3).map(String::as_str) {
        Some("rec64") => consume_items::<Rec64>(t, batch, items, name)?,
        Some("u64") => consume_items::<u64>(t, batch, items, name)?,
        _ => return Err(bad().into()),
    };
    report(start.map_or(0.0, |s| s.elapsed().as_secs_f64()), syscalls);
    Ok(())
}

/// Reads and checks the items of one case; returns when the first came, and the system calls
/// of shmchan's waiting.
fn consume_items<T: Item>(
    t: Transport,
    batch: usize,
    items: u64,
    name: Option<&str>,
) -> Res<(Option<Instant>, u64)> {
    if !t.is_shmchan() {
        return Ok((consume_stream::<T>(batch, items)?, 0));
    }
    let chan = ChannelIo::<T>::open(name.ok_or("--consume: no channel name")?)?;
    let mut r = chan.reader()?;
    println!("ready");
    let start = consume_shm(t, &mut r, batch, items)?;
    let syscalls = r.wait_stats().syscalls();
    match r.blocking_get(&mut [T::zeroed()]) {
        Err(e) if e.kind() == ErrorKind::Closed => Ok((start, syscalls)),
        other => Err(format!("after the last item: {other:?}").into()),
    }
}

/// The consumer's loop of a shmchan case.
fn consume_shm<T: Item>(
    t: Transport,
    r: &mut ReaderFront<T>,
    batch: usize,
    items: u64,
) -> Res<Option<Instant>> {
    let mut buf = vec![T::zeroed(); batch];
    let mut next = 0u64;
    let mut start = None;
    match t {
        Transport::ShmCopy | Transport::ShmCopyFence => {
            while next < items {
                r.blocking_get(&mut buf)?;
                start.get_or_insert_with(Instant::now);
                check(&buf, next)?;
                next += batch as u64;
            }
        }
        Transport::ShmCopyAsync => common::runtime()?.block_on(async {
            while next < items {
                r.get(&mut buf).await?;
                start.get_or_insert_with(Instant::now);
                check(&buf, next)?;
                next += batch as u64;
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        })?,
        _ => {
            while next < items {
                let view = r.blocking_peek(batch)?;
                start.get_or_insert_with(Instant::now);
                check(&view, next)?;
                view.consume_all();
                next += batch as u64;
            }
        }
    }
    Ok(start)
}

/// The consumer's loop of a pipe or Unix-socket case: reads its stdin.
fn consume_stream<T: Item>(batch: usize, items: u64) -> Res<Option<Instant>> {
    let mut buf = vec![T::zeroed(); batch];
    let mut next = 0u64;
    let mut start = None;
    let mut input = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
    let mut filled = 0;
    println!("ready");
    while next < items {
        let n = input.read(&mut bytes[filled..])?;
        if n == 0 {
            return Err("input ended early".into());
        }
        start.get_or_insert_with(Instant::now);
        filled += n;
        let size = std::mem::size_of::<T>();
        let whole = filled / size;
        let vals: &[T] = bytemuck::cast_slice(&bytes[..whole * size]);
        check(vals, next)?;
        next += whole as u64;
        bytes.copy_within(whole * size..filled, 0);
        filled -= whole * size;
    }
    Ok(start)
}
