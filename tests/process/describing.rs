//! Element descriptions across processes: a `#[repr(C)]` struct named by its description
//! (`Options::descr`) pairs with a channel of the same description that the raw API made in
//! another process, in either direction; another description of the same size and alignment
//! is refused, naming both.

use shmchan::{ChannelIo, Context, ElementType, ErrorKind, Options, RawChannel};
use shmchan_testkit::{unique, watchdog};

use crate::harness::{check, env, env_u64, Peer, R, TIMEOUT};

/// A trade, as C lays it out and as numpy's `TICK` dtype does: 16 bytes, aligned to 8.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Tick {
    /// Microseconds since the epoch.
    t: i64,
    price: f32,
    size: u32,
}

/// `Tick`'s description: `numpy.dtype([('t', 'M8[us]'), ('price', 'f4'), ('size', 'u4')])`.
const TICK: &str = "[('t', '<M8[us]'), ('price', '<f4'), ('size', '<u4')]";
/// The same layout with its time in nanoseconds.
const TICK_NS: &str = "[('t', '<M8[ns]'), ('price', '<f4'), ('size', '<u4')]";
/// The same bytes with the last two fields taken the other way round.
const SWAPPED: &str = "[('t', '<M8[us]'), ('size', '<u4'), ('price', '<f4')]";

fn tick(i: u64) -> Tick {
    Tick {
        t: 1_700_000_000_000_000 + i as i64,
        price: i as f32 / 4.0,
        size: (i * 3) as u32,
    }
}

/// `tick(i)`'s bytes as a program that knows only the description lays them out.
fn tick_bytes(i: u64) -> Vec<u8> {
    let t = tick(i);
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&t.t.to_ne_bytes());
    b.extend_from_slice(&t.price.to_ne_bytes());
    b.extend_from_slice(&t.size.to_ne_bytes());
    b
}

/// The raw element type of a `Tick`, as a program learns it at run time.
fn record() -> ElementType {
    ElementType::record(16, 8).expect("a valid layout")
}

/// Child: creates channel `NAME` with the raw API, described as `DESCR`, puts `COUNT`
/// ticks as bytes and closes.
pub fn role_raw_described_writer() -> Result<(), String> {
    let (name, count) = (env("NAME"), env_u64("COUNT"));
    let options = Options::new().descr(env("DESCR")).capacity(1024);
    let chan = RawChannel::create(&name, record(), options).map_err(|e| e.to_string())?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    let bytes: Vec<u8> = (0..count).flat_map(tick_bytes).collect();
    w.blocking_put(&bytes).map_err(|e| e.to_string())?;
    w.close();
    println!("wrote {count}");
    Ok(())
}

/// Child: opens channel `NAME` with the raw API, described as `DESCR`; prints the error
/// if the open is refused, else reads `COUNT` ticks as bytes and checks each.
pub fn role_raw_described_reader() -> Result<(), String> {
    let (name, count) = (env("NAME"), env_u64("COUNT"));
    let chan = match RawChannel::open(&name, record(), Options::new().descr(env("DESCR"))) {
        Ok(c) => c,
        Err(e) => {
            println!("refused {:?}: {e}", e.kind());
            return Ok(());
        }
    };
    let mut r = chan.reader().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 16 * count as usize];
    r.blocking_get(&mut buf).map_err(|e| e.to_string())?;
    for (i, item) in buf.chunks_exact(16).enumerate() {
        if item != tick_bytes(i as u64) {
            return Err(format!("tick {i} is {item:?}"));
        }
    }
    r.close();
    println!("read {count}");
    Ok(())
}

/// The refusal of an open described as `ours` of a channel described as `theirs`: an
/// element mismatch whose context and message carry both descriptions.
fn refused(e: &shmchan::Error, ours: &str, theirs: &str) -> R {
    check(
        e.kind() == ErrorKind::ElementMismatch,
        format!("not a mismatch: {e}"),
    )?;
    match e.context() {
        Context::Element {
            expected_descr: Some(a),
            found_descr: Some(b),
            ..
        } if a == ours && b == theirs => {}
        other => return Err(format!("context {other:?}").into()),
    }
    let m = e.to_string();
    check(m.contains(ours) && m.contains(theirs), m)
}

/// A channel the raw API created in another process, described as `TICK`: a `Tick`
/// described alike (in another spelling) reads every tick; descriptions with the time in
/// nanoseconds or the fields swapped are refused, naming both; an undescribed `Tick` pairs
/// by size and alignment.
pub fn described_record_pairs_with_a_raw_creator() -> R {
    let name = unique("descr-raw");
    let env = [
        ("NAME", name.clone()),
        ("DESCR", TICK.to_string()),
        ("COUNT", "500".to_string()),
    ];
    let out = Peer::spawn("raw_described_writer", &env).success()?;
    check(out == "wrote 500", format!("writer said {out:?}"))?;
    for other in [TICK_NS, SWAPPED] {
        match ChannelIo::<Tick>::open_with(&name, Options::new().descr(other)) {
            Err(e) => refused(&e, other, TICK)?,
            Ok(_) => return Err(format!("{other} opened a channel of {TICK}").into()),
        }
    }
    let undescribed = ChannelIo::<Tick>::open(&name)?;
    check(
        undescribed.descr() == Some(TICK),
        "the channel's description",
    )?;
    drop(undescribed);
    let spelled = r#"[ ("t", "=M8[1us]"), ("price", "f4"), ("size", "u4") ]"#;
    let chan = ChannelIo::<Tick>::open_with(&name, Options::new().descr(spelled))?;
    let mut r = chan.reader()?;
    let got = watchdog(*TIMEOUT, "reading 500 ticks", move || {
        let mut got = vec![tick(0); 500];
        r.blocking_get(&mut got).map(|()| got)
    })??;
    check(
        got.iter().enumerate().all(|(i, t)| *t == tick(i as u64)),
        "ticks differ",
    )
}

/// The other way round: a described `Tick` channel, created here; a raw reader in another
/// process with the same description reads every tick, one with another is refused and
/// says both.
pub fn raw_reader_pairs_with_a_described_record() -> R {
    let name = unique("descr-typed");
    let chan = ChannelIo::<Tick>::create(&name, Options::new().descr(TICK).capacity(1024))?;
    let mut w = chan.writer()?;
    let ticks: Vec<Tick> = (0..300).map(tick).collect();
    w.blocking_put(&ticks)?;
    w.close();
    let env = |descr: &str| {
        [
            ("NAME", name.clone()),
            ("DESCR", descr.to_string()),
            ("COUNT", "300".to_string()),
        ]
    };
    let out = Peer::spawn("raw_described_reader", &env(TICK_NS)).success()?;
    check(
        out.starts_with("refused ElementMismatch") && out.contains(TICK_NS) && out.contains(TICK),
        format!("a reader of {TICK_NS} said {out:?}"),
    )?;
    let out = Peer::spawn("raw_described_reader", &env(TICK)).success()?;
    check(
        out == "read 300",
        format!("a reader of {TICK} said {out:?}"),
    )
}
