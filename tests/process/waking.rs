//! Wakeups: both sides sleeping on every wait, and the lost-wakeup race tried on every round
//! of a ping-pong, each with a membarrier and a fence channel.

use libtest_mimic::Failed;
use shmchan::{ChannelIo, WaitStrategy};
use shmchan_testkit::{unique, Rng};

use crate::barrier::membarrier_available;
use crate::harness::{check, env, env_u64, gone, report, stat, Peer, R};
use crate::roles::{child_options, stream_env};

/// [`no_spin_stress`] on membarrier channels.
pub fn no_spin_stress_membarrier() -> R {
    // A debug build is slower, so each side sleeps more often per item.
    let items = if cfg!(debug_assertions) {
        500_000
    } else {
        2_000_000
    };
    no_spin_stress("membarrier", items, 10_000)
}

/// [`no_spin_stress`] on fence channels.
pub fn no_spin_stress_fence() -> R {
    no_spin_stress("fence", 200_000, 1000)
}

/// [`pingpong_race`] on membarrier channels (the variant `scripts/control.sh` runs).
pub fn pingpong_race_membarrier() -> R {
    pingpong_race("membarrier", 200_000, 5_000)
}

/// [`pingpong_race`] on fence channels.
pub fn pingpong_race_fence() -> R {
    pingpong_race("fence", 20_000, 1_000)
}

/// Both sides sleep on every wait (no spin) with a tiny ring and tiny batches: thousands of
/// doorbell round trips; a lost wakeup hangs and the watchdog fails the test. Run for both
/// barriers; `membarrier` must see at least 10 000 sleeps on each side (#4's bar for the
/// asymmetric protocol), counted as the sleeps the slow side's gate saw (see `Jitter`), so
/// the floor holds however slow `membarrier(2)` is; the watchdog is on progress, so a slow
/// run is not taken for a hang.
pub fn no_spin_stress(barrier: &str, count: u64, min_sleeps: u64) -> R {
    if barrier == "membarrier" && !membarrier_available()? {
        return Ok(());
    }
    // Which side starts first, how it waits, and how the second one waits: blocking and
    // tokio against each other both ways, then both in an event loop of their own
    // (`prepare_wait`, poll(2) on `wait_fd`, `finish_wait`).
    let configs = [
        (true, None, "ASYNC"),
        (false, None, "ASYNC"),
        (true, Some("EVENTLOOP"), "EVENTLOOP"),
    ];
    for (i, order) in configs.into_iter().enumerate() {
        no_spin_round(barrier, count, min_sleeps, 100 + i as u64, order)?;
    }
    Ok(())
}

/// Which side starts first, how it waits (`None`: blocking), and how the second one waits.
type Order = (bool, Option<&'static str>, &'static str);

/// One stream of [`no_spin_stress`], its sides started in `order`.
fn no_spin_round(barrier: &str, count: u64, min_sleeps: u64, seed: u64, order: Order) -> R {
    let (reader_first, first_via, second_via) = order;
    let name = unique("nospin");
    let mut e = stream_env(&name, count, 9, 512, seed);
    e.push(("NOSPIN", "1".into()));
    e.push(("READY", "1".into()));
    e.push(("BARRIER", barrier.into()));
    e.push(("JITTER", "10000".into()));
    e.push(("GATE", "2".into()));
    let (reader, writer) = spawn_in_order(e, order)?;
    let (w_out, r_out) = (
        writer.success_while_progressing()?,
        reader.success_while_progressing()?,
    );
    let (line, r_sleeps) = report(&r_out);
    let w_sleeps = report(&w_out).1;
    eprintln!(
        "no-spin stress ({barrier}, {:?} first, then {second_via}): reader slept {r_sleeps} \
         times, writer {w_sleeps} times",
        first_via.unwrap_or(if reader_first {
            "blocking reader"
        } else {
            "blocking writer"
        })
    );
    check(
        line == format!("read {count} closed"),
        format!("reader said {r_out:?}"),
    )?;
    // The point of the test is the doorbell path: make sure both sides took it. The
    // sleeps that the gates saw (see `Jitter`) do not depend on timing; the others do
    // (a slow membarrier(2) lets the re-check win), so the floor is on the gated ones.
    let (r_gated, w_gated) = (stat(&r_out, "gated"), stat(&w_out, "gated"));
    eprintln!("  of which the peer's gate saw: reader {w_gated}, writer {r_gated}");
    check(
        r_sleeps >= w_gated && w_sleeps >= r_gated,
        format!(
            "reader slept {r_sleeps} times, writer {w_sleeps}, fewer than the gates saw \
             ({w_gated}, {r_gated})"
        ),
    )?;
    check(
        w_gated >= min_sleeps && r_gated >= min_sleeps,
        format!(
            "the gates saw only {w_gated} + {r_gated} sleeps (want {min_sleeps} each): \
             the doorbell path was barely used"
        ),
    )?;
    // Every wake came from a doorbell, none from a timed re-check that could hide a
    // lost wakeup.
    let timed = stat(&r_out, "timed") + stat(&w_out, "timed");
    check(timed == 0, format!("{timed} timed sleeps"))?;
    check(gone(&name), "finished channel left files behind")
}

