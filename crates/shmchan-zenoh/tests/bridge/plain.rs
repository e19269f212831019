//! A client of the wire format written with zenoh's plain API, without shmchan: it decodes
//! the stream, and the push fails when such a client goes without confirming the end.

use super::*;

#[test]
fn a_plain_zenoh_subscriber_decodes_the_stream() {
    let _w = Deadline::new(TEST_LIMIT, "a_plain_zenoh_subscriber_decodes_the_stream");
    let (ok, err) = plain_subscriber(true);
    assert!(ok, "push: {err}");
}

#[test]
fn a_push_whose_pull_goes_without_confirming_the_end_fails() {
    let _w = Deadline::new(
        TEST_LIMIT,
        "a_push_whose_pull_goes_without_confirming_the_end_fails",
    );
    let (ok, err) = plain_subscriber(false);
    assert!(!ok);
    assert!(err.contains("without confirming"), "{err}");
}

/// A subscriber written with the zenoh crate's API and docs/bridge.md alone (no
/// shmchan-zenoh code) takes a push's stream of 50 000 `u32`, checking every field, then
/// confirms the end (or not) and leaves; the push's exit status and stderr.
fn plain_subscriber(confirm: bool) -> (bool, String) {
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
        let sub = s.declare_subscriber(&key).await.unwrap();
        // The push publishes once a pull's liveliness token is there.
        let _token = s
            .liveliness()
            .declare_token(format!("{key}/_bridge/pull"))
            .await
            .unwrap();
        let pushes = s
            .liveliness()
            .declare_subscriber(format!("{key}/_bridge/push"))
            .await
            .unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..50_000u32 {
                w.blocking_put(&[i]).unwrap();
            }
            w.close();
        });
        let mut items = Vec::new();
        let mut expect_seq = 0u64;
        let mut stream;
        loop {
            let sample = sub.recv_async().await.unwrap();
            let att = sample
                .attachment()
                .expect("a frame header")
                .to_bytes()
                .into_owned();
            assert_eq!(&att[0..4], b"SHZ1");
            let kind = att[4];
            assert_eq!(att[5], 5, "element kind u32");
            let schema_len = u16::from_le_bytes([att[6], att[7]]) as usize;
            assert_eq!(u32::from_le_bytes(att[8..12].try_into().unwrap()), 4);
            assert_eq!(u32::from_le_bytes(att[12..16].try_into().unwrap()), 4);
            stream = u64::from_le_bytes(att[16..24].try_into().unwrap());
            let seq = u64::from_le_bytes(att[24..32].try_into().unwrap());
            let offset = u64::from_le_bytes(att[32..40].try_into().unwrap());
            assert_eq!(&att[40..40 + schema_len], b"counter/v1");
            assert_eq!((seq, offset), (expect_seq, items.len() as u64));
            expect_seq += 1;
            let payload = sample.payload().to_bytes();
            match kind {
                0 => items.extend(
                    payload
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes(c.try_into().unwrap())),
                ),
                1 => break,
                k => panic!("kind {k}"),
            }
        }
        if confirm {
            // The end reached "our channel": stream id and item count, u64 little-endian.
            let mut done = stream.to_le_bytes().to_vec();
            done.extend_from_slice(&(items.len() as u64).to_le_bytes());
            s.put(format!("{key}/_bridge/done"), done)
                .congestion_control(zenoh::qos::CongestionControl::Block)
                .await
                .unwrap();
            // The push goes once it has the confirmation (its token with it).
            while pushes.recv_async().await.unwrap().kind() != zenoh::sample::SampleKind::Delete {}
        }
        writer.join().unwrap();
        items
    });
    assert_eq!(got, (0..50_000).collect::<Vec<u32>>());
    push.finish()
}
