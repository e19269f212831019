//! Opening what is not a good channel: every open error, planted and corrupt segment files,
//! a channel of another capacity than the one required, and a ring larger than the
//! shared-memory file system.

use libtest_mimic::Failed;
use shmchan::{ChannelIo, Context, ElementType, ErrorKind, Options, Primitive, RawChannel};
use shmchan_testkit::unique;

use crate::harness::{check, gone, Peer, R};
use crate::roles::stream_env;

/// Every open error, each with its typed variant.
pub fn open_errors() -> R {
    let bad = ChannelIo::<u8>::create("no/slash", Options::new());
    check(
        matches!(&bad, Err(e) if e.kind() == ErrorKind::InvalidName),
        format!("{bad:?}"),
    )?;
    check(
        matches!(&ChannelIo::<u8>::open(""), Err(e) if e.kind() == ErrorKind::InvalidName
        ),
        "empty name",
    )?;
    let name = unique("errs");
    let zero = ChannelIo::<u8>::create(&name, Options::new().capacity(0));
    check(
        matches!(&zero, Err(e) if e.kind() == ErrorKind::InvalidCapacity),
        format!("{zero:?}"),
    )?;
    let huge = ChannelIo::<u64>::create(&name, Options::new().capacity(usize::MAX / 2));
    check(
        matches!(&huge, Err(e) if e.kind() == ErrorKind::InvalidCapacity),
        format!("{huge:?}"),
    )?;
    let zst = ChannelIo::<()>::create(&name, Options::new());
    check(
        matches!(&zst, Err(e) if e.kind() == ErrorKind::UnsupportedElement),
        format!("{zst:?}"),
    )?;
    let long = ChannelIo::<u8>::create(&name, Options::new().schema("x".repeat(49)));
    check(
        matches!(&long, Err(e) if e.kind() == ErrorKind::InvalidSchema),
        format!("{long:?}"),
    )?;
    check(gone(&name), "failed creates left files")?;

    let missing = ChannelIo::<u8>::open(&name);
    check(
        matches!(&missing, Err(e) if e.kind() == ErrorKind::NotFound),
        format!("{missing:?}"),
    )?;
    let chan = ChannelIo::<f32>::create(&name, Options::new().schema("imu/v2"))?;
    let exists = ChannelIo::<f32>::create(&name, Options::new());
    check(
        matches!(&exists, Err(e) if e.kind() == ErrorKind::AlreadyExists),
        format!("{exists:?}"),
    )?;
    match ChannelIo::<f64>::open_with(&name, Options::new().schema("imu/v2")) {
        Err(e)
            if matches!(
                e.context(),
                Context::Element {
                    expected_size: 8,
                    found_size: 4,
                    ..
                }
            ) =>
        {
            let m = e.to_string();
            check(m.contains("f64") && m.contains("4 bytes"), m)?;
        }
        other => return Err(format!("expected ElementMismatch, got {other:?}").into()),
    }
    // Same size and alignment, another primitive: told apart by the recorded kind.
    match ChannelIo::<u32>::open_with(&name, Options::new().schema("imu/v2")) {
        Err(e)
            if matches!(
                e.context(),
                Context::Element {
                    found_type: Some("f32"),
                    ..
                }
            ) =>
        {
            check(e.to_string().contains("f32 elements"), e.to_string())?
        }
        other => return Err(format!("expected ElementMismatch(f32), got {other:?}").into()),
    }
    // An application type of the same layout is not a primitive: allowed (its tag decides).
    let raw = ChannelIo::<[u8; 4]>::open_with(&name, Options::new().schema("imu/v2"));
    check(
        matches!(&raw, Err(e) if e.kind() == ErrorKind::ElementMismatch),
        "align 1 vs 4 must differ",
    )?;
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Sample(f32);
    let rec = ChannelIo::<Sample>::open_with(&name, Options::new().schema("imu/v2"));
    check(rec.is_ok(), format!("record type over f32: {rec:?}"))?;
    drop(rec);
    match ChannelIo::<f32>::open_with(&name, Options::new().schema("imu/v1")) {
        Err(e) if e.kind() == ErrorKind::SchemaMismatch => check(
            e.context()
                == &Context::Schema {
                    expected: Some("imu/v1".into()),
                    found: Some("imu/v2".into()),
                },
            "schema values",
        )?,
        other => return Err(format!("expected SchemaMismatch, got {other:?}").into()),
    }
    check(
        matches!(&ChannelIo::<f32>::open(&name), Err(e) if e.kind() == ErrorKind::SchemaMismatch
        ),
        "untagged open of a tagged channel",
    )?;
    drop(chan);
    check(gone(&name), "unused channel not removed")?;
    Ok(())
}

