//! Hostile segments: arbitrary bytes written into a channel's header (and indices scribbled
//! under live ends) must give typed errors or garbled values — never a panic, an access
//! outside the mapping (the test would crash), or a hang (every operation here is
//! non-blocking, and a watchdog aborts the test binary if one still hangs).
//!
//! A property test (proptest): each case plants a mutated copy of a real segment under a
//! fresh name, then opens, inspects, claims, writes and reads it; another plants hostile
//! element descriptions, which must be refused as `Corrupted` unless they are the channel's
//! own. The corpus of the `segment`
//! fuzz target (`fuzz/corpus/segment/`) is replayed on every run as well; proptest records
//! any failing case in `tests/hostile.proptest-regressions` (commit it) and replays it first.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use shmchan::{ChannelIo, Context, ElementType, ErrorKind, Options, RawChannel};
use shmchan_testkit::{unique, Deadline};

/// Header size and offsets of interest (see src/header.rs).
use shmchan::layout as at;

const HEADER: usize = at::HEADER_SIZE;
const FIELDS: &[(usize, usize)] = &[
    (at::MAGIC, 8),
    (at::VERSION, 4),
    (at::HEADER_LEN, 4),
    (at::ELEM_SIZE, 4),
    (at::ELEM_ALIGN, 4),
    (at::CAPACITY, 8),
    (at::DATA_LEN, 8),
    (at::ABI, 4),
    (at::FLAGS, 4),
    (at::SCHEMA_LEN, 4),
    (at::ELEM_KIND, 4),
    (at::DESCR_LEN, 4),
    (at::TAIL, 8),
    (at::HEAD, 8),
    (at::DATA_WAITING, 4),
    (at::ROOM_WAITING, 4),
    (at::WRITER_STATE, 4),
    (at::READER_STATE, 4),
    (at::REASON_LEN, 4),
    (at::ENDS, 4),                            // writer pid
    (at::ENDS + 16, 8),                       // writer claims
    (at::ENDS + at::END_RECORD_SIZE, 4),      // reader pid
    (at::ENDS + at::END_RECORD_SIZE + 16, 8), // reader claims
];

/// A real segment: u64 (described as `'<u8'`), capacity 512, 100 items committed, both ends
/// open (as if their holders had died), so that a planted copy can be claimed and written as
/// well as read.
fn template() -> &'static Vec<u8> {
    static T: OnceLock<Vec<u8>> = OnceLock::new();
    T.get_or_init(|| {
        let name = unique("template");
        let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512).persist(true))
            .expect("create");
        let mut w = chan.writer().expect("writer");
        let r = chan.reader().expect("reader");
        w.blocking_put(&(0..100).collect::<Vec<u64>>())
            .expect("put");
        // Copied while both ends are still open: their states read "open".
        let bytes = std::fs::read(shmchan::channel_dir(&name).join("ring")).expect("read ring");
        drop((w, r, chan));
        ChannelIo::remove(&name).expect("remove");
        bytes
    })
}

/// Plants `ring` as channel `name`, with real doorbell FIFOs.
fn plant(name: &str, ring: &[u8]) {
    let dir = shmchan::channel_dir(name);
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("ring"), ring).expect("write ring");
    for bell in ["data.bell", "room.bell"] {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join(bell),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
    }
}

