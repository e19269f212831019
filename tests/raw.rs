//! Raw channels (`RawChannel`: the element type given at run time) against typed ones on
//! the same name, and their errors.

use shmchan::{
    ChannelIo, Context, Descr, ElementType, ErrorKind, Options, Primitive, RawChannel, DESCR_MAX,
};
use shmchan_testkit::unique;

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Sample {
    t: u64,
    x: f32,
    y: f32,
}

/// A typed writer of records and a raw reader of the same layout share one stream, element
/// for element, through copies and views; and the reverse.
#[test]
fn typed_and_raw_ends_share_a_stream() {
    let name = unique("records");
    let opts = || Options::new().schema("sample/v1").capacity(64);
    let chan = ChannelIo::<Sample>::create(&name, opts()).unwrap();
    let raw = RawChannel::open(&name, ElementType::record(16, 8).unwrap(), opts()).unwrap();
    assert_eq!(raw.capacity(), chan.capacity());
    let (mut w, mut r) = (chan.writer().unwrap(), raw.reader().unwrap());
    let items: Vec<Sample> = (0..200)
        .map(|i| Sample {
            t: i,
            x: i as f32,
            y: -(i as f32),
        })
        .collect();
    let t = std::thread::spawn(move || w.blocking_put(&items).map(|()| items));
    // 200 elements through a ring of 256 (64 asked for, rounded up to a page), read in
    // pieces of 3 and 7.
    let mut got = Vec::new();
    let mut buf = [0u8; 7 * 16];
    while got.len() < 200 {
        let want = if got.len() % 2 == 0 { 3 } else { 7 }.min(200 - got.len());
        r.blocking_get(&mut buf[..want * 16]).unwrap();
        got.extend_from_slice(bytemuck::cast_slice::<u8, Sample>(&buf[..want * 16]));
    }
    assert_eq!(got, t.join().unwrap().unwrap());

    // The reverse, zero-copy: raw slots in, typed view out.
    let mut rw = raw.writer().unwrap_err(); // the typed writer closed the stream
    assert_eq!(rw.kind(), ErrorKind::Closed, "{rw:?}");
    drop(r);
    let name = unique("records-rev");
    let chan = ChannelIo::<Sample>::create(&name, opts()).unwrap();
    let raw = RawChannel::open_any(&name, opts()).unwrap();
    assert_eq!(raw.element_type(), ElementType::record(16, 8).unwrap());
    let (mut w, mut r) = (raw.writer().unwrap(), chan.reader().unwrap());
    let mut slots = w.blocking_reserve(2).unwrap();
    assert_eq!((slots.elements(), slots.len()), (2, 32));
    slots.copy_from_slice(bytemuck::cast_slice(&[
        Sample {
            t: 7,
            x: 1.0,
            y: 2.0,
        },
        Sample {
            t: 8,
            x: 3.0,
            y: 4.0,
        },
    ]));
    assert_eq!(slots.commit(5), 2);
    let view = r.blocking_peek(2).unwrap();
    assert_eq!(
        view[1],
        Sample {
            t: 8,
            x: 3.0,
            y: 4.0
        }
    );
    view.consume_all();
    rw = raw.writer().unwrap_err(); // taken
    assert_eq!(rw.kind(), ErrorKind::EndTaken, "{rw:?}");
}

/// Byte counts that are not whole elements are typed errors, at every call, and move
/// nothing.
#[test]
fn partial_elements_are_refused() {
    let name = unique("partial");
    let raw = RawChannel::create(
        &name,
        ElementType::primitive(Primitive::F64),
        Options::new(),
    )
    .unwrap();
    let (mut w, mut r) = (raw.writer().unwrap(), raw.reader().unwrap());
    let partial = |e: &shmchan::Error| {
        e.kind() == ErrorKind::PartialElement
            && e.context()
                == &Context::Partial {
                    len: 12,
                    element_size: 8,
                }
    };
    assert!(partial(&w.blocking_put(&[0u8; 12]).unwrap_err()));
    assert!(partial(&w.try_put(&[0u8; 12]).unwrap_err()));
    assert_eq!(raw.len(), 0);
    w.blocking_put(&1.5f64.to_ne_bytes()).unwrap();
    let partial = |e: &shmchan::Error| {
        e.kind() == ErrorKind::PartialElement
            && e.context()
                == &Context::Partial {
                    len: 9,
                    element_size: 8,
                }
    };
    let mut nine = [0u8; 9];
    assert!(partial(&r.blocking_get(&mut nine).unwrap_err()));
    assert!(partial(&r.blocking_get_some(&mut nine).unwrap_err()));
    assert!(partial(&r.try_get_some(&mut nine).unwrap_err()));
    assert!(partial(&r.try_get(&mut nine).unwrap_err()));
    assert_eq!(raw.len(), 1, "nothing was removed");
    // A buffer with room for one and a half elements takes one.
    let mut twelve = [0u8; 16];
    assert_eq!(r.blocking_get_some(&mut twelve).unwrap(), 1);
    assert_eq!(f64::from_ne_bytes(twelve[..8].try_into().unwrap()), 1.5);
}

