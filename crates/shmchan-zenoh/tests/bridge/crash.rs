//! Kill -9 of either bridge, and of the local writer: nothing lost, nothing twice, and the
//! stream carries on once the dead are restarted.

use super::*;

/// The longest a kill waits once the stream has moved on since the last (so that it lands
/// at a random point: mid-sample, mid-hello, in a restarted bridge that is still starting).
const PACE_MS: u64 = 300;

#[test]
fn kill_9_of_the_push_or_the_pull_loses_nothing_once_restarted() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "kill_9_of_the_push_or_the_pull_loses_nothing_once_restarted",
    );
    for kill_push in [true, false] {
        let mut p = Pair::new(if kill_push { "kp" } else { "kq" });
        let _c = p.cleanup();
        let chan = ChannelIo::<u64>::create(&p.local, Options::new().capacity(1 << 12)).unwrap();
        const COUNT: u64 = 2_000_000;
        let writer = held_writer(chan.writer().unwrap(), COUNT);
        p.start_push();
        p.start_pull();
        let (tx, progress) = mpsc::channel();
        let reader = counting_reader(p.far.clone(), tx);
        read_past(&progress, 100_000); // mid-stream
        if kill_push {
            p.push.as_mut().unwrap().kill9();
            p.start_push();
        } else {
            p.pull.as_mut().unwrap().kill9();
            p.start_pull();
        }
        all_arrived(reader, writer.release(), COUNT);
        p.both_exit_0();
    }
}

#[test]
fn a_kill_storm_loses_nothing_and_duplicates_nothing() {
    let _w = Deadline::new(
        Duration::from_secs(900),
        "a_kill_storm_loses_nothing_and_duplicates_nothing",
    );
    let mut p = Pair::new("storm");
    let _c = p.cleanup();
    let chan = ChannelIo::<u64>::create(&p.local, Options::new().capacity(1 << 16)).unwrap();
    // 256 MiB of u64s.
    const COUNT: u64 = 32 << 20;
    let writer = held_writer(chan.writer().unwrap(), COUNT);
    p.start_push();
    p.start_pull();
    let (tx, progress) = mpsc::channel();
    let reader = counting_reader(p.far.clone(), tx);
    let mut rng = shmchan_testkit::Rng(0x5eed_0bad_cafe_f00d);
    let mut kills = 0;
    let mut round = 0;
    while kills < 32 {
        // Spread over the stream: each round waits for the far reader to move on.
        round += 1;
        read_past(&progress, round * (COUNT / 40));
        std::thread::sleep(Duration::from_millis(rng.next_u64() % PACE_MS));
        match rng.next_u64() % 3 {
            0 => {
                p.push.as_mut().unwrap().kill9();
                p.start_push();
                kills += 1;
            }
            1 => {
                p.pull.as_mut().unwrap().kill9();
                p.start_pull();
                kills += 1;
            }
            _ => {
                p.push.as_mut().unwrap().kill9();
                p.pull.as_mut().unwrap().kill9();
                p.start_pull();
                p.start_push();
                kills += 2;
            }
        }
    }
    let (writer_deaths, deaths) = all_arrived(reader, writer.release(), COUNT);
    assert!(kills >= 30, "only {kills} kills before the stream ended");
    eprintln!(
        "storm: {kills} kills; the writer saw its reader die {writer_deaths} times, the far \
         reader its writer {deaths} times"
    );
    p.both_exit_0();
}

#[test]
fn a_dead_writer_is_no_end_of_stream_and_a_restarted_one_carries_on() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "a_dead_writer_is_no_end_of_stream_and_a_restarted_one_carries_on",
    );
    let mut p = Pair::new("wd");
    let _c = p.cleanup();
    ChannelIo::<u64>::create(&p.local, Options::new().capacity(1 << 12).persist(true)).unwrap();
    // A writer process that puts 0..3000, then dies without closing.
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash::role_writer_that_dies", "--nocapture"])
        .env(ROLE, &p.local)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    p.start_pull();
    p.start_push();
    let far_chan = {
        ChannelIo::blocking_wait_created(&p.far, Some(TIMEOUT)).unwrap();
        ChannelIo::<u64>::open(&p.far).unwrap()
    };
    let mut r = far_chan.reader().unwrap();
    r.set_timeout(Some(TIMEOUT));
    let mut got = vec![0u64; 3000];
    r.blocking_get(&mut got).unwrap();
    assert_eq!(got, (0..3000).collect::<Vec<u64>>());
    // The writer's death crosses as the far writer's: not as an end of stream.
    let e = r.blocking_get(&mut [0u64; 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PeerGone, "{e}");
    let (ok, err) = p.finish_push();
    assert!(!ok, "the push fails: the stream did not end");
    assert!(err.contains("died") && err.contains("--resume"), "{err}");
    // A restarted writer carries on, and so does a restarted push.
    let chan = ChannelIo::<u64>::open(&p.local).unwrap();
    let mut w = chan.writer().unwrap();
    p.start_push();
    w.blocking_put(&(3000..4000).collect::<Vec<u64>>()).unwrap();
    w.close();
    let mut rest = vec![0u64; 1000];
    r.blocking_get(&mut rest).unwrap();
    assert_eq!(rest, (3000..4000).collect::<Vec<u64>>());
    let e = r.blocking_get(&mut [0u64; 1]).unwrap_err();
    assert!(e.kind() == ErrorKind::Closed && e.remaining() == 0, "{e}");
    p.both_exit_0();
    drop(chan);
    let _ = ChannelIo::remove(&p.local);
}

/// The variable that makes [`role_writer_that_dies`] act: the channel to write.
const ROLE: &str = "SHMCHAN_BRIDGE_TEST_WRITER";

/// Not a test of its own: a child process that puts 0..3000 into the channel named by
/// [`ROLE`], then dies by SIGKILL. Run without it, it does nothing.
#[test]
fn role_writer_that_dies() {
    let Ok(name) = std::env::var(ROLE) else {
        return;
    };
    let chan = ChannelIo::<u64>::open(&name).unwrap();
    let mut w = chan.writer().unwrap();
    w.blocking_put(&(0..3000).collect::<Vec<u64>>()).unwrap();
    // SAFETY: raising a signal in our own process, which ends it.
    unsafe { libc::raise(libc::SIGKILL) };
}
