//! Stalls: a pull stopped (SIGSTOP) long enough for zenoh to give up on it, and a far
//! reader that pauses for a minute. Neither hangs anything or breaks the stream.

use super::*;

fn signal(b: &Bridge, sig: libc::c_int) {
    // SAFETY: sending a signal to our own child, which has not been waited for (so its pid
    // names it).
    let rc = unsafe { libc::kill(b.child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({sig})");
}

#[test]
fn a_stopped_pull_hangs_nothing_and_the_stream_carries_on() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "a_stopped_pull_hangs_nothing_and_the_stream_carries_on",
    );
    for then_kill in [false, true] {
        let mut p = Pair::new("stop");
        let _c = p.cleanup();
        let chan = ChannelIo::<u64>::create(&p.local, Options::new().capacity(1 << 14)).unwrap();
        const COUNT: u64 = 3_000_000;
        let writer = held_writer(chan.writer().unwrap(), COUNT);
        p.start_push();
        p.start_pull();
        let (tx, progress) = mpsc::channel();
        let reader = counting_reader(p.far.clone(), tx);
        read_past(&progress, 200_000);
        // Longer than zenoh's lease (10 s): the push takes the pull for gone meanwhile.
        signal(p.pull.as_ref().unwrap(), libc::SIGSTOP);
        std::thread::sleep(Duration::from_secs(14));
        if then_kill {
            p.pull.as_mut().unwrap().kill9();
            p.start_pull();
        } else {
            signal(p.pull.as_ref().unwrap(), libc::SIGCONT);
        }
        all_arrived(reader, writer.release(), COUNT);
        p.both_exit_0();
    }
}

#[test]
fn a_far_reader_paused_for_a_minute_pauses_the_writer_and_breaks_nothing() {
    let _w = Deadline::new(
        Duration::from_secs(300),
        "a_far_reader_paused_for_a_minute_pauses_the_writer_and_breaks_nothing",
    );
    let mut p = Pair::new("pause");
    let _c = p.cleanup();
    let chan = ChannelIo::<u64>::create(&p.local, Options::new().capacity(1 << 14)).unwrap();
    const COUNT: u64 = 2_000_000;
    let writer = counting_writer(chan.writer().unwrap(), COUNT);
    p.pull_args = vec!["--capacity".into(), "16384".into()];
    p.start_push();
    p.start_pull();
    ChannelIo::blocking_wait_created(&p.far, Some(TIMEOUT)).unwrap();
    let far = ChannelIo::<u64>::open(&p.far).unwrap();
    let mut r = far.reader().unwrap();
    let mut buf = vec![0u64; 100_000];
    r.blocking_get(&mut buf).unwrap();
    assert!(buf.iter().enumerate().all(|(i, v)| *v == i as u64));
    // The pause: the far ring fills, then the push's window, then the local ring.
    std::thread::sleep(Duration::from_secs(65));
    let local = ChannelIo::inspect(&p.local).unwrap();
    assert_eq!(
        local.len(),
        local.capacity,
        "the local writer waits: its ring is full"
    );
    let mut next = 100_000u64;
    let end = loop {
        match r.blocking_get_some(&mut buf) {
            Ok(k) => {
                for v in &buf[..k] {
                    assert_eq!(*v, next);
                    next += 1;
                }
            }
            Err(e) => break e,
        }
    };
    assert!(
        end.kind() == ErrorKind::Closed && next == COUNT,
        "{end} after {next}"
    );
    writer.join().unwrap();
    p.both_exit_0();
}