/// Everything a program might do with a channel, none of it waiting: inspect, open with the
/// wrong and the right type, claim and write, claim and read, remove.
/// Returns whether the writer and the reader could be claimed.
fn exercise(name: &str) -> (bool, bool) {
    let (mut wrote, mut read) = (false, false);
    let _ = ChannelIo::inspect(name).map(|i| (i.len(), i.is_finished(), i.has_undelivered()));
    let _ = ChannelIo::<u8>::open(name); // wrong type: must be refused or fine, never a crash
    if let Ok(chan) = ChannelIo::<u64>::open(name) {
        let _ = chan.len();
        // The writer first: a reader's close would refuse later writer claims.
        if let Ok(mut w) = chan.writer() {
            wrote = true;
            let _ = w.try_put(&[1, 2, 3]);
            if let Ok(mut s) = w.try_reserve(700) {
                s.iter_mut().for_each(|x| *x = 7);
                s.commit(5);
            }
            // Closes the writer: the reader below still has everything committed to read.
            drop(w);
        }
        if let Ok(mut r) = chan.reader() {
            read = true;
            let mut buf = [0u64; 600];
            let _ = r.try_get_some(&mut buf);
            if let Ok(v) = r.try_peek_some() {
                let sum: u64 = v.iter().fold(0, |a, b| a.wrapping_add(*b));
                std::hint::black_box(sum);
                v.consume(3);
            }
            let _ = r.len();
        }
    }
    let _ = ChannelIo::remove_unused(name, |_| false);
    (wrote, read)
}

/// How long a test (or one case of a property test) may take before it counts as a hang:
/// its [`Deadline`] then aborts the test binary (a hang is a failure, not a stuck CI).
const LIMIT: Duration = Duration::from_secs(120);

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(511),
        Just(512),
        Just(513),
        Just(4096),
        Just(u32::MAX as u64),
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(1 << 40),
        any::<u64>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    /// Whole header fields set to boundary or random values.
    #[test]
    fn mutated_header_fields(muts in prop::collection::vec((0..FIELDS.len(), interesting_u64()), 1..4)) {
        let _deadline = Deadline::new(LIMIT, "mutated_header_fields");
        let mut ring = template().clone();
        for (f, v) in muts {
            let (off, len) = FIELDS[f];
            ring[off..off + len].copy_from_slice(&v.to_ne_bytes()[..len]);
        }
        let name = unique("fields");
        plant(&name, &ring);
        exercise(&name);
        let _ = ChannelIo::remove(&name);
    }

    /// Random bytes anywhere in the header, and truncated files.
    #[test]
    fn random_header_bytes(
        muts in prop::collection::vec((0..HEADER, any::<u8>()), 1..16),
        cut in prop_oneof![Just(None), (0usize..8192).prop_map(Some)],
    ) {
        let _deadline = Deadline::new(LIMIT, "random_header_bytes");
        let mut ring = template().clone();
        for (off, b) in muts {
            ring[off] = b;
        }
        if let Some(len) = cut {
            ring.truncate(len);
        }
        let name = unique("bytes");
        plant(&name, &ring);
        exercise(&name);
        let _ = ChannelIo::remove(&name);
    }
}

/// `ring` with its element description replaced by `text`, and `descr_len` set to `len`
/// (the text's length unless a case says otherwise). The text stays inside the template's
/// one-page header region.
fn with_descr(ring: &[u8], text: &[u8], len: u32) -> Vec<u8> {
    let mut ring = ring.to_vec();
    let room = 4096 - at::DESCR;
    ring[at::DESCR..4096].fill(0);
    let n = text.len().min(room);
    ring[at::DESCR..at::DESCR + n].copy_from_slice(&text[..n]);
    ring[at::DESCR_LEN..at::DESCR_LEN + 4].copy_from_slice(&len.to_ne_bytes());
    ring
}

/// The description `name`'s header holds, as its bytes say (not through the library).
fn stored_descr(ring: &[u8]) -> &[u8] {
    let len = u32::from_ne_bytes(ring[at::DESCR_LEN..at::DESCR_LEN + 4].try_into().unwrap());
    ring.get(at::DESCR..at::DESCR + len as usize).unwrap_or(&[])
}

/// True if `e` is `Corrupted`, naming the description or its length.
fn descr_corrupted(e: &shmchan::Error) -> bool {
    e.kind() == ErrorKind::Corrupted
        && matches!(
            e.context(),
            Context::Field {
                field: "descr" | "descr_len",
                ..
            }
        )
}

