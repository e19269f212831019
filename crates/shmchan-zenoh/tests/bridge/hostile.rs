//! A hostile or careless publisher, written with zenoh's plain API, against a real pull:
//! it cannot make the pull create what it should not, take what it did not accept, or wait
//! forever.

use shmchan_zenoh::wire::{Accept, Ack, AckKind, Element, Frame, Hello, Kind};
use zenoh::sample::Sample;

use super::*;

/// A zenoh peer listening on `ep` (where the pull connects), as a push would.
async fn peer(ep: &str) -> zenoh::Session {
    let mut c = zenoh::Config::default();
    c.insert_json5("mode", "\"peer\"").unwrap();
    c.insert_json5("listen/endpoints", &format!("[\"{ep}\"]"))
        .unwrap();
    c.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    zenoh::open(c).await.unwrap()
}

fn u64_element() -> Element {
    Element {
        elem: shmchan::ElementType::primitive(shmchan::Primitive::U64),
        schema: None,
    }
}

/// Says `hello` to the pull of `key`; its accept, or its refusal.
async fn say(s: &zenoh::Session, key: &str, hello: &Hello) -> Result<Accept, String> {
    let replies = s
        .get(format!("{key}/_bridge/hello"))
        .payload(hello.encode())
        .timeout(TIMEOUT)
        .await
        .unwrap();
    let reply = replies.recv_async().await.expect("an answer");
    match reply.into_result() {
        Ok(sample) => Ok(Accept::decode(&sample.payload().to_bytes()).unwrap()),
        Err(e) => {
            let b = e.payload().to_bytes();
            assert_eq!(&b[..4], b"SHR2", "a refusal");
            Err(String::from_utf8_lossy(&b[4..]).into_owned())
        }
    }
}

/// Waits until the pull is there (its liveliness token).
async fn pull_is_there(s: &zenoh::Session, key: &str) {
    let pulls = s
        .liveliness()
        .declare_subscriber(format!("{key}/_bridge/pull"))
        .history(true)
        .await
        .unwrap();
    while pulls.recv_async().await.unwrap().kind() != zenoh::sample::SampleKind::Put {}
}

#[test]
fn hellos_that_ask_too_much_or_come_without_a_token_are_refused() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "hellos_that_ask_too_much_or_come_without_a_token_are_refused",
    );
    let mut p = Pair::new("hh");
    let _c = p.cleanup();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(peer(&p.ep));
    p.start_pull();
    rt.block_on(async {
        pull_is_there(&s, &p.key).await;
        let hello = Hello {
            goodbye: false,
            element: u64_element(),
            stream: 7,
            first: 0,
            last: 0,
            window: 1,
        };
        // No push token: the pull could not tell when this publisher went.
        let no_token = say(&s, &p.key, &hello).await.unwrap_err();
        assert!(no_token.contains("no push token"), "{no_token}");
        let _token = s
            .liveliness()
            .declare_token(format!("{}/_bridge/push", p.key))
            .await
            .unwrap();
        // A 2 GiB element: refused before anything is created.
        let huge = Hello {
            element: Element {
                elem: shmchan::ElementType::record(1 << 31, 8).unwrap(),
                schema: None,
            },
            ..hello.clone()
        };
        let too_big = say(&s, &p.key, &huge).await.unwrap_err();
        assert!(too_big.contains("max-bytes"), "{too_big}");
        assert!(
            !shmchan::channel_dir(&p.far).exists(),
            "nothing was created"
        );
        // Not a hello at all.
        let replies = s
            .get(format!("{}/_bridge/hello", p.key))
            .payload(vec![0u8; 40])
            .timeout(TIMEOUT)
            .await
            .unwrap();
        let reply = replies.recv_async().await.unwrap().into_result();
        assert!(reply.is_err());
        // A sample outside any epoch, with a header declaring a 2 GiB element: dropped.
        let f = Frame {
            kind: Kind::Data,
            element: huge.element.clone(),
            stream: 7,
            epoch: 1,
            seq: 0,
            offset: 0,
        };
        s.put(&p.key, Vec::<u8>::new())
            .attachment(f.encode())
            .await
            .unwrap();
        // Still answering, and still nothing made: a fair hello is taken.
        let a = say(&s, &p.key, &hello).await.unwrap();
        assert_eq!((a.ended, a.resume), (false, 0));
        assert_eq!(ChannelIo::inspect(&p.far).unwrap().elem_size, 8);
    });
}

