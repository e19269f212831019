//! The message channel in one process: framing across the wrap, whole messages, the end of
//! the stream, the identity check, and hostile length words.

use std::time::Duration;

use super::MessageChannel;
use crate::{ChannelIo, ErrorKind, Options, RawChannel};

fn name(test: &str) -> String {
    format!("unit-msg-{test}-{}", std::process::id())
}

/// Message `i`: a length that varies from 0 to 2999 bytes, and bytes that say `i`.
fn message(i: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(7919) % 3000) as usize;
    (0..len)
        .map(|k| (i as usize).wrapping_mul(31).wrapping_add(k) as u8)
        .collect()
}

/// Every way in and out, across many wraps of a small ring: batches of `put`, `reserve`
/// with a shorter commit, `get`, `get_some` and `peek`; every message arrives whole, in
/// order, once.
#[test]
fn messages_of_every_length_arrive_whole_in_order() {
    let name = name("order");
    let chan = MessageChannel::create(&name, Options::new().capacity(1024)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    w.set_timeout(Some(Duration::from_secs(30)));
    r.set_timeout(Some(Duration::from_secs(30)));
    const COUNT: u64 = 20_000;
    let writer = std::thread::spawn(move || {
        let mut i = 0;
        while i < COUNT {
            if i % 3 == 0 {
                // In place, reserving more than the message takes.
                let m = message(i);
                let mut slot = w.blocking_reserve(m.len() + 100).unwrap();
                slot[..m.len()].copy_from_slice(&m);
                slot.commit_len(m.len());
                i += 1;
            } else {
                let batch: Vec<Vec<u8>> = (i..(i + 5).min(COUNT)).map(message).collect();
                w.blocking_put(&batch).unwrap();
                i += batch.len() as u64;
            }
        }
        w.close();
    });
    let mut next = 0u64;
    let mut bufs = vec![Vec::new(); 7];
    while next < COUNT {
        match next % 3 {
            0 => {
                let k = bufs.len().min((COUNT - next) as usize);
                r.blocking_get(&mut bufs[..k]).unwrap();
                for b in &bufs[..k] {
                    assert_eq!(*b, message(next), "message {next}");
                    next += 1;
                }
            }
            1 => {
                let k = r.blocking_get_some(&mut bufs).unwrap();
                assert!(k >= 1);
                for b in &bufs[..k] {
                    assert_eq!(*b, message(next), "message {next}");
                    next += 1;
                }
            }
            _ => {
                let m = r.blocking_peek().unwrap();
                assert_eq!(&*m, &message(next)[..], "message {next}");
                assert_eq!(m.as_ptr() as usize % 8, 0, "8-byte aligned");
                m.consume();
                next += 1;
            }
        }
    }
    let e = r.blocking_peek().unwrap_err();
    assert_eq!((e.kind(), e.remaining()), (ErrorKind::Closed, 0), "{e}");
    writer.join().unwrap();
}

/// A message as long as the ring takes goes through; one byte more is refused before
/// anything of the call is put, with a message that gives both lengths.
#[test]
fn the_longest_message_fits_and_a_longer_one_is_refused_whole() {
    let name = name("long");
    let chan = MessageChannel::create(&name, Options::new().capacity(512)).unwrap();
    let max = chan.max_message_len();
    assert_eq!(max, 511 * 8);
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    let e = w
        .blocking_put(&[vec![1u8; 10], vec![2u8; max + 1]])
        .unwrap_err();
    assert_eq!((e.kind(), e.accepted()), (ErrorKind::Oversized, 0));
    assert!(
        e.to_string().contains(&format!("{} bytes", max + 1))
            && e.to_string().contains(&format!("at most {max} bytes")),
        "{e}"
    );
    assert!(chan.is_empty(), "nothing of the call was put");
    assert_eq!(
        w.try_reserve(max + 1).unwrap_err().kind(),
        ErrorKind::Oversized
    );
    w.blocking_put(&[vec![7u8; max]]).unwrap();
    assert_eq!(w.try_put(&[b"x"]).unwrap(), 0, "the ring is full");
    let mut got = vec![Vec::new()];
    r.blocking_get(&mut got).unwrap();
    assert_eq!(got[0], vec![7u8; max]);
}

/// `peek_some` shows every whole message there is, in place; consuming a prefix leaves the
/// rest for the next call.
#[test]
fn peek_some_shows_every_message_and_consumes_a_prefix() {
    let name = name("peek-some");
    let chan = MessageChannel::create(&name, Options::new()).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    assert!(r.try_peek_some().unwrap().is_empty());
    let sent: Vec<Vec<u8>> = (0..5).map(message).collect();
    w.blocking_put(&sent).unwrap();
    let all = r.blocking_peek_some().unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(
        all.iter().collect::<Vec<_>>(),
        sent.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
    assert_eq!(all.consume(2), 2);
    let rest = r.blocking_peek_some().unwrap();
    assert_eq!(rest.iter().next(), Some(&sent[2][..]));
    assert_eq!(rest.consume(9), 3);
    assert_eq!(r.count().unwrap(), 0);
    // A view shows the first message, and those after it within 64 KiB: 1000 messages of
    // 1 KiB are shown 63 at a time (129 words each), and consumed whole.
    let kib: Vec<Vec<u8>> = (0..1000).map(|i| vec![i as u8; 1024]).collect();
    let writer = std::thread::spawn(move || w.blocking_put(&kib).map(|()| w));
    let mut seen = 0;
    while seen < 1000 {
        let v = r.blocking_peek_some().unwrap();
        assert!(v.len() <= 63, "{} shown", v.len());
        for m in v.iter() {
            assert_eq!(m, &[seen as u8; 1024][..]);
            seen += 1;
        }
        let n = v.len();
        assert_eq!(v.consume(n), n);
    }
    let mut w = writer.join().unwrap().unwrap();
    // `count` sees what was put since the reader last looked.
    w.blocking_put(&["x"]).unwrap();
    assert_eq!(r.count().unwrap(), 1);
    w.blocking_put(&["y", "z"]).unwrap();
    assert_eq!(r.count().unwrap(), 3);
    assert_eq!(r.try_peek_at_most(3).unwrap().consume(3), 3);
    // A view of at most `max` messages walks only those.
    w.blocking_put(&["a", "b", "c"]).unwrap();
    let two = r.try_peek_at_most(2).unwrap();
    assert_eq!(two.iter().collect::<Vec<_>>(), [b"a", b"b"]);
    assert_eq!(two.consume(5), 2);
    assert_eq!(
        r.try_peek_at_most(0).unwrap().len(),
        1,
        "at least one, if there is one"
    );
    assert_eq!(r.try_peek_at_most(1).unwrap().consume(1), 1);
    // `count` counts every message, beyond what one view shows: 3000 messages of 16 bytes
    // take 72 000 bytes of ring.
    w.blocking_put(&vec![[7u8; 16]; 3000]).unwrap();
    assert_eq!(r.count().unwrap(), 3000);
    drop(w);
    let mut rest = vec![Vec::new(); 3000];
    r.blocking_get(&mut rest).unwrap();
    // An empty buffer takes nothing, even from an ended stream.
    assert_eq!(r.try_get_some(&mut []).unwrap(), 0);
    r.blocking_get(&mut []).unwrap();
}

/// `inspect` counts the messages between the indices, across the ring's wrap, from
/// outside (pread only).
#[test]
fn inspect_counts_the_messages_across_the_wrap() {
    let name = name("count");
    let chan = MessageChannel::create(&name, Options::new().capacity(512)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    assert_eq!(ChannelIo::inspect(&name).unwrap().message_count, Some(0));
    // Move the indices to 10 words before the end of the 512-word ring.
    let mut bufs = vec![Vec::new()];
    for _ in 0..(502 / 2) {
        w.blocking_put(&[[1u8; 8]]).unwrap();
        r.blocking_get(&mut bufs).unwrap();
    }
    // 3 messages of 40 bytes (6 words each): the second and third cross the wrap.
    w.blocking_put(&[[2u8; 40], [3u8; 40], [4u8; 40]]).unwrap();
    let info = ChannelIo::inspect(&name).unwrap();
    assert_eq!((info.tail - info.head, info.message_count), (18, Some(3)));
    let mut got = vec![Vec::new(); 3];
    r.blocking_get(&mut got).unwrap();
    assert_eq!(got[2], [4u8; 40]);
    assert_eq!(ChannelIo::inspect(&name).unwrap().message_count, Some(0));
    let t = ChannelIo::<u64>::create(&self::name("count-t"), Options::new()).unwrap();
    assert_eq!(ChannelIo::inspect(t.name()).unwrap().message_count, None);
}

/// The writer's close reaches the reader after every message; a `get` of more messages
/// than there are fills what there is and says how many.
#[test]
fn a_get_past_the_end_says_how_many_it_filled() {
    let name = name("end");
    let chan = MessageChannel::create(&name, Options::new()).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    w.blocking_put(&["a", "bb", "ccc"]).unwrap();
    w.abort("stop");
    assert_eq!(r.count().unwrap(), 3);
    let mut got = vec![Vec::new(); 5];
    let e = r.blocking_get(&mut got).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted, "{e}");
    assert_eq!(
        (e.filled(), e.remaining(), e.reason()),
        (3, 0, Some("stop"))
    );
    assert_eq!(got[..3], [b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
}

/// The header says "messages": a typed, a raw and a message open each refuse the other
/// kind, naming both sides.
#[test]
fn message_and_element_channels_do_not_open_as_each_other() {
    let (m, t) = (name("kind-m"), name("kind-t"));
    let _mc = MessageChannel::create(&m, Options::new()).unwrap();
    let _tc = ChannelIo::<u64>::create(&t, Options::new()).unwrap();
    let e = ChannelIo::<u64>::open(&m).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ElementMismatch);
    assert!(
        e.to_string().contains("holds messages") && e.to_string().contains("u64"),
        "{e}"
    );
    let e = RawChannel::open_any(&m, Options::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ElementMismatch, "{e}");
    let e = MessageChannel::open(&t).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ElementMismatch);
    assert!(
        e.to_string().contains("holds u64 elements") && e.to_string().contains("for messages"),
        "{e}"
    );
    let info = ChannelIo::inspect(&m).unwrap();
    assert!(info.messages && !ChannelIo::inspect(&t).unwrap().messages);
    let e = MessageChannel::create(&name("kind-d"), Options::new().descr("<u8")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidDescr, "{e}");
}

/// A writer that breaks the framing (a length word that runs past what it committed, or
/// one near `u64::MAX`) makes the reader's calls fail with `Corrupted`: no read out of
/// bounds, no panic, no allocation of what the length claims.
#[test]
fn a_length_past_the_committed_words_is_corrupt() {
    for bad in [9u64, 1 << 40, u64::MAX] {
        let name = name(&format!("hostile-{}", bad.trailing_zeros()));
        let chan = MessageChannel::create(&name, Options::new()).unwrap();
        let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
        // Two words: a length word claiming `bad` bytes, and one word of bytes.
        let mut slots = w.w.blocking_reserve(2).unwrap();
        slots[0] = bad;
        slots[1] = 0;
        slots.commit_all();
        let e = r.blocking_peek().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
        let e = r.blocking_get(&mut [Vec::new()]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
        assert_eq!(r.count().unwrap_err().kind(), ErrorKind::Corrupted);
    }
}

/// The messages before a corrupt length word are delivered whole, by `get_some` and by
/// `peek_some`; the call after them reports the corruption.
#[test]
fn the_messages_before_a_corrupt_length_are_delivered() {
    let name = name("hostile-after");
    let chan = MessageChannel::create(&name, Options::new()).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    w.blocking_put(&["one", "two", "three"]).unwrap();
    let mut slots = w.w.blocking_reserve(2).unwrap();
    slots[0] = 1 << 40;
    slots.commit_all();
    let shown = r.blocking_peek_some().unwrap();
    assert_eq!(shown.len(), 3);
    shown.consume(1);
    let mut got = vec![Vec::new(); 4];
    assert_eq!(r.blocking_get_some(&mut got).unwrap(), 2);
    assert_eq!(got[..2], [b"two".to_vec(), b"three".to_vec()]);
    assert_eq!(
        r.blocking_get_some(&mut got).unwrap_err().kind(),
        ErrorKind::Corrupted
    );
    assert_eq!(
        r.blocking_peek_some().unwrap_err().kind(),
        ErrorKind::Corrupted
    );
}

/// The async calls are the same calls: a writer task and a reader task on one runtime,
/// through a ring that fills, with `put`, `get`, `get_some` and `peek`.
#[tokio::test(flavor = "current_thread")]
async fn async_put_and_get_wait_for_each_other() {
    let name = name("async");
    let chan = MessageChannel::create(&name, Options::new().capacity(512)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    const COUNT: u64 = 3000;
    let writer = tokio::spawn(async move {
        for i in (0..COUNT).step_by(3) {
            let batch: Vec<Vec<u8>> = (i..i + 3).map(message).collect();
            w.put(&batch).await.unwrap();
        }
        w.close();
    });
    let mut next = 0;
    let mut bufs = vec![Vec::new(); 4];
    while next < COUNT {
        if next % 2 == 0 {
            r.get(&mut bufs[..2]).await.unwrap();
            for b in &bufs[..2] {
                assert_eq!(*b, message(next));
                next += 1;
            }
        } else {
            let k = r.get_some(&mut bufs).await.unwrap();
            for b in &bufs[..k] {
                assert_eq!(*b, message(next));
                next += 1;
            }
            let m = r.peek().await.unwrap();
            assert_eq!(&*m, &message(next)[..]);
            m.consume();
            next += 1;
        }
    }
    assert_eq!(r.peek().await.unwrap_err().kind(), ErrorKind::Closed);
    writer.await.unwrap();
}

/// Timeouts: a `peek` and a `get` with nothing there fail with `TimedOut` and take nothing;
/// a `put` into a full ring fails with `TimedOut` and counts the messages it put.
#[test]
fn waits_time_out_and_take_nothing() {
    let name = name("timeout");
    let chan = MessageChannel::create(&name, Options::new().capacity(512)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    r.set_timeout(Some(Duration::from_millis(50)));
    w.set_timeout(Some(Duration::from_millis(50)));
    assert_eq!(r.blocking_peek().unwrap_err().kind(), ErrorKind::TimedOut);
    w.blocking_put(&[b"one"]).unwrap();
    let mut got = vec![Vec::new(); 2];
    let e = r.blocking_get(&mut got).unwrap_err();
    assert_eq!((e.kind(), e.filled()), (ErrorKind::TimedOut, 1));
    assert_eq!(got[0], b"one");
    // 3 messages of 2000 bytes (251 words each): the third does not fit the 512 words.
    let big = vec![9u8; 2000];
    let e = w.blocking_put(&[&big, &big, &big]).unwrap_err();
    assert_eq!((e.kind(), e.accepted()), (ErrorKind::TimedOut, 2), "{e}");
    assert_eq!(r.count().unwrap(), 2);
}

/// The event-loop API: `prepare_wait` says `Wait` while nothing is there, the descriptor
/// becomes readable when a message comes, and then `Ready`; for the writer, room for a
/// message of a given length.
#[test]
fn the_event_loop_api_waits_for_a_message_and_for_room() {
    use crate::Readiness;
    use std::os::fd::AsRawFd;
    let name = name("evloop");
    let chan = MessageChannel::create(&name, Options::new().capacity(512)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    let fd = r.wait_fd().unwrap().as_raw_fd();
    assert_eq!(r.prepare_wait().unwrap(), Readiness::Wait);
    r.finish_wait().unwrap();
    let writer = std::thread::spawn(move || {
        w.blocking_put(&[vec![1u8; 4000]]).unwrap();
        w
    });
    // A wake may come before the message (a doorbell rung earlier): wait again then.
    let mut wakes = 0;
    while r.prepare_wait().unwrap() == Readiness::Wait {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, 20_000) };
        assert_eq!(n, 1, "the doorbell rang within 20 s");
        r.finish_wait().unwrap();
        wakes += 1;
        assert!(wakes < 100, "woken {wakes} times without a message");
    }
    assert_eq!(&*r.blocking_peek().unwrap(), &[1u8; 4000][..]);
    let mut w = writer.join().unwrap();
    // 4000 bytes took 501 of 512 words: a message of 100 bytes (14 words) must wait.
    assert_eq!(w.prepare_wait(100).unwrap(), Readiness::Wait);
    w.finish_wait().unwrap();
    assert_eq!(w.prepare_wait(80).unwrap(), Readiness::Ready);
    assert_eq!(
        w.prepare_wait(5000).unwrap_err().kind(),
        ErrorKind::Oversized
    );
}

/// A writer that leaves (as a killed one does): the reader gets every message it
/// committed, then `PeerGone` once; a new writer carries on after the last message.
#[test]
fn a_writer_that_leaves_is_gone_after_its_messages_and_a_new_one_carries_on() {
    let name = name("leave");
    let chan = MessageChannel::create(&name, Options::new()).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    w.blocking_put(&["a", "b"]).unwrap();
    w.leave();
    let mut got = vec![Vec::new(); 3];
    let e = r.blocking_get(&mut got).unwrap_err();
    assert_eq!((e.kind(), e.filled()), (ErrorKind::PeerGone, 2), "{e}");
    let mut w = chan.writer().unwrap();
    w.blocking_put(&["c"]).unwrap();
    w.close();
    r.blocking_get(&mut got[..1]).unwrap();
    assert_eq!(got[0], b"c");
    assert_eq!(r.blocking_peek().unwrap_err().kind(), ErrorKind::Closed);
}