/// Descriptions a hostile creator might write: garbage, near misses of real ones, nesting.
fn hostile_descr() -> impl Strategy<Value = Vec<u8>> {
    let real = prop_oneof![
        Just("'<u8'"),
        Just("'<i8'"),
        Just("'<M8[ns]'"),
        Just("[('a', '<i4'), ('b', '<f4')]"),
        Just("[('t', '<u8')]"),
        Just("('<u4', (2,))"),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            real.clone(),
            prop::collection::vec((0usize..32, any::<u8>()), 1..4)
        )
            .prop_map(|(t, muts)| {
                let mut b = t.as_bytes().to_vec();
                for (i, v) in muts {
                    let i = i % b.len();
                    b[i] = v;
                }
                b
            }),
        real.prop_map(|t| t.as_bytes().to_vec()),
        (1usize..40)
            .prop_map(|d| format!("{}'<u8'{}", "[('a', ".repeat(d), ")]".repeat(d)).into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    /// Hostile element descriptions (and lengths) on a u64 channel: the channel opens only
    /// with its own description, `'<u8'`; every other one is `Corrupted`, naming `descr` or
    /// `descr_len`, from `open`, `open_any` and `inspect` alike, and nothing panics.
    #[test]
    fn hostile_descriptions(
        text in hostile_descr(),
        len in prop_oneof![Just(None), any::<u32>().prop_map(Some), (0u32..4096).prop_map(Some)],
    ) {
        let _deadline = Deadline::new(LIMIT, "hostile_descriptions");
        let len = len.unwrap_or(text.len() as u32);
        let ring = with_descr(template(), &text, len);
        let own = stored_descr(&ring) == b"'<u8'";
        let name = unique("descr");
        plant(&name, &ring);
        let open = ChannelIo::<u64>::open(&name).map(|c| c.descr().map(str::to_string));
        let any = RawChannel::open_any(&name, Options::new()).map(|c| c.descr().map(str::to_string));
        let info = ChannelIo::inspect(&name).map(|i| i.descr);
        exercise(&name);
        let _ = ChannelIo::remove(&name);
        for r in [&open, &any, &info] {
            match r {
                Ok(d) => prop_assert!(own && d.as_deref() == Some("'<u8'"), "{:?} opened: {d:?}", String::from_utf8_lossy(&text)),
                Err(e) => prop_assert!(!own && descr_corrupted(e), "{:?}: {e}", String::from_utf8_lossy(&text)),
            }
        }
    }
}

/// A described record channel: two fields, 8 bytes aligned to 4.
const REC: &str = "[('a', '<i4'), ('b', '<f4')]";

/// A planted copy of a `REC` channel whose description says `text` in `len` bytes: refused
/// as `Corrupted` naming `field`, with `why` in the detail, by an open (described or not),
/// `open_any` and `inspect`.
fn refused_as(record: &[u8], text: &[u8], len: u32, field: &str, why: &str) {
    let name = unique("garbled");
    plant(&name, &with_descr(record, text, len));
    let rec = ElementType::record(8, 4).unwrap();
    let results = [
        (
            "open",
            RawChannel::open(&name, rec, Options::new()).map(|_| ()),
        ),
        (
            "open described",
            RawChannel::open(&name, rec, Options::new().descr(REC)).map(|_| ()),
        ),
        (
            "open_any",
            RawChannel::open_any(&name, Options::new()).map(|_| ()),
        ),
        ("inspect", ChannelIo::inspect(&name).map(|_| ())),
    ];
    let _ = ChannelIo::remove(&name);
    for (what, r) in results {
        match r {
            Err(e) if matches!(e.context(), Context::Field { field: f, detail } if *f == field && detail.contains(why)) =>
                {}
            other => panic!(
                "{what} of {:?} (len {len}): {other:?}, not Corrupted({field}: {why})",
                String::from_utf8_lossy(text)
            ),
        }
    }
}

/// Each way a description can be garbled is its own `Corrupted` error, whichever way the
/// channel is opened or inspected.
#[test]
fn garbled_descriptions_are_corrupted() {
    let _deadline = Deadline::new(LIMIT, "garbled_descriptions_are_corrupted");
    let name = unique("record");
    let chan = RawChannel::create(
        &name,
        ElementType::record(8, 4).unwrap(),
        Options::new().descr(REC).capacity(512).persist(true),
    )
    .unwrap();
    assert_eq!(chan.descr(), Some(REC));
    drop(chan);
    let record = std::fs::read(shmchan::channel_dir(&name).join("ring")).unwrap();
    ChannelIo::remove(&name).unwrap();
    assert_eq!(stored_descr(&record), REC.as_bytes());
    let n = |t: &[u8]| t.len() as u32;

    let bad_utf8 = b"[('a\xff', '<i4'), ('b', '<f4')]";
    refused_as(&record, bad_utf8, n(bad_utf8), "descr", "not UTF-8");
    refused_as(&record, REC.as_bytes(), u32::MAX, "descr_len", "> 65536");
    refused_as(&record, REC.as_bytes(), 65537, "descr_len", "> 65536");
    refused_as(&record, REC.as_bytes(), 4096, "descr_len", "do not fit");
    refused_as(
        &record,
        REC.as_bytes(),
        n(REC.as_bytes()) - 1,
        "descr",
        "expected",
    );
    let double = br#"[("a", '<i4'), ('b', '<f4')]"#;
    refused_as(&record, double, n(double), "descr", "canonical form");
    let short = b"[('a', '<i4')]";
    refused_as(&record, short, n(short), "descr", "describes 4 bytes");
    let object = b"[('a', '|O'), ('b', '<f4')]";
    refused_as(&record, object, n(object), "descr", "Python objects");
    let control = b"[('a\x1b', '<i4'), ('b', '<f4')]";
    refused_as(&record, control, n(control), "descr", "control character");
    let deep = format!("{}'<i8'{}", "[('a', ".repeat(30), ")]".repeat(30));
    refused_as(
        &record,
        deep.as_bytes(),
        n(deep.as_bytes()),
        "descr",
        "nested deeper",
    );
    let twice = b"[('a', '<i4'), ('a', '<f4')]";
    refused_as(&record, twice, n(twice), "descr", "used twice");

    // A primitive's description is its own, and always there.
    let u64s = template();
    let name = unique("prim");
    plant(&name, &with_descr(u64s, b"", 0));
    let missing = ChannelIo::<u64>::open(&name);
    let _ = ChannelIo::remove(&name);
    assert!(
        matches!(&missing, Err(e) if descr_corrupted(e) && e.to_string().contains("missing for a u64")),
        "{missing:?}"
    );
    let name = unique("prim");
    plant(&name, &with_descr(u64s, b"'<i8'", 5));
    let other = ChannelIo::<u64>::open(&name);
    let _ = ChannelIo::remove(&name);
    assert!(
        matches!(&other, Err(e) if descr_corrupted(e) && e.to_string().contains("on a u64 channel")),
        "{other:?}"
    );
}

/// The corpus in `fuzz/corpus/segment/`, shared with the `segment` fuzz target
/// (`scripts/fuzz.sh` adds what it finds there): the header images of [`write_corpus`]
/// (`NNN-*.hdr`) and whole rings with garbled element descriptions (`NNN-descr-*.ring`), each
/// guarding against a way to go wrong, and the fuzzer's inputs. An input
/// of exactly the header's size is a header image, the rest of the ring taken from the
/// template; any other is the whole ring file (a shorter one: a truncated file). Regenerate
/// the header images with `SHMCHAN_WRITE_CORPUS=1 cargo test --test hostile corpus`.
#[test]
fn corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/segment");
    if std::env::var_os("SHMCHAN_WRITE_CORPUS").is_some() {
        write_corpus(&dir);
    }
    let _deadline = Deadline::new(LIMIT, "corpus_replays");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fuzz/corpus/segment")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    let (mut writes, mut reads) = (0, 0);
    for path in &entries {
        let header = std::fs::read(path).expect("corpus file");
        let mut ring = header.clone();
        if header.len() == HEADER {
            ring.extend_from_slice(&template()[HEADER..]);
        }
        let name = unique("corpus");
        plant(&name, &ring);
        let (w, r) = exercise(&name);
        writes += u32::from(w);
        reads += u32::from(r);
        let _ = ChannelIo::remove(&name);
    }
    assert!(
        entries.len() >= 40,
        "the corpus has {} entries",
        entries.len()
    );
    // The corpus is mostly broken headers, but many keep a usable ring: make sure both the
    // write and the read paths ran on them.
    assert!(
        writes >= 10 && reads >= 10,
        "writes {writes}, reads {reads}"
    );
}

