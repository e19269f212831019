//! A pull written with zenoh's plain API and docs/bridge.md alone, without shmchan-zenoh:
//! it answers the hello, decodes the stream, acknowledges it, and the push ends with success.

use super::*;

#[test]
fn a_plain_zenoh_pull_takes_the_stream() {
    let _w = Deadline::new(TEST_LIMIT, "a_plain_zenoh_pull_takes_the_stream");
    let (ok, err) = plain_pull();
    assert!(ok, "push: {err}");
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

/// Takes a push's stream of 50 000 `u32` with zenoh's API alone, checking every field,
/// acknowledging as it goes and confirming the end; the push's exit status and stderr.
fn plain_pull() -> (bool, String) {
    let (local, key) = (unique("pzl"), unique("pzk"));
    let _c = Cleanup(vec![local.clone()]);
    let chan = ChannelIo::<u32>::create(&local, Options::new().schema("counter/v1")).unwrap();
    let mut w = chan.writer().unwrap();
    let port = free_port();
    let ep = format!("tcp/127.0.0.1:{port}");
    let push = Bridge::spawn(&["push", &local, "--key", &key, "--listen", &ep]);
    push.expect("ready");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let got = rt.block_on(async {
        let mut c = zenoh::Config::default();
        c.insert_json5("mode", "\"peer\"").unwrap();
        c.insert_json5("connect/endpoints", &format!("[\"{ep}\"]"))
            .unwrap();
        c.insert_json5("scouting/multicast/enabled", "false")
            .unwrap();
        let s = zenoh::open(c).await.unwrap();
        // 1. The subscriber and the queryable, then the token.
        let sub = s.declare_subscriber(&key).await.unwrap();
        let hellos = s
            .declare_queryable(format!("{key}/_bridge/hello"))
            .await
            .unwrap();
        let pushes = s
            .liveliness()
            .declare_subscriber(format!("{key}/_bridge/push"))
            .history(true)
            .await
            .unwrap();
        let _token = s
            .liveliness()
            .declare_token(format!("{key}/_bridge/pull"))
            .await
            .unwrap();
        // 2. Each hello (a push asks again when it gets no answer in time): the stream's
        // type, id and items; answered with an accept.
        let epoch = 0x0123_4567_89ab_cdefu64;
        let (tx, stream_id) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            while let Ok(q) = hellos.recv_async().await {
                let h = q.payload().expect("a hello").to_bytes().into_owned();
                assert_eq!(&h[0..4], b"SHH2");
                if h[4] == 1 {
                    // The goodbye: the push has our acknowledgement of the end.
                    let mut ended = b"SHA2".to_vec();
                    ended.extend_from_slice(&1u32.to_le_bytes());
                    for w in [epoch, u64_at(&h, 24), 1] {
                        ended.extend_from_slice(&w.to_le_bytes());
                    }
                    q.reply(q.key_expr().clone(), ended).await.unwrap();
                    break;
                }
                assert_eq!(h[5], 5, "element kind u32");
                let schema_len = u16::from_le_bytes([h[6], h[7]]) as usize;
                assert_eq!(u32::from_le_bytes(h[8..12].try_into().unwrap()), 4);
                let stream = u64_at(&h, 16);
                assert_ne!(stream, 0);
                assert_eq!(u64_at(&h, 24), 0, "nothing consumed yet");
                assert_eq!(&h[48..48 + schema_len], b"counter/v1");
                let mut accept = b"SHA2".to_vec();
                accept.extend_from_slice(&0u32.to_le_bytes()); // not ended
                for w in [epoch, 0, 4096] {
                    accept.extend_from_slice(&w.to_le_bytes()); // epoch, resume at 0, window
                }
                q.reply(q.key_expr().clone(), accept).await.unwrap();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(stream);
                }
            }
        });
        let stream = stream_id.await.unwrap();
        let ack = |kind: u32, committed: u64| {
            let mut a = b"SHK2".to_vec();
            a.extend_from_slice(&kind.to_le_bytes());
            for w in [stream, epoch, committed] {
                a.extend_from_slice(&w.to_le_bytes());
            }
            s.put(format!("{key}/_bridge/ack"), a)
                .congestion_control(zenoh::qos::CongestionControl::Block)
        };
        let writer = std::thread::spawn(move || {
            for i in 0..50_000u32 {
                w.blocking_put(&[i]).unwrap();
            }
            w.close();
        });
        // 3. The samples: checked, kept, acknowledged.
        let mut items: Vec<u32> = Vec::new();
        let mut expect_seq = 0u64;
        loop {
            let sample = sub.recv_async().await.unwrap();
            let att = sample
                .attachment()
                .expect("a frame header")
                .to_bytes()
                .into_owned();
            assert_eq!(&att[0..4], b"SHZ2");
            let kind = att[4];
            assert_eq!(att[5], 5, "element kind u32");
            assert_eq!(u64_at(&att, 16), stream);
            assert_eq!(u64_at(&att, 24), epoch);
            let (seq, offset) = (u64_at(&att, 32), u64_at(&att, 40));
            assert_eq!((seq, offset), (expect_seq, items.len() as u64));
            assert_eq!(&att[48..], b"counter/v1");
            expect_seq += 1;
            let payload = sample.payload().to_bytes();
            match kind {
                0 => {
                    items.extend(
                        payload
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes(c.try_into().unwrap())),
                    );
                    ack(0, items.len() as u64).await.unwrap();
                }
                1 => break,
                k => panic!("kind {k}"),
            }
        }
        // 4. The end is "in our channel": confirmed; the push says goodbye once it has that
        // (the task above answers it), then goes.
        ack(1, items.len() as u64).await.unwrap();
        while pushes.recv_async().await.unwrap().kind() != zenoh::sample::SampleKind::Delete {}
        writer.join().unwrap();
        items
    });
    assert_eq!(got, (0..50_000).collect::<Vec<u32>>());
    push.finish()
}