/// A raw open checks the layout and the primitive kind like a typed one.
#[test]
fn raw_open_checks_the_element_type() {
    let name = unique("mismatch");
    let _chan = ChannelIo::<u32>::create(&name, Options::new()).unwrap();
    let f32 = RawChannel::open(
        &name,
        ElementType::primitive(Primitive::F32),
        Options::new(),
    );
    assert!(
        matches!(
            &f32,
            Err(e) if matches!(e.context(), Context::Element { found_type: Some("u32"), .. })
        ),
        "{f32:?}"
    );
    let wide = RawChannel::open(&name, ElementType::record(8, 4).unwrap(), Options::new());
    assert!(
        matches!(
            &wide,
            Err(e) if matches!(
                e.context(),
                Context::Element { found_size: 4, expected_size: 8, .. }
            )
        ),
        "{wide:?}"
    );
    let tagged = RawChannel::open(
        &name,
        ElementType::primitive(Primitive::U32),
        Options::new().schema("x"),
    );
    assert!(
        matches!(&tagged, Err(e) if e.kind() == ErrorKind::SchemaMismatch),
        "{tagged:?}"
    );
    let missing = RawChannel::open_any(&unique("none"), Options::new());
    assert!(
        matches!(&missing, Err(e) if e.kind() == ErrorKind::NotFound),
        "{missing:?}"
    );
    assert!(ElementType::record(0, 1).is_err());
    assert!(ElementType::record(6, 3).is_err());
    assert!(ElementType::record(6, 4).is_err());
}

/// `try_get` is all or nothing, and reports an ended stream without removing anything.
#[test]
fn try_get_is_all_or_nothing() {
    let name = unique("try-get");
    let chan = ChannelIo::<u16>::create(&name, Options::new().capacity(2048)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), chan.reader().unwrap());
    w.blocking_put(&[1, 2, 3]).unwrap();
    let mut four = [0u16; 4];
    assert!(!r.try_get(&mut four).unwrap());
    assert_eq!(chan.len(), 3);
    let mut big = vec![0u16; 4096];
    assert!(
        matches!(&r.try_get(&mut big), Err(e) if e.kind() == ErrorKind::Oversized
        )
    );
    w.close();
    assert!(
        matches!(&r.try_get(&mut four), Err(e) if e.kind() == ErrorKind::Closed && e.remaining() == 3
        )
    );
    let mut three = [0u16; 3];
    assert!(r.try_get(&mut three).unwrap());
    assert_eq!(three, [1, 2, 3]);
}

/// A description the element type cannot have is refused at create and at open, before
/// anything is made: text that is no description, one of another size, another primitive's.
#[test]
fn descriptions_must_fit_the_element_type() {
    let name = unique("descr-invalid");
    let invalid = |r: Result<RawChannel, shmchan::Error>, why: &str| match r {
        Err(e) if e.kind() == ErrorKind::InvalidDescr && e.to_string().contains(why) => {}
        other => panic!("expected InvalidDescr ({why}), got {other:?}"),
    };
    let rec = ElementType::record(16, 8).unwrap();
    let create = |d: &str| RawChannel::create(&name, rec, Options::new().descr(d));
    invalid(create("[('t', '<u8'), ('x', '<f4')"), "expected");
    invalid(create("[('t', '<u8')]"), "describes 8 bytes");
    invalid(create("[('t', '<u8'), ('x', 'O')]"), "Python objects");
    let f32s = ElementType::primitive(Primitive::F32);
    invalid(
        RawChannel::create(&name, f32s, Options::new().descr("'<i4'")),
        "f32 is described as",
    );
    assert!(
        !shmchan::channel_dir(&name).exists(),
        "a refused create left files"
    );
    // A primitive's own description, in any spelling, is no change.
    let chan = ChannelIo::<f32>::create(&name, Options::new().descr("\"=f4\"")).unwrap();
    assert_eq!(
        chan.descr(),
        Some(Descr::primitive(Primitive::F32).as_str())
    );
    invalid(
        RawChannel::open(&name, rec, Options::new().descr("'<f8'")),
        "describes 8 bytes",
    );
}

/// A long description (a record of 600 one-byte fields) makes the header region grow by
/// pages; it is recorded whole, reported by inspect, and the ring behind it works. One longer
/// than `DESCR_MAX` is refused.
#[test]
fn long_descriptions_grow_the_header() {
    let name = unique("descr-long");
    let fields: Vec<String> = (0..600)
        .map(|i| format!("('field{i:03}', '|u1')"))
        .collect();
    let descr = format!("[{}]", fields.join(", "));
    assert!(descr.len() > 4096 && descr.len() < DESCR_MAX);
    let rec = ElementType::record(600, 1).unwrap();
    let chan = RawChannel::create(&name, rec, Options::new().descr(&descr).capacity(64)).unwrap();
    let info = ChannelIo::inspect(&name).unwrap();
    assert_eq!(info.descr.as_deref(), Some(descr.as_str()));
    let page = rustix::param::page_size();
    let want = (shmchan::layout::DESCR + descr.len()).div_ceil(page) * page;
    assert!(want > page);
    assert_eq!(info.header_len as usize, want);
    let other = RawChannel::open(&name, rec, Options::new().descr(&descr)).unwrap();
    let (mut w, mut r) = (chan.writer().unwrap(), other.reader().unwrap());
    let items: Vec<u8> = (0..600 * 100).map(|i| (i % 251) as u8).collect();
    w.blocking_put(&items).unwrap();
    let mut back = vec![0u8; items.len()];
    r.blocking_get(&mut back).unwrap();
    assert_eq!(back, items);
    let huge = format!("[('a', '|V{}')]", DESCR_MAX);
    let padded = format!("{}{huge}", " ".repeat(DESCR_MAX));
    let e = RawChannel::create(&unique("descr-huge"), rec, Options::new().descr(padded));
    assert!(
        matches!(&e, Err(e) if e.kind() == ErrorKind::InvalidDescr),
        "{e:?}"
    );
}