/// Writes the corpus: each header field at boundary values, a few random byte patterns,
/// and truncations.
fn write_corpus(dir: &Path) {
    let _ = std::fs::create_dir_all(dir);
    let base = &template()[..HEADER];
    let mut n = 0;
    let mut save = |bytes: &[u8], what: &str| {
        let file = if what.contains('.') {
            format!("{n:03}-{what}")
        } else {
            format!("{n:03}-{what}.hdr")
        };
        std::fs::write(dir.join(file), bytes).expect("write corpus");
        n += 1;
    };
    for (i, (off, len)) in FIELDS.iter().enumerate() {
        for (tag, v) in [("zero", 0u64), ("max", u64::MAX)] {
            let mut h = base.to_vec();
            h[*off..off + len].copy_from_slice(&v.to_ne_bytes()[..*len]);
            save(&h, &format!("field{i}-{tag}"));
        }
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for k in 0..6 {
        let mut h = base.to_vec();
        for _ in 0..32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            h[(x % HEADER as u64) as usize] = (x >> 32) as u8;
        }
        save(&h, &format!("random{k}"));
    }
    for cut in [0, 7, 64, 1279] {
        save(&base[..cut], &format!("truncated{cut}"));
    }
    // Whole rings (the description is past the header image), their descriptions garbled.
    let ring = template();
    for (what, text, len) in [
        ("descr-not-utf8", &b"'<u\xff'"[..], 5),
        ("descr-len-max", b"'<u8'", u32::MAX),
        ("descr-len-past-header", b"'<u8'", 4096),
        ("descr-cut", b"'<u8'", 4),
        ("descr-not-canonical", b"\"<u8\"", 5),
        ("descr-other-primitive", b"'<i8'", 5),
        ("descr-missing", b"", 0),
        ("descr-unclosed", b"[('a', '<u8')", 13),
        ("descr-record", b"[('a', '<u8')]", 14),
    ] {
        save(&with_descr(ring, text, len), &format!("{what}.ring"));
    }
}

