//! Streams between processes in either start order, records written and read in place, and
//! ends moved into tokio tasks.

use shmchan::{ChannelIo, ErrorKind, Options};
use shmchan_testkit::{unique, watchdog, Rng};

use crate::harness::{check, env, env_u64, gone, report, Peer, R, TIMEOUT};
use crate::roles::stream_env;

/// Reader process first, writer process second; different batch sizes on each side;
/// async reader, blocking writer.
pub fn reader_first_writer_second() -> R {
    let name = unique("rfirst");
    let mut e = stream_env(&name, 300_000, 700, 1024, 11);
    e.push(("ASYNC", "1".into()));
    e.push(("READY", "1".into()));
    let mut reader = Peer::spawn("stream_reader", &e);
    // The reader has claimed (and will sleep with no writer) before the writer exists.
    check(reader.read_line()? == "claimed", "reader did not claim")?;
    e.retain(|(k, _)| *k != "ASYNC" && *k != "READY");
    let writer = Peer::spawn("stream_writer", &e);
    check(
        report(&writer.success()?).0 == "wrote 300000",
        "writer output",
    )?;
    let out = reader.success()?;
    check(
        report(&out).0 == "read 300000 closed",
        format!("reader said {out:?}"),
    )?;
    check(gone(&name), "finished channel left files behind")
}

/// Writer process first, and it exits before the reader even starts: the items wait in the
/// channel (not removed at the writer's exit), and the channel goes once drained.
pub fn writer_exits_before_reader_starts() -> R {
    let name = unique("wfirst");
    let mut e = stream_env(&name, 3000, 97, 4096, 5);
    Peer::spawn("stream_writer", &e).success()?;
    check(
        !gone(&name),
        "channel with unread items was removed at the writer's exit",
    )?;
    e.push(("ASYNC", "1".into()));
    let out = Peer::spawn("stream_reader", &e).success()?;
    check(
        report(&out).0 == "read 3000 closed",
        format!("reader said {out:?}"),
    )?;
    check(gone(&name), "drained channel left files behind")
}

/// The fronts and ChannelIo move into tokio tasks and threads; futures are Send.
pub fn fronts_are_send() -> R {
    fn assert_send<S: Send>(_: &S) {}
    let name = unique("send");
    let chan = ChannelIo::<u32>::create(&name, Options::new().capacity(1024))?;
    let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    assert_send(&chan);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sum = watchdog(*TIMEOUT, "tasks", move || {
        rt.block_on(async move {
            let p = tokio::spawn(async move {
                for i in 0..10_000u32 {
                    w.put(&[i]).await?;
                }
                Ok::<_, shmchan::Error>(())
            });
            let c = tokio::spawn(async move {
                let mut s = 0u64;
                let mut buf = [0u32; 100];
                loop {
                    match r.get_some(&mut buf).await {
                        Ok(n) => s += buf[..n].iter().map(|&x| x as u64).sum::<u64>(),
                        Err(e) if e.kind() == ErrorKind::Closed => {
                            return Ok::<_, shmchan::Error>(s)
                        }
                        Err(e) => return Err(e),
                    }
                }
            });
            p.await.unwrap().unwrap();
            c.await.unwrap()
        })
    })??;
    check(sum == (0..10_000u64).sum::<u64>(), format!("sum {sum}"))
}

/// A record type as an application would define it.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Record {
    seq: u64,
    x: f32,
    y: f32,
}

/// Writes COUNT records in place (reserve, fill, commit) in chunks of random size.
pub fn role_records_writer() -> Result<(), String> {
    let count = env_u64("COUNT");
    let mut rng = Rng(env_u64("SEED") | 1);
    let chan = ChannelIo::<Record>::create_or_open(
        &env("NAME"),
        Options::new()
            .capacity(env_u64("CAP") as usize)
            .schema("record/v1"),
    )
    .map_err(|e| e.to_string())?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    let mut seq = 0u64;
    while seq < count {
        let n = (1 + rng.below(300)).min(count - seq) as usize;
        let mut slots = w.blocking_reserve(n).map_err(|e| e.to_string())?;
        for s in slots.iter_mut() {
            *s = Record {
                seq,
                x: seq as f32,
                y: -(seq as f32),
            };
            seq += 1;
        }
        slots.commit_all();
    }
    w.close();
    Ok(())
}

/// Records written in place by another process are read in place (peek/consume) in chunks
/// of other sizes, every field checked.
pub fn zero_copy_records_across_processes() -> R {
    let name = unique("records");
    let e = stream_env(&name, 100_000, 1, 1000, 9);
    let chan = ChannelIo::<Record>::create_or_open(
        &name,
        Options::new().capacity(1000).schema("record/v1"),
    )?;
    let mut r = chan.reader()?;
    let writer = Peer::spawn("records_writer", &e);
    let (next, r) = watchdog(*TIMEOUT, "peek loop", move || {
        let mut next = 0u64;
        let mut rng = Rng(77);
        loop {
            let want = 1 + rng.below(500) as usize;
            let view = match r.blocking_peek(want) {
                Ok(v) => v,
                Err(e) if e.kind() == ErrorKind::Closed => match r.blocking_peek(e.remaining()) {
                    Ok(v) => v,
                    Err(e) => return Err(e.to_string()),
                },
                Err(e) => return Err(e.to_string()),
            };
            if view.is_empty() {
                return Ok((next, r));
            }
            for rec in view.iter() {
                if *rec
                    != (Record {
                        seq: next,
                        x: next as f32,
                        y: -(next as f32),
                    })
                {
                    return Err(format!("record {next} is {rec:?}"));
                }
                next += 1;
            }
            view.consume_all();
        }
    })??;
    writer.success()?;
    drop(r);
    check(next == 100_000, format!("read {next} records"))
}
