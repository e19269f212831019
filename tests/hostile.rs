//! Hostile segments: arbitrary bytes written into a channel's header (and indices scribbled
//! under live ends) must give typed errors or garbled values — never a panic, an access
//! outside the mapping (the test would crash), or a hang (every operation here is
//! non-blocking, and a watchdog aborts the test binary if one still hangs).
//!
//! A property test (proptest): each case plants a mutated copy of a real segment under a
//! fresh name, then opens, inspects, claims, writes and reads it. The corpus of the `segment`
//! fuzz target (`fuzz/corpus/segment/`) is replayed on every run as well; proptest records
//! any failing case in `tests/hostile.proptest-regressions` (commit it) and replays it first.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use shmchan::{ChannelIo, Options};
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

/// A real segment: u64, capacity 512, 100 items committed, both ends open (as if their
/// holders had died), so that a planted copy can be claimed and written as well as read.
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

/// The corpus in `fuzz/corpus/segment/`, shared with the `segment` fuzz target
/// (`scripts/fuzz.sh` adds what it finds there): the header images of [`write_corpus`]
/// (`NNN-*.hdr`), each guarding against a way to go wrong, and the fuzzer's inputs. An input
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
        std::fs::write(dir.join(format!("{n:03}-{what}.hdr")), bytes).expect("write corpus");
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
            let (off, _) = FIELDS[11 + (x % 2) as usize]; // tail or head
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
