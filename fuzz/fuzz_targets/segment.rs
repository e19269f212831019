//! A hostile segment file: the input becomes a channel's `ring` (its directory and doorbell
//! FIFOs intact), which is then opened (as `u64`, as whatever its header names, element
//! description included, and as a message channel), both ends claimed, written and read
//! without waiting, peeked, and inspected (a message channel's messages counted). Whatever the bytes, every call must return (a typed error or a
//! result), never crash, hang, or touch memory outside the mapping.
//!
//! `cargo +nightly fuzz run segment fuzz/corpus/segment -- -max_total_time=60`

#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shmchan::{ChannelIo, MessageChannel, Options, RawChannel};

/// The channel's name and its `ring` path, with a private `SHMCHAN_DIR` set on first use.
fn channel() -> &'static (String, std::path::PathBuf) {
    static CHAN: OnceLock<(String, std::path::PathBuf)> = OnceLock::new();
    CHAN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("shmchan-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz directory");
        // Set once, on first use, before this process starts any thread of its own.
        std::env::set_var("SHMCHAN_DIR", &dir);
        let name = "fuzz".to_string();
        let ring = shmchan::channel_dir(&name).join("ring");
        (name, ring)
    })
}

/// The channel's directory with its doorbells, made again if the last input's handles
/// removed it (a fuzzed header need not say "persist", and a finished channel is removed);
/// its `ring` is what the input then replaces.
fn ensure(name: &str, ring: &std::path::Path) {
    let intact = ["data.bell", "room.bell"]
        .iter()
        .all(|b| ring.with_file_name(b).exists());
    if !intact {
        let _ = ChannelIo::remove(name);
        let opts = Options::new().capacity(512).persist(true);
        drop(ChannelIo::<u64>::create(name, opts).expect("the template channel"));
    }
}

fuzz_target!(|data: &[u8]| {
    let (name, ring) = channel();
    ensure(name, ring);
    let mut f = std::fs::File::create(ring).expect("rewrite the ring");
    f.write_all(data).expect("write the ring");
    drop(f);
    let _ = ChannelIo::inspect(name).map(|i| (i.descr, i.message_count));
    if let Ok(raw) = RawChannel::open_any(name, Options::new()) {
        let _ = (raw.descr().map(str::len), raw.element_type());
    }
    messages(name);
    let Ok(chan) = ChannelIo::<u64>::open(name) else {
        return;
    };
    let (w, r) = (chan.writer(), chan.reader());
    if let Ok(mut w) = w {
        let _ = w.try_put(&[1, 2, 3]);
        if let Ok(mut slots) = w.try_reserve(2) {
            slots.fill(7);
            slots.commit_all();
        }
    }
    if let Ok(mut r) = r {
        let mut buf = [0u64; 8];
        let _ = r.try_get_some(&mut buf);
        if let Ok(view) = r.try_peek_some() {
            let _ = view.iter().fold(0u64, |a, b| a ^ b);
            view.consume(1);
        }
    }
    let _ = ChannelIo::inspect(name);
});

/// The input as a message channel, if its header says it is one: hostile length words must
/// give errors or garbled messages, never a read outside the committed words.
fn messages(name: &str) {
    let Ok(chan) = MessageChannel::open(name) else {
        return;
    };
    if let Ok(mut r) = chan.reader() {
        let mut bufs = vec![Vec::new(); 4];
        let _ = r.count();
        let _ = r.try_get_some(&mut bufs);
        if let Ok(Some(m)) = r.try_peek() {
            let _ = m.iter().fold(0u8, |a, b| a ^ b);
            m.consume();
        }
        if let Ok(v) = r.try_peek_some() {
            let _ = v.iter().map(<[u8]>::len).sum::<usize>();
            v.consume(2);
        }
    }
    if let Ok(mut w) = chan.writer() {
        let _ = w.try_put(&[b"a".as_slice(), &[7u8; 100]]);
        if let Ok(Some(mut slot)) = w.try_reserve(9) {
            slot.fill(3);
            slot.commit_len(5);
        }
    }
}
