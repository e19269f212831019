//! The policy of `gc`, case by case, on headers made up here (the tests across processes,
//! in `tests/process/collecting.rs`, check it on real channels and real deaths).

use std::path::{Path, PathBuf};

use super::{judge, leftover_name, GcReason};
use crate::barrier::Barrier;
use crate::header::WriterState;
use crate::segment::info::{ChannelInfo, EndInfo};

const ME: u32 = 1000;

/// A channel of ours that a writer (pid 7) claimed once and no process has open: items
/// `head..tail`, the writer's state `writer_state`.
fn info(head: u64, tail: u64, writer_state: WriterState) -> ChannelInfo {
    let end = |claims| EndInfo {
        claims,
        pid: (claims > 0).then_some(7),
        start_time: 0,
        held: false,
    };
    ChannelInfo {
        name: "c".into(),
        dir: PathBuf::from("/dev/shm/shmchan.c"),
        owner_uid: ME,
        mode: 0o600,
        version: 2,
        elem_size: 8,
        elem_align: 8,
        elem_type: None,
        messages: false,
        message_count: None,
        descr: None,
        schema: None,
        capacity: 512,
        header_len: 4096,
        data_len: 4096,
        persist: false,
        barrier: Barrier::Fence,
        creator_pid: 7,
        created_unix_ns: 0,
        origin: None,
        tail,
        head,
        writer: end(1),
        reader: end(0),
        writer_state,
        reader_closed: false,
        in_use: false,
    }
}

#[test]
fn a_stale_channel_with_nothing_to_deliver_goes() {
    assert!(judge(&info(3, 3, WriterState::Open), false, ME).is_none());
    // Finished: its reader closed, whatever was left unread.
    let mut finished = info(0, 5, WriterState::Closed);
    finished.reader_closed = true;
    assert!(judge(&finished, false, ME).is_none());
}

#[test]
fn items_or_an_end_of_stream_for_a_reader_keep_it_unless_all() {
    let items = info(2, 7, WriterState::Open);
    assert!(matches!(
        judge(&items, false, ME),
        Some(GcReason::Undelivered {
            items: 5,
            end_of_stream: false
        })
    ));
    let closed = info(0, 0, WriterState::Closed);
    assert!(matches!(
        judge(&closed, false, ME),
        Some(GcReason::Undelivered {
            items: 0,
            end_of_stream: true
        })
    ));
    let aborted = info(1, 2, WriterState::Aborted("gone".into()));
    assert!(matches!(
        judge(&aborted, false, ME),
        Some(GcReason::Undelivered {
            items: 1,
            end_of_stream: true
        })
    ));
    for i in [items, closed, aborted] {
        assert!(judge(&i, true, ME).is_none());
    }
}

#[test]
fn a_persistent_channel_stays_unless_all() {
    let mut p = info(0, 0, WriterState::Open);
    p.persist = true;
    assert!(matches!(judge(&p, false, ME), Some(GcReason::Persistent)));
    assert!(judge(&p, true, ME).is_none());
}

#[test]
fn another_users_channel_stays_even_with_all_but_not_for_root() {
    let mut theirs = info(0, 0, WriterState::Open);
    theirs.owner_uid = 1001;
    for all in [false, true] {
        assert!(matches!(
            judge(&theirs, all, ME),
            Some(GcReason::OtherUser(1001))
        ));
    }
    assert!(judge(&theirs, false, 0).is_none());
    // Ownership comes first: a persistent channel of another user is theirs.
    theirs.persist = true;
    assert!(matches!(
        judge(&theirs, false, ME),
        Some(GcReason::OtherUser(1001))
    ));
}

#[test]
fn a_leftover_is_named_after_its_channel() {
    let name = |f: &str| leftover_name(&Path::new("/dev/shm").join(f));
    assert_eq!(name(".shmchan-tmp.imu.v2.4242.0.123456"), "imu.v2");
    // A remover's: named after the channel's directory.
    assert_eq!(name(".shmchan-tmp.shmchan.imu.4242.3.99"), "imu");
    // Not of the expected form: the name as it is.
    assert_eq!(name(".shmchan-tmp.odd"), "odd");
}