#[test]
fn a_close_with_a_payload_and_a_gap_drop_the_epoch_and_a_gone_publisher_is_seen() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "a_close_with_a_payload_and_a_gap_drop_the_epoch_and_a_gone_publisher_is_seen",
    );
    let mut p = Pair::new("hc");
    let _c = p.cleanup();
    p.pull_args = vec!["--timeout".into(), "1".into()];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(peer(&p.ep));
    p.start_pull();
    let far = p.far.clone();
    rt.block_on(async {
        pull_is_there(&s, &p.key).await;
        let token = s
            .liveliness()
            .declare_token(format!("{}/_bridge/push", p.key))
            .await
            .unwrap();
        let acks = s
            .declare_subscriber(format!("{}/_bridge/ack", p.key))
            .await
            .unwrap();
        let hello = Hello {
            goodbye: false,
            element: u64_element(),
            stream: 9,
            first: 0,
            last: 3,
            window: 100,
        };
        let a = say(&s, &p.key, &hello).await.unwrap();
        let frame = |kind, seq, offset| Frame {
            kind,
            element: u64_element(),
            stream: 9,
            epoch: a.epoch,
            seq,
            offset,
        };
        let three: Vec<u8> = [1u64, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        s.put(&p.key, three)
            .attachment(frame(Kind::Data, 0, 0).encode())
            .await
            .unwrap();
        s.put(&p.key, b"junk".to_vec())
            .attachment(frame(Kind::Close, 1, 3).encode())
            .await
            .unwrap();
        let next_ack = || async {
            let s: Sample = acks.recv_async().await.unwrap();
            Ack::decode(&s.payload().to_bytes()).unwrap()
        };
        let mut ack = next_ack().await;
        while ack.kind == AckKind::Progress {
            assert_eq!(ack.committed, 3);
            ack = next_ack().await;
        }
        assert_eq!(ack.kind, AckKind::Reset);
        assert!(ack.reason.contains("payload"), "{}", ack.reason);
        // The items before it are there; the close did not pass.
        let info = ChannelIo::inspect(&far).unwrap();
        assert_eq!(
            (info.tail, info.writer_state.clone()),
            (3, shmchan::WriterState::Open)
        );
        // A new epoch; a sample that skips one is a gap: dropped too.
        let a = say(&s, &p.key, &hello).await.unwrap();
        assert_eq!(a.resume, 3);
        let skip = Frame {
            seq: 1,
            epoch: a.epoch,
            ..frame(Kind::Data, 0, 3)
        };
        s.put(&p.key, 4u64.to_le_bytes().to_vec())
            .attachment(skip.encode())
            .await
            .unwrap();
        let ack = next_ack().await;
        assert_eq!(ack.kind, AckKind::Reset, "{ack:?}");
        assert!(ack.reason.contains("expected sample 0"), "{}", ack.reason);
        // The publisher goes without a word: the pull sees its token go, lets the far
        // writer go (its reader sees it gone), and gives up after its --timeout.
        drop(token);
        s.close().await.unwrap();
    });
    let (ok, err) = p.finish_pull();
    assert!(!ok && err.contains("no push"), "{err}");
    let chan = ChannelIo::<u64>::open(&p.far).unwrap();
    let mut r = chan.reader().unwrap();
    let mut got = [0u64; 3];
    r.blocking_get(&mut got).unwrap();
    assert_eq!(got, [1, 2, 3]);
    let e = r.blocking_get(&mut [0u64; 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PeerGone, "{e}");
}