/// Starts a stream reader and writer with `e`, in `order`: the first side has claimed before
/// the second starts. Returns (reader, writer).
fn spawn_in_order(
    mut e: Vec<(&'static str, String)>,
    order: Order,
) -> Result<(Peer, Peer), Failed> {
    let (reader_first, first_via, second_via) = order;
    let (mut reader, mut writer);
    if let Some(via) = first_via {
        e.push((via, "1".into()));
    }
    // The first side has claimed before the second starts.
    if reader_first {
        reader = Peer::spawn("stream_reader", &e);
        check(reader.read_line()? == "claimed", "reader did not claim")?;
        e.push((second_via, "1".into()));
        writer = Peer::spawn("stream_writer", &e);
    } else {
        writer = Peer::spawn("stream_writer", &e);
        check(writer.read_line()? == "claimed", "writer did not claim")?;
        e.push((second_via, "1".into()));
        reader = Peer::spawn("stream_reader", &e);
    }
    Ok((reader, writer))
}

/// The lost-wakeup race, tried on every round of a cross-process ping-pong (see
/// `role_pingpong`): a lost wakeup hangs both sides and the watchdog fails the test.
///
/// This test finds the bug it guards against: `scripts/control.sh` (run by CI) builds the
/// crate with the sleeper's membarrier left out (`--cfg shmchan_control`) and
/// requires the membarrier variant to fail by hanging. With membarrier, a sleeper's re-check comes after the peer's CPU was made to
/// fence (microseconds later), so it rarely needs to sleep: the race is tried at each
/// announcement, not only at each sleep, and the sleep floor only shows the doorbell path
/// was taken. `no_spin_stress` provides the 10 000 sleeps per side.
///
/// `min_tries`: the least number of race attempts each side must make: announcements of a
/// sleep (`WaitStats::barriers`) with membarrier, sleeps with fences. How often a sleeper
/// finds the data not there yet depends on the machine, so the ping-pong runs at least
/// `rounds` rounds and then goes on until both sides have made `min_tries` attempts, up to
/// ten times `rounds` (see `role_pingpong`).
pub fn pingpong_race(barrier: &str, rounds: u64, min_tries: u64) -> R {
    if barrier == "membarrier" && !membarrier_available()? {
        return Ok(());
    }
    let (a, b) = (unique("ping"), unique("pong"));
    let e = |side: &str| {
        let mut e = stream_env(&a, rounds, 1, 512, 77);
        e.push(("NAME_B", b.clone()));
        e.push(("SIDE", side.into()));
        e.push(("DELAY", "150".into()));
        e.push(("BARRIER", barrier.into()));
        e.push(("MIN_TRIES", min_tries.to_string()));
        e
    };
    let responder = Peer::spawn("pingpong", &e("responder"));
    let initiator = Peer::spawn("pingpong", &e("initiator"));
    let (i_out, r_out) = (
        initiator.success_while_progressing()?,
        responder.success_while_progressing()?,
    );
    let (i_sleeps, r_sleeps) = (report(&i_out).1, report(&r_out).1);
    let (i_ann, r_ann) = (stat(&i_out, "barriers"), stat(&r_out, "barriers"));
    let (i_rounds, r_rounds) = (stat(&i_out, "rounds"), stat(&r_out, "rounds"));
    eprintln!(
        "ping-pong race ({barrier}): {i_sleeps} + {r_sleeps} sleeps, {i_ann} + {r_ann} \
         membarriers in {i_rounds} rounds"
    );
    check(
        i_rounds == r_rounds && i_rounds >= rounds,
        format!("the sides ran {i_rounds} and {r_rounds} rounds (at least {rounds} wanted)"),
    )?;
    let (i_tries, r_tries) = if barrier == "membarrier" {
        (i_ann, r_ann)
    } else {
        check(i_ann + r_ann == 0, "membarrier calls on a fence channel")?;
        (i_sleeps, r_sleeps)
    };
    check(
        i_tries >= min_tries && r_tries >= min_tries,
        format!("only {i_tries} + {r_tries} race attempts (want {min_tries} each)"),
    )?;
    check(gone(&a) && gone(&b), "finished channels left files behind")
}

/// One side of a ping-pong of COUNT rounds over two channels (NAME carries pings, NAME_B
/// pongs): the initiator puts `i` on NAME and waits for `i` on NAME_B; the responder echoes.
/// In phases of 256 rounds one side spins (the default strategy) and the other sleeps at
/// once (`WaitStrategy::Sleep`) after a random 0..DELAY steps of work, so the sleeper
/// announces its sleep at random moments around the spinner's publish: the lost-wakeup race,
/// tried once per round. Each side waits on the other, so one lost wakeup hangs both.
///
/// After COUNT rounds, the sides go on until each has made MIN_TRIES race attempts (see
/// [`pingpong_race`]), up to 10 × COUNT rounds. Each value carries its sender's "done" in bit
/// 63, so at the end of round `i` both sides know both flags (the initiator sent its own in
/// the ping and reads the responder's in the pong; the responder the other way round) and
/// stop after the same round.
pub fn role_pingpong() -> Result<(), String> {
    const DONE: u64 = 1 << 63;
    let rounds = env_u64("COUNT");
    let max_rounds = rounds * 10;
    let min_tries = env_u64("MIN_TRIES");
    let fence = env("BARRIER") == "fence";
    let delay = env_u64("DELAY");
    let initiator = env("SIDE") == "initiator";
    let mut rng = Rng(env_u64("SEED").wrapping_mul(if initiator { 3 } else { 5 }) | 1);
    let open = |n: &str| ChannelIo::<u64>::create_or_open(n, child_options());
    let (ping, pong) = (
        open(&env("NAME")).map_err(|e| e.to_string())?,
        open(&env("NAME_B")).map_err(|e| e.to_string())?,
    );
    let (mut w, mut r) = if initiator {
        (ping.writer(), pong.reader())
    } else {
        (pong.writer(), ping.reader())
    };
    let (w, r) = (
        w.as_mut().map_err(|e| e.to_string())?,
        r.as_mut().map_err(|e| e.to_string())?,
    );
    let mut got = [0u64];
    let mut i = 0;
    loop {
        let stats = r.wait_stats();
        let tries = if fence { stats.sleeps } else { stats.barriers };
        // Once set, a side's flag stays set: `i` and `tries` only grow.
        let me_done = if i + 1 >= rounds && tries >= min_tries || i + 1 >= max_rounds {
            DONE
        } else {
            0
        };
        if i % 1024 == 0 {
            println!("at {i}"); // for the parent's progress watchdog
        }
        let sleeper = ((i / 256) % 2 == 0) == initiator;
        if i % 256 == 0 {
            r.set_wait_strategy(if sleeper {
                WaitStrategy::Sleep
            } else {
                WaitStrategy::default()
            });
        }
        if initiator {
            w.blocking_put(&[i | me_done]).map_err(|e| e.to_string())?;
        }
        if sleeper {
            let mut x = rng.next_u64();
            for _ in 0..rng.below(delay) {
                x = std::hint::black_box(x.rotate_left(5) ^ 0x9e37_79b9_7f4a_7c15);
            }
            std::hint::black_box(x);
        }
        r.blocking_get(&mut got).map_err(|e| e.to_string())?;
        if got[0] & !DONE != i {
            return Err(format!("round {i}: got {}", got[0] & !DONE));
        }
        if !initiator {
            w.blocking_put(&[i | me_done]).map_err(|e| e.to_string())?;
        }
        i += 1;
        if me_done != 0 && got[0] & DONE != 0 {
            break;
        }
    }
    println!("rounds {i}");
    println!("sleeps {}", r.wait_stats().sleeps);
    println!("barriers {}", r.wait_stats().barriers);
    Ok(())
}
