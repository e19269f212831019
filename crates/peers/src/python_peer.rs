//! A Rust end for a Python one: the same channel, typed on each side (a `#[repr(C)]` struct
//! here, a numpy structured dtype with `align=True` there, and the same schema tag).
//!
//! ```text
//! cargo run -p shmchan-peers --bin python_peer -- write NAME COUNT [imu|u64]   # puts COUNT items, closes
//! cargo run -p shmchan-peers --bin python_peer -- read NAME COUNT [imu|u64]    # gets and checks them
//! cargo run -p shmchan-peers --bin python_peer -- write NAME COUNT msg          # byte messages
//! ```
//!
//! In Python, the same records are
//! `np.dtype([("t", "<u8"), ("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("flags", "<u4")], align=True)`
//! with `schema="imu/v1"`; this side names that layout with its description
//! ([`IMU_DESCR`], `Options::descr`), so a dtype of the same layout but other fields is
//! refused. Item `i` has `t = i`, `x = i / 2`, `y = -x`, `z = 1`,
//! `flags = i % 7`. The program prints `ready` once it holds its end, and the reader prints
//! `read N <end>` (the end being `closed`, `aborted:REASON` or `gone`) when the stream ends.
//! The writer outlives a killed reader: it waits for a new one, which resumes where the
//! dead one stopped.
//! The Python tests (`crates/shmchan-py/tests`) run it against the Python package.
//!
//! With `msg`, the channel is a `MessageChannel` (Python's `MessageChannelIO`), and message
//! `i` is `i × 7919 mod 3000` bytes, byte `k` being `(31 i + k) mod 256` (the Python tests'
//! `message(i)`).

use shmchan::{ChannelIo, ErrorKind, MessageChannel, Options};

/// One IMU sample, as C (and numpy with `align=True`) lays it out: 24 bytes, aligned to 8.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Imu {
    t: u64,
    x: f32,
    y: f32,
    z: f32,
    flags: u32,
}

/// `Imu`'s description: `repr(numpy.lib.format.dtype_to_descr(IMU))`.
const IMU_DESCR: &str =
    "[('t', '<u8'), ('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('flags', '<u4')]";

impl Imu {
    fn nth(i: u64) -> Imu {
        let x = i as f32 / 2.0;
        Imu {
            t: i,
            x,
            y: -x,
            z: 1.0,
            flags: (i % 7) as u32,
        }
    }
}

/// What the two kinds of item have in common here.
trait Item: bytemuck::Pod {
    const SCHEMA: Option<&'static str>;
    /// A record's description (a primitive has its own).
    const DESCR: Option<&'static str>;
    fn nth(i: u64) -> Self;
}

impl Item for Imu {
    const SCHEMA: Option<&'static str> = Some("imu/v1");
    const DESCR: Option<&'static str> = Some(IMU_DESCR);
    fn nth(i: u64) -> Imu {
        Imu::nth(i)
    }
}

impl Item for u64 {
    const SCHEMA: Option<&'static str> = None;
    const DESCR: Option<&'static str> = None;
    fn nth(i: u64) -> u64 {
        i
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn options<T: Item>() -> Options {
    let mut o = Options::new().capacity(4096);
    if let Some(s) = T::SCHEMA {
        o = o.schema(s);
    }
    if let Some(d) = T::DESCR {
        o = o.descr(d);
    }
    o
}

fn write<T: Item>(name: &str, count: u64) -> Res<()> {
    let chan = ChannelIo::<T>::create_or_open(name, options::<T>())?;
    let mut w = chan.writer()?;
    println!("ready");
    let mut next = 0;
    let mut batch = Vec::new();
    while next < count {
        // Batches of 1, 2, … 100 items, so the reader's frames never line up with them.
        let b = (next % 100 + 1).min(count - next);
        batch.clear();
        batch.extend((next..next + b).map(T::nth));
        let mut done = 0;
        while done < batch.len() {
            match w.blocking_put(&batch[done..]) {
                Ok(()) => done = batch.len(),
                // The reader died: the next put waits for a restarted one, which resumes at
                // the first item the dead one had not consumed.
                Err(e) if e.kind() == ErrorKind::PeerGone => {
                    eprintln!("the reader died; waiting for a new one");
                    done += e.accepted();
                }
                Err(e) => return Err(e.into()),
            }
        }
        next += b;
    }
    w.close();
    Ok(())
}

fn read<T: Item + PartialEq + std::fmt::Debug>(name: &str, count: u64) -> Res<()> {
    let chan = ChannelIo::<T>::create_or_open(name, options::<T>())?;
    let mut r = chan.reader()?;
    println!("ready");
    let mut buf = vec![T::nth(0); 333];
    let mut next = 0u64;
    let end = loop {
        match r.blocking_get_some(&mut buf) {
            Ok(k) => {
                for (i, item) in buf[..k].iter().enumerate() {
                    let want = T::nth(next + i as u64);
                    if *item != want {
                        return Err(
                            format!("item {}: {item:?}, not {want:?}", next + i as u64).into()
                        );
                    }
                }
                next += k as u64;
            }
            Err(e) if e.kind() == ErrorKind::Closed => break "closed".to_string(),
            Err(e) if e.kind() == ErrorKind::Aborted => {
                break format!("aborted:{}", e.reason().unwrap_or_default())
            }
            Err(e) if e.kind() == ErrorKind::PeerGone => break "gone".to_string(),
            Err(e) => return Err(e.into()),
        }
    };
    println!("read {next} {end}");
    if next != count {
        return Err(format!("read {next} items, expected {count}").into());
    }
    Ok(())
}

/// Message `i` of the `msg` kind.
fn message(i: u64) -> Vec<u8> {
    let len = i * 7919 % 3000;
    (0..len).map(|k| ((31 * i + k) % 256) as u8).collect()
}

fn write_messages(name: &str, count: u64) -> Res<()> {
    let chan = MessageChannel::create_or_open(name, Options::new())?;
    let mut w = chan.writer()?;
    println!("ready");
    let mut next = 0;
    while next < count {
        // Batches of 1 to 13 messages.
        let b = (next % 13 + 1).min(count - next);
        let batch: Vec<Vec<u8>> = (next..next + b).map(message).collect();
        w.blocking_put(&batch)?;
        next += b;
    }
    w.close();
    Ok(())
}

fn read_messages(name: &str, count: u64) -> Res<()> {
    let chan = MessageChannel::create_or_open(name, Options::new())?;
    let mut r = chan.reader()?;
    println!("ready");
    let mut buf = vec![Vec::new(); 17];
    let mut next = 0u64;
    let end = loop {
        match r.blocking_get_some(&mut buf) {
            Ok(k) => {
                for m in &buf[..k] {
                    if *m != message(next) {
                        return Err(format!("message {next}: {} bytes, garbled", m.len()).into());
                    }
                    next += 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::Closed => break "closed",
            Err(e) => return Err(e.into()),
        }
    };
    println!("read {next} {end}");
    if next != count {
        return Err(format!("read {next} messages, expected {count}").into());
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: python_peer write|read NAME COUNT [imu|u64|msg]";
    let (Some(role), Some(name), Some(count)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    let count: u64 = count.parse()?;
    match (role.as_str(), args.get(3).map_or("imu", String::as_str)) {
        ("write", "imu") => write::<Imu>(name, count),
        ("write", "u64") => write::<u64>(name, count),
        ("read", "imu") => read::<Imu>(name, count),
        ("read", "u64") => read::<u64>(name, count),
        ("write", "msg") => write_messages(name, count),
        ("read", "msg") => read_messages(name, count),
        _ => Err(usage.into()),
    }
}
