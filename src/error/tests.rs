//! The error's messages, progress counts and conversion.

use std::path::PathBuf;

use super::{Context, Error, ErrorKind};
use crate::header::End;

/// One error of each kind, with the context the library builds it with.
fn one_of_each() -> Vec<Error> {
    let path = || Context::Path(PathBuf::from("/dev/shm/shmchan.x"));
    let invalid = || Context::Invalid {
        value: "v".into(),
        reason: "why".into(),
    };
    let io = || std::io::Error::from_raw_os_error(1);
    let mut all = vec![
        Error::new(ErrorKind::InvalidName, "x").with_context(invalid()),
        Error::new(ErrorKind::InvalidCapacity, "x").with_context(invalid()),
        Error::new(ErrorKind::InvalidSchema, "x").with_context(invalid()),
        Error::new(ErrorKind::InvalidDescr, "x").with_context(invalid()),
        Error::new(ErrorKind::ElementMismatch, "x").with_context(Context::Element {
            type_name: "record",
            expected_size: 8,
            expected_align: 8,
            expected_descr: Some("'<M8[us]'".into()),
            found_size: 8,
            found_align: 8,
            found_type: None,
            found_descr: None,
        }),
        Error::new(ErrorKind::UnsupportedElement, "x").with_context(invalid()),
        Error::new(ErrorKind::AlreadyExists, "x").with_context(path()),
        Error::new(ErrorKind::NotFound, "x").with_context(path()),
        Error::new(ErrorKind::PermissionDenied, "x").with_context(path()),
        Error::new(ErrorKind::NotAChannel, "x").with_context(path()),
        Error::new(ErrorKind::ForeignOwner, "x").with_context(Context::Owner { owner: 1, uid: 2 }),
        Error::new(ErrorKind::SchemaMismatch, "x").with_context(Context::Schema {
            expected: Some("imu/v1".into()),
            found: None,
        }),
        Error::new(ErrorKind::CapacityMismatch, "x").with_context(Context::Capacity {
            requested: 1000,
            rounded: 1024,
            found: 512,
        }),
        Error::new(ErrorKind::NotInitialized, "x"),
        Error::new(ErrorKind::NoSpace, "x")
            .with_context(Context::Space {
                bytes: 1,
                dir: "/dev/shm".into(),
            })
            .with_source(io()),
        Error::new(ErrorKind::MembarrierUnavailable, "x").with_source(io()),
        Error::io("x", "opening", io()),
    ];
    for end in [End::Writer, End::Reader] {
        all.extend([
            Error::new(ErrorKind::EndTaken, "x")
                .with_context(Context::Holder { end, pid: Some(7) })
                .by(end),
            Error::new(ErrorKind::Closed, "x")
                .with_context(Context::ClosedBy(end))
                .by(end),
            Error::new(ErrorKind::Closed, "x").by(end),
            Error::new(ErrorKind::PeerGone, "x").by(end),
            Error::new(ErrorKind::TimedOut, "x").by(end),
            Error::new(ErrorKind::EndClosed, "x").by(end),
            Error::new(ErrorKind::Forked, "x")
                .with_context(Context::Holder { end, pid: Some(7) })
                .by(end),
            Error::new(ErrorKind::Forked, "x").by(end),
        ]);
    }
    all
}

/// The library's messages state facts: no front's API (a Rust path, a builder, an
/// `Option`'s debug form), which each front adds in its own words.
#[test]
fn messages_name_no_api_of_any_front() {
    for e in one_of_each() {
        let msg = e.to_string();
        for word in ["::", "Options", "Some(", "None", "(true)", "Barrier", "`"] {
            assert!(!msg.contains(word), "{msg:?} contains {word:?}");
        }
        assert!(msg.contains("'x'") || msg.contains("\"x\""), "{msg:?}");
    }
}

/// Progress is counted as the end's: accepted by a put, filled in by a get.
#[test]
fn progress_is_the_calls() {
    let put = Error::new(ErrorKind::PeerGone, "x")
        .by(End::Writer)
        .with_progress(3)
        .with_progress(4);
    assert_eq!((put.accepted(), put.filled()), (7, 0));
    assert!(put
        .to_string()
        .contains("7 items of this put were accepted"));
    let get = Error::new(ErrorKind::Closed, "x")
        .by(End::Reader)
        .with_remaining(2)
        .with_progress(5);
    assert_eq!((get.accepted(), get.filled(), get.remaining()), (0, 5, 2));
    assert!(get.is_end_of_stream());
    assert!(!put.is_end_of_stream());
    let claim = Error::new(ErrorKind::Closed, "x")
        .with_context(Context::ClosedBy(End::Reader))
        .by(End::Reader);
    assert!(!claim.is_end_of_stream());
}

/// An element mismatch names both sides' layouts, with their descriptions when they have
/// them.
#[test]
fn element_mismatch_names_both_descriptions() {
    let e = Error::new(ErrorKind::ElementMismatch, "ts").with_context(Context::Element {
        type_name: "record",
        expected_size: 8,
        expected_align: 8,
        expected_descr: Some("'<M8[us]'".into()),
        found_size: 8,
        found_align: 8,
        found_type: None,
        found_descr: Some("'<M8[ns]'".into()),
    });
    assert_eq!(
        e.to_string(),
        "channel 'ts' holds elements of 8 bytes aligned to 8, described as '<M8[ns]', but this \
         side's element type record has 8 bytes aligned to 8, described as '<M8[us]'"
    );
}

/// A capacity mismatch names both capacities, the rounding when it changed the request,
/// and what to do.
#[test]
fn capacity_mismatch_names_both_capacities() {
    let mismatch = |requested, rounded| {
        Error::new(ErrorKind::CapacityMismatch, "imu")
            .with_context(Context::Capacity {
                requested,
                rounded,
                found: 512,
            })
            .to_string()
    };
    assert_eq!(
        mismatch(100_000, 100_352),
        "channel 'imu' exists with capacity 512, but this side asks for 100000 (100352 once \
         rounded up to whole pages); open it without asking for a capacity to use it as it \
         is, or remove it to create it anew"
    );
    assert_eq!(
        mismatch(1024, 1024),
        "channel 'imu' exists with capacity 512, but this side asks for 1024; open it without \
         asking for a capacity to use it as it is, or remove it to create it anew"
    );
}

/// As an `io::Error`: the nearest kind, and the shmchan error inside.
#[test]
fn converts_to_io_errors() {
    let e: std::io::Error = Error::new(ErrorKind::NotFound, "x").into();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    let inner = e.into_inner().unwrap().downcast::<Error>().unwrap();
    assert_eq!(inner.kind(), ErrorKind::NotFound);
    // A system error keeps its kind.
    let os = std::io::Error::from_raw_os_error(libc::ENOENT);
    let e: std::io::Error = Error::io("x", "opening", os).into();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
}