/// Plants files under a channel's name: too small, foreign, zeroed, other version, a plain
/// file instead of the directory, a header describing more bytes than the file has.
pub fn planted_segments() -> R {
    let plant = |bytes: &[u8]| -> Result<String, Failed> {
        let name = unique("plant");
        let dir = shmchan::channel_dir(&name);
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("ring"), bytes).map_err(|e| e.to_string())?;
        Ok(name)
    };
    let expect = |name: &str, ok: &dyn Fn(&shmchan::Error) -> bool| -> R {
        let res = ChannelIo::<u64>::open(name);
        let r = match &res {
            Err(e) if ok(e) => Ok(()),
            other => Err(Failed::from(format!("{name}: unexpected {other:?}"))),
        };
        ChannelIo::remove(name).map_err(|e| e.to_string())?;
        r
    };
    let n = plant(b"tiny")?;
    expect(&n, &|e| {
        matches!(e.context(), Context::TooSmall { size: 4, .. })
    })?;
    let n = plant(&[0xAB; 8192])?;
    expect(&n, &|e| e.kind() == ErrorKind::NotAChannel)?;
    let n = plant(&[0; 8192])?;
    expect(&n, &|e| e.kind() == ErrorKind::NotInitialized)?;
    let n = plant(&[])?;
    expect(&n, &|e| e.kind() == ErrorKind::NotInitialized)?;

    // A real header, edited.
    let real = unique("real");
    drop(ChannelIo::<u64>::create(
        &real,
        Options::new().capacity(512).persist(true),
    )?);
    let good =
        std::fs::read(shmchan::channel_dir(&real).join("ring")).map_err(|e| e.to_string())?;
    ChannelIo::remove(&real)?;
    let mut v = good.clone();
    v[8..12].copy_from_slice(&99u32.to_ne_bytes());
    let n = plant(&v)?;
    expect(&n, &|e| {
        e.kind() == ErrorKind::VersionMismatch
            && matches!(e.context(), Context::Version { found: 99, .. })
    })?;
    let mut v = good.clone();
    v[24..32].copy_from_slice(&(1u64 << 50).to_ne_bytes()); // capacity
    let n = plant(&v)?;
    expect(&n, &|e| {
        matches!(
            e.context(),
            Context::Field {
                field: "data_len",
                ..
            }
        )
    })?;
    let mut v = good.clone();
    v[112..116].copy_from_slice(&9u32.to_ne_bytes()); // elem_kind f32 on 8-byte elements
    let n = plant(&v)?;
    expect(&n, &|e| {
        matches!(
            e.context(),
            Context::Field {
                field: "elem_kind",
                ..
            }
        )
    })?;
    let n = plant(&good[..good.len() - 4096])?; // truncated before open
    expect(&n, &|e| {
        matches!(e.context(), Context::Field { field: "size", .. })
    })?;

    // A plain file where the directory should be.
    let name = unique("plainfile");
    std::fs::write(shmchan::channel_dir(&name), b"junk").map_err(|e| e.to_string())?;
    let res = ChannelIo::<u64>::open(&name);
    let create = ChannelIo::<u64>::create(&name, Options::new());
    ChannelIo::remove(&name)?;
    check(
        matches!(&res, Err(e) if e.kind() == ErrorKind::NotAChannel),
        format!("{res:?}"),
    )?;
    check(
        matches!(&create, Err(e) if e.kind() == ErrorKind::AlreadyExists),
        format!("{create:?}"),
    )
}

/// Corrupt indices written into a live segment give Corrupted errors, not crashes.
pub fn corrupt_indices_are_errors() -> R {
    let name = unique("corrupt");
    let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(512))?;
    let (mut w, mut r) = (chan.writer()?, chan.reader()?);
    w.blocking_put(&[1; 512])?;
    // Scribble on the mapped header through the file: head far beyond tail.
    let path = shmchan::channel_dir(&name).join("ring");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| e.to_string())?;
    use std::os::unix::fs::FileExt;
    f.write_at(&u64::MAX.to_ne_bytes(), shmchan::layout::HEAD as u64)
        .map_err(|e| e.to_string())?; // head
    match w.blocking_put(&[1]) {
        Err(e) if matches!(e.context(), Context::Field { field: "head", .. }) => {}
        other => return Err(format!("expected Corrupted(head), got {other:?}").into()),
    }
    f.write_at(&(1u64 << 40).to_ne_bytes(), shmchan::layout::TAIL as u64)
        .map_err(|e| e.to_string())?; // tail
    let mut buf = [0u64; 1024];
    match r.blocking_get(&mut buf) {
        Err(e) if matches!(e.context(), Context::Field { field: "tail", .. }) => {}
        other => return Err(format!("expected Corrupted(tail), got {other:?}").into()),
    }
    drop((w, r, chan));
    ChannelIo::remove(&name).ok();
    Ok(())
}