/// Indices scribbled while both ends are live: every call returns (a value or a typed
/// error) and nothing reads outside the mapping.
#[test]
fn indices_scribbled_under_live_ends() {
    let _deadline = Deadline::new(LIMIT, "indices_scribbled_under_live_ends");
    let name = unique("live");
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    let ring = std::fs::OpenOptions::new()
        .write(true)
        .open(shmchan::channel_dir(&name).join("ring"))
        .unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut corrupted = 0;
    for round in 0..2000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = w.try_put(&[round; 7]);
        if round % 3 == 0 {
            let off = if x % 2 == 0 { at::TAIL } else { at::HEAD };
            let v = match x % 5 {
                0 => x,
                1 => u64::MAX,
                2 => x % 2048,
                _ => round * 7,
            };
            ring.write_at(&v.to_ne_bytes(), off as u64).unwrap();
        }
        let mut buf = [0u64; 64];
        if r.try_get_some(&mut buf)
            .is_err_and(|e| e.kind() == shmchan::ErrorKind::Corrupted)
        {
            corrupted += 1;
        }
        if let Ok(v) = r.try_peek_some() {
            std::hint::black_box(v.iter().fold(0u64, |a, b| a ^ b));
        }
    }
    assert!(
        corrupted > 0,
        "scribbled indices were never reported as corrupted"
    );
    drop((w, r, chan));
    let _ = ChannelIo::remove(&name);
}
