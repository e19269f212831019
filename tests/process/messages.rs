//! Message channels across processes: writers and readers killed with SIGKILL at random
//! points and restarted; every message arrives whole, once, in order, because both indices
//! only ever stand at message boundaries.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use libtest_mimic::Failed;
use shmchan::{ErrorKind, MessageChannel, Options};
use shmchan_testkit::{background, unique, Rng};

use crate::harness::{check, env, env_u64, Peer, R, TIMEOUT};

/// Message `i`: `i` (8 bytes, little-endian), then 0 to 2999 bytes that depend on `i`.
fn message(i: u64) -> Vec<u8> {
    let extra = (i.wrapping_mul(7919) % 3000) as usize;
    let mut m = i.to_le_bytes().to_vec();
    m.extend((0..extra).map(|k| (i as usize).wrapping_mul(31).wrapping_add(k) as u8));
    m
}

/// The number message `m` carries, if it is that message whole.
fn number(m: &[u8]) -> Result<u64, String> {
    let i = u64::from_le_bytes(
        m.get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("a message of {} bytes", m.len()))?,
    );
    if m != message(i) {
        return Err(format!("message {i} garbled ({} bytes)", m.len()));
    }
    Ok(i)
}

const TOTAL: u64 = 60_000;

/// Writers killed at random points (while putting, or holding) and restarted after the
/// last message the reader got from the dead one: the reader gets every message once.
pub fn message_writers_killed_and_restarted() -> R {
    let name = unique("mwkill");
    let chan = MessageChannel::create(&name, Options::new().capacity(2048))?;
    let mut r = chan.reader()?;
    r.set_timeout(Some(*TIMEOUT));
    // Reports the next message expected each time the writer dies (once nothing is left).
    let (deaths_tx, deaths) = mpsc::channel();
    let reader = background("message reader", move || -> Result<u64, String> {
        let mut next = 0u64;
        let mut bufs = vec![Vec::new(); 64];
        loop {
            match r.blocking_get_some(&mut bufs) {
                Ok(k) => {
                    for b in &bufs[..k] {
                        let i = number(b)?;
                        if i != next {
                            return Err(format!("expected message {next}, got {i}"));
                        }
                        next += 1;
                    }
                }
                Err(e) if e.kind() == ErrorKind::PeerGone && e.remaining() == 0 => {
                    let _ = deaths_tx.send(next);
                }
                Err(e) if e.kind() == ErrorKind::Closed && e.remaining() == 0 => return Ok(next),
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    let mut rng = Rng(0x3e55_a9e5);
    let mut start = 0u64;
    for round in 0..6 {
        let mut env = vec![("NAME", name.clone()), ("START", start.to_string())];
        if round == 5 {
            Peer::spawn("message_writer", &env).success()?;
            break;
        }
        env.push(("HOLD", (1 + rng.below(TOTAL / 8)).to_string()));
        let mut w = Peer::spawn("message_writer", &env);
        check(w.read_line()? == "claimed", "writer did not claim")?;
        std::thread::sleep(Duration::from_millis(rng.below(40)));
        w.kill9();
        start = deaths
            .recv_timeout(*TIMEOUT)
            .map_err(|e| format!("the reader did not see writer {round} die: {e}"))?;
    }
    let got = reader.wait(*TIMEOUT)?.map_err(Failed::from)?;
    check(got == TOTAL, format!("{got} messages, not {TOTAL}"))
}

/// A writer that puts messages START.. in random batches until TOTAL, then closes; with
/// HOLD, it puts that many and waits to be killed.
pub fn role_message_writer() -> Result<(), String> {
    let chan = MessageChannel::open(&env("NAME")).map_err(|e| e.to_string())?;
    let mut w = chan.writer().map_err(|e| e.to_string())?;
    println!("claimed");
    let start = env_u64("START");
    let hold = std::env::var("HOLD")
        .ok()
        .and_then(|h| h.parse::<u64>().ok());
    let end = hold.map_or(TOTAL, |h| (start + h).min(TOTAL));
    let mut rng = Rng(start | 1);
    let mut next = start;
    while next < end {
        let n = (1 + rng.below(20)).min(end - next);
        let batch: Vec<Vec<u8>> = (next..next + n).map(message).collect();
        w.blocking_put(&batch).map_err(|e| e.to_string())?;
        next += n;
    }
    if hold.is_some() {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return Ok(());
    }
    w.close();
    Ok(())
}

/// Readers killed at random points and restarted, while this process writes: each prints
/// the number of every message it checked before consuming it, so a restarted reader starts
/// at the last one its predecessor printed or the one after, and the numbers run on.
pub fn message_readers_killed_and_restarted() -> R {
    let name = unique("mrkill");
    let chan = MessageChannel::create(&name, Options::new().capacity(2048))?;
    let mut w = chan.writer()?;
    w.set_timeout(Some(*TIMEOUT));
    let writer = background("message writer", move || -> Result<(), String> {
        let mut rng = Rng(77);
        let mut next = 0;
        while next < TOTAL {
            let n = (1 + rng.below(20)).min(TOTAL - next);
            let batch: Vec<Vec<u8>> = (next..next + n).map(message).collect();
            if let Err(e) = w.blocking_put(&batch) {
                // A killed reader: what went in is in; put the rest of the batch again.
                if e.kind() != ErrorKind::PeerGone {
                    return Err(e.to_string());
                }
                next += e.accepted() as u64;
                continue;
            }
            next += n;
        }
        w.close();
        Ok(())
    });
    let mut rng = Rng(0x5eed);
    let mut last: Option<u64> = None;
    for round in 0..8 {
        let mut r = Peer::spawn("message_reader", &[("NAME", name.clone())]);
        let lines = r.lines();
        let final_round = round == 7;
        if !final_round {
            std::thread::sleep(Duration::from_millis(20 + rng.below(60)));
            r.kill9();
        }
        let mut ended = false;
        loop {
            match lines.recv_timeout(*TIMEOUT) {
                Ok(l) if l == "end" => {
                    ended = true;
                    break;
                }
                Ok(l) => {
                    let i: u64 = l.parse().map_err(|_| format!("reader said {l:?}"))?;
                    let ok = match last {
                        None => i == 0,
                        // The first of a restarted reader: its predecessor may have printed
                        // it without consuming it.
                        Some(p) => i == p + 1 || i == p,
                    };
                    check(ok, format!("message {i} after {last:?}"))?;
                    last = Some(i);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => return Err(format!("reader {round}: {e}").into()),
            }
        }
        if final_round {
            check(ended, "the last reader did not see the end")?;
            r.success()?;
        }
    }
    writer.wait(*TIMEOUT)?.map_err(Failed::from)?;
    check(
        last == Some(TOTAL - 1),
        format!("the last message read was {last:?}"),
    )
}

/// A reader that prints each message's number (checked whole) before it consumes it, and
/// "end" when the writer closes.
pub fn role_message_reader() -> Result<(), String> {
    let chan = MessageChannel::open(&env("NAME")).map_err(|e| e.to_string())?;
    let mut r = chan.reader().map_err(|e| e.to_string())?;
    loop {
        match r.blocking_peek() {
            Ok(m) => {
                println!("{}", number(&m)?);
                m.consume();
            }
            // The writer closed: a clean end.
            Err(e) if e.kind() == ErrorKind::Closed => {
                println!("end");
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
