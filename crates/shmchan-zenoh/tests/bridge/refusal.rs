//! Refusals, start orders and waiting: nothing is consumed before the pull took the stream,
//! a refused stream arrives whole once the far side is fixed, and each side waits for what
//! is not there yet.

use super::*;

/// A local channel of capacity 4096 that receives `count` u64s (0, 1, …), then its close:
/// the first 4096 at once (the ring holds them), the rest from a thread, carrying on across
/// the deaths of its reader.
fn closed_channel(p: &Pair, count: u64) -> ChannelIo<u64> {
    let chan = ChannelIo::<u64>::create(&p.local, Options::new().capacity(1 << 12)).unwrap();
    let mut w = chan.writer().unwrap();
    let first = count.min(4096);
    w.blocking_put(&(0..first).collect::<Vec<u64>>()).unwrap();
    std::thread::spawn(move || {
        let rest: Vec<u64> = (first..count).collect();
        let mut at = 0;
        while at < rest.len() {
            match w.blocking_put(&rest[at..]) {
                Ok(()) => at = rest.len(),
                Err(e) if e.kind() == ErrorKind::PeerGone => at += e.accepted(),
                Err(e) => panic!("writer: {e}"),
            }
        }
        w.close();
    });
    chan
}

/// Reads the whole far stream of `count` items and its close.
fn read_all(far: &str, count: u64) {
    ChannelIo::blocking_wait_created(far, Some(TIMEOUT)).unwrap();
    let chan = ChannelIo::<u64>::open(far).unwrap();
    let mut r = chan.reader().unwrap();
    r.set_timeout(Some(TIMEOUT));
    let mut got = vec![0u64; count as usize];
    r.blocking_get(&mut got).unwrap();
    assert!(
        got.iter().enumerate().all(|(i, v)| *v == i as u64),
        "items 0..{count} in order"
    );
    let e = r.blocking_get(&mut [0u64; 1]).unwrap_err();
    assert!(e.kind() == ErrorKind::Closed && e.remaining() == 0, "{e}");
}

/// The bytes of the file system channels live on, if a ring twice that size is one shmchan
/// could make (so that creating it fails for want of space, not for its size).
fn shm_bytes() -> Option<u64> {
    let st = rustix::fs::statvfs(shmchan::base_dir()).ok()?;
    let total = st.f_blocks * st.f_frsize;
    (total > 0 && total.saturating_mul(2) <= shmchan::MAX_DATA_LEN).then_some(total)
}

#[test]
fn a_refused_stream_loses_nothing_and_arrives_whole_once_the_far_side_is_fixed() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "a_refused_stream_loses_nothing_and_arrives_whole_once_the_far_side_is_fixed",
    );
    // Each way of refusing: the far channel's type, its capacity, a channel larger than the
    // pull may create, and one larger than the far shared memory.
    let mut ways = vec![
        ("type", "f64"),
        ("capacity", "exists with capacity 4096"),
        ("max-bytes", "max-bytes"),
    ];
    match shm_bytes() {
        Some(_) => ways.push(("no-space", "not enough shared memory")),
        None => eprintln!("no-space: skipped, the shared memory has no size limit to exceed"),
    }
    for (how, want) in ways {
        let mut p = Pair::new("ref");
        let _c = p.cleanup();
        let local = closed_channel(&p, 10_000);
        match how {
            "type" => drop(ChannelIo::<f64>::create(&p.far, Options::new().persist(true)).unwrap()),
            "capacity" => {
                drop(
                    ChannelIo::<u64>::create(&p.far, Options::new().capacity(4096).persist(true))
                        .unwrap(),
                );
                p.pull_args = vec!["--capacity".into(), "8192".into()];
            }
            "max-bytes" => p.pull_args = vec!["--max-bytes".into(), "4096".into()],
            _ => {
                // Twice the file system's bytes of u64, which --max-bytes allows.
                let fs = shm_bytes().unwrap();
                p.pull_args = vec![
                    "--capacity".into(),
                    (2 * fs / 8).to_string(),
                    "--max-bytes".into(),
                    (4 * fs).to_string(),
                ];
            }
        }
        p.start_pull();
        p.start_push();
        let (ok, err) = p.finish_push();
        assert!(!ok, "{how}: the push fails");
        assert!(
            err.contains("refused") && err.contains(want),
            "{how}: push said {err}"
        );
        let info = ChannelIo::inspect(&p.local).unwrap();
        assert_eq!(
            (info.head, info.tail),
            (0, 4096),
            "{how}: nothing was consumed"
        );
        // The operator fixes the far side and restarts what exited.
        p.pull = None;
        p.pull_args.clear();
        match how {
            // Nothing was created.
            "max-bytes" | "no-space" => assert!(!shmchan::channel_dir(&p.far).exists(), "{how}"),
            _ => ChannelIo::remove(&p.far).unwrap(),
        }
        p.start_pull();
        p.start_push();
        read_all(&p.far, 10_000);
        let (ok, err) = p.finish_push();
        assert!(ok, "{how}: push: {err}");
        let (ok, err) = p.finish_pull();
        assert!(ok, "{how}: pull: {err}");
        drop(local);
    }
}