/// True if the shared-memory file system has a size limit a ring can exceed.
pub fn shm_is_limited() -> bool {
    rustix::fs::statvfs(shmchan::base_dir()).is_ok_and(|st| {
        let want = (st.f_blocks * st.f_frsize).saturating_mul(2);
        want > 0 && want <= shmchan::MAX_DATA_LEN
    })
}

/// A ring larger than the shared-memory file system fails at create with NoSpace, leaving
/// nothing behind.
pub fn no_space_at_create() -> R {
    let base = shmchan::base_dir();
    let st = rustix::fs::statvfs(&base).map_err(|e| e.to_string())?;
    let total = st.f_blocks * st.f_frsize;
    let want = total.saturating_mul(2);
    if !shm_is_limited() {
        return Err(
            "the shared-memory file system has no usable limit (test should be ignored)".into(),
        );
    }
    let name = unique("nospace");
    match ChannelIo::<u8>::create(&name, Options::new().capacity(want as usize)) {
        Err(e) if e.kind() == ErrorKind::NoSpace => {
            check(e.to_string().contains("--shm-size"), e.to_string())?;
        }
        other => return Err(format!("expected NoSpace for {want} bytes, got {other:?}").into()),
    }
    let leftovers: Vec<_> = std::fs::read_dir(&base)
        .map_err(|e| e.to_string())?
        .filter_map(|d| d.ok())
        .filter(|d| d.file_name().to_string_lossy().contains(&name))
        .collect();
    check(leftovers.is_empty(), format!("left behind: {leftovers:?}"))
}

/// A channel another process made with capacity 1024 (`u64`s: two pages): `create_or_open`
/// that asks for another capacity fails naming both, and opens nothing; one that asks for
/// what rounds to 1024 (as a restarted peer asks for what it asked before), or for nothing,
/// or for a capacity only if it creates, opens it. Typed and raw (the Python package's and
/// the command's way) alike.
pub fn create_or_open_requires_the_capacity_asked_for() -> R {
    let name = unique("capacity");
    let mut creator = Peer::spawn("hold_writer", &stream_env(&name, 0, 1, 1024, 1));
    check(creator.read_line()? == "ready", "creator not ready")?;
    let u64s = ElementType::primitive(Primitive::U64);
    let typed = |o: Options| ChannelIo::<u64>::create_or_open(&name, o).map(|c| c.capacity());
    let raw = |o: Options| RawChannel::create_or_open(&name, u64s, o).map(|c| c.capacity());
    for open in [
        &typed as &dyn Fn(Options) -> Result<usize, shmchan::Error>,
        &raw,
    ] {
        let e = open(Options::new().capacity(100_000)).unwrap_err();
        check(
            e.kind() == ErrorKind::CapacityMismatch
                && *e.context()
                    == Context::Capacity {
                        requested: 100_000,
                        rounded: 100_352,
                        found: 1024,
                    },
            format!("{e:?}"),
        )?;
        let msg = e.to_string();
        check(
            msg.contains(&name) && msg.contains("100000") && msg.contains("1024"),
            msg,
        )?;
        // Smaller than the channel is another capacity too (100 rounds to one page, 512).
        let e = open(Options::new().capacity(100)).unwrap_err();
        check(
            *e.context()
                == Context::Capacity {
                    requested: 100,
                    rounded: 512,
                    found: 1024,
                },
            format!("{e:?}"),
        )?;
        for same in [1024, 1000, 513] {
            let c = open(Options::new().capacity(same));
            check(matches!(c, Ok(1024)), format!("capacity {same}: {c:?}"))?;
        }
        for any in [Options::new(), Options::new().capacity_if_created(100_000)] {
            let c = open(any);
            check(matches!(c, Ok(1024)), format!("{c:?}"))?;
        }
        // An open ignores a capacity.
        let c = ChannelIo::<u64>::open_with(&name, Options::new().capacity(100_000));
        check(
            matches!(&c, Ok(c) if c.capacity() == 1024),
            format!("{c:?}"),
        )?;
    }
    // A capacity that is invalid is refused as such, whatever exists.
    let e = typed(Options::new().capacity(0)).unwrap_err();
    check(e.kind() == ErrorKind::InvalidCapacity, format!("{e:?}"))?;
    // Refusals claimed nothing: the creator's end is still its own, and nobody else's.
    let info = ChannelIo::inspect(&name)?;
    check(
        info.capacity == 1024 && info.writer.held && info.writer.claims == 1,
        format!("{info:?}"),
    )?;
    creator.kill9();
    ChannelIo::remove(&name)?;
    Ok(())
}
