use super::*;

fn element() -> Element {
    Element {
        elem: ElementType::record(24, 8).unwrap(),
        schema: Some("imu/v1".into()),
    }
}

/// Every byte of `good` changed in turn, and every prefix: an error or a value, never a
/// panic.
fn garble<T>(good: &[u8], decode: impl Fn(&[u8]) -> Result<T, WireError>) {
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut g = good.to_vec();
        let i = (x % g.len() as u64) as usize;
        g[i] = (x >> 32) as u8;
        let _ = decode(&g);
        let _ = decode(&g[..(x >> 40) as usize % (g.len() + 1)]);
    }
}

#[test]
fn frames_round_trip_and_garbage_is_refused() {
    let f = Frame {
        kind: Kind::Abort,
        element: element(),
        stream: 0xdead_beef,
        epoch: 9,
        seq: 7,
        offset: 12345,
    };
    let b = f.encode();
    assert_eq!(b.len(), HEADER_LEN + 6);
    assert_eq!(Frame::decode(&b), Ok(f));
    let p = Frame {
        kind: Kind::WriterGone,
        element: Element {
            elem: ElementType::primitive(Primitive::F32),
            schema: None,
        },
        stream: 1,
        epoch: 2,
        seq: 0,
        offset: 0,
    };
    assert_eq!(Frame::decode(&p.encode()), Ok(p));
    assert_eq!(Frame::decode(&b[..47]), Err(WireError::Short(47)));
    let mut bad = b.clone();
    bad[0] = b'X';
    assert!(matches!(Frame::decode(&bad), Err(WireError::Magic(_))));
    let mut bad = b.clone();
    bad[4] = 9;
    assert_eq!(Frame::decode(&bad), Err(WireError::Kind(9)));
    let mut bad = b.clone();
    bad[5] = 11;
    assert!(matches!(Frame::decode(&bad), Err(WireError::Element(_))));
    let mut bad = b.clone();
    bad[12] = 3; // alignment 3
    assert!(matches!(Frame::decode(&bad), Err(WireError::Element(_))));
    let mut bad = b.clone();
    bad[6] = 200; // a schema longer than the attachment
    assert!(Frame::decode(&bad).is_err());
    let mut long = b.clone();
    long.push(0); // bytes after the schema tag
    assert_eq!(Frame::decode(&long), Err(WireError::Long(b.len() + 1)));
    garble(&b, Frame::decode);
}

#[test]
fn hellos_round_trip_and_garbage_is_refused() {
    let h = Hello {
        goodbye: false,
        element: element(),
        stream: 77,
        first: 10,
        last: 20,
        window: 1024,
    };
    let b = h.encode();
    assert_eq!(Hello::decode(&b), Ok(h.clone()));
    let zero = Hello {
        stream: 0,
        ..h.clone()
    };
    assert_eq!(Hello::decode(&zero.encode()), Err(WireError::Stream));
    let backwards = Hello {
        first: 21,
        ..h.clone()
    };
    assert!(Hello::decode(&backwards.encode()).is_err());
    let bye = Hello {
        goodbye: true,
        ..h.clone()
    };
    assert_eq!(Hello::decode(&bye.encode()), Ok(bye));
    let no_window = Hello { window: 0, ..h };
    assert!(Hello::decode(&no_window.encode()).is_err());
    // A frame is not a hello.
    let f = Frame {
        kind: Kind::Data,
        element: element(),
        stream: 1,
        epoch: 1,
        seq: 0,
        offset: 0,
    };
    assert!(matches!(
        Hello::decode(&f.encode()),
        Err(WireError::Magic(_))
    ));
    garble(&b, Hello::decode);
}

#[test]
fn accepts_and_acks_round_trip_and_garbage_is_refused() {
    let a = Accept {
        ended: true,
        epoch: 3,
        resume: 4,
        window: 5,
    };
    let b = a.encode();
    assert_eq!(b.len(), ACCEPT_LEN);
    assert_eq!(Accept::decode(&b), Ok(a));
    assert_eq!(Accept::decode(&b[..31]), Err(WireError::Short(31)));
    garble(&b, Accept::decode);

    let k = Ack {
        kind: AckKind::Reset,
        stream: 1,
        epoch: 2,
        committed: 3,
        reason: "gap".into(),
    };
    let b = k.encode();
    assert_eq!(Ack::decode(&b), Ok(k));
    let long = Ack {
        kind: AckKind::Reset,
        stream: 1,
        epoch: 2,
        committed: 3,
        reason: "x".repeat(1000),
    };
    assert_eq!(long.encode().len(), ACK_LEN + REASON_MAX);
    let mut bad = b.clone();
    bad[4] = 3;
    assert_eq!(Ack::decode(&bad), Err(WireError::Kind(3)));
    garble(&b, Ack::decode);
}