#[test]
fn the_pull_checks_its_arguments_before_it_says_ready() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "the_pull_checks_its_arguments_before_it_says_ready",
    );
    for (args, want) in [
        (
            &["pull", "k/a", "--into", "bad/name"][..],
            "invalid channel name",
        ),
        (
            &["pull", "k/b", "--into", "ok", "--capacity", "0"][..],
            "capacity",
        ),
        (&["pull", "k/*", "--into", "ok"][..], "wildcards"),
        (&["push", "bad/name"][..], "invalid channel name"),
    ] {
        let b = Bridge::spawn(args);
        let said: Vec<String> = b.lines.try_iter().collect();
        let (ok, err) = b.finish();
        assert!(!ok, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!said.iter().any(|l| l == "ready"), "{args:?}: {said:?}");
    }
}

#[test]
fn a_push_waits_for_its_channel_to_be_created() {
    let _w = Deadline::new(TEST_LIMIT, "a_push_waits_for_its_channel_to_be_created");
    let mut p = Pair::new("late");
    let _c = p.cleanup();
    p.start_push(); // no channel yet
    p.start_pull();
    let local = closed_channel(&p, 10_000);
    read_all(&p.far, 10_000);
    p.both_exit_0();
    drop(local);
    // With a timeout, and no channel: a clear error.
    let mut q = Pair::new("never");
    q.push_args = vec!["--timeout".into(), "0.2".into()];
    q.start_push();
    let (ok, err) = q.finish_push();
    assert!(
        !ok && err.contains("timed out waiting for it to be created"),
        "{err}"
    );
}

#[test]
fn an_idle_push_outlives_a_restarted_pull() {
    let _w = Deadline::new(TEST_LIMIT, "an_idle_push_outlives_a_restarted_pull");
    let mut p = Pair::new("idle");
    let _c = p.cleanup();
    let chan = ChannelIo::<u64>::create(&p.local, Options::new().capacity(1 << 12)).unwrap();
    p.start_push();
    p.start_pull();
    p.pull.as_ref().unwrap().expect("started"); // the stream was taken, nothing sent
    p.pull.as_mut().unwrap().kill9();
    p.start_pull();
    let (tx, _progress) = mpsc::channel();
    let reader = counting_reader(p.far.clone(), tx);
    let writer = counting_writer(chan.writer().unwrap(), 100_000);
    all_arrived(reader, writer, 100_000);
    p.both_exit_0();
}

#[test]
fn a_pull_without_a_push_gives_up_after_its_timeout() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "a_pull_without_a_push_gives_up_after_its_timeout",
    );
    let mut p = Pair::new("alone");
    p.pull_args = vec!["--timeout".into(), "0.3".into()];
    p.start_pull();
    let (ok, err) = p.finish_pull();
    assert!(!ok && err.contains("no push"), "{err}");
    assert!(
        !shmchan::channel_dir(&p.far).exists(),
        "nothing was created"
    );
}
