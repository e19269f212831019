//! `shmchan-bench iceoryx2`: shmchan next to iceoryx2, the same work through both, two
//! processes, in one run.
//!
//! ```text
//! target/release/shmchan-bench iceoryx2            # or scripts/bench.sh
//! target/release/shmchan-bench iceoryx2 --quick
//! ```
//!
//! Cases (producer pinned to CPU 0, consumer to CPU 1, every item checked):
//! - 64 KiB messages (8192 `u64`), written word by word in place by the producer and read
//!   word by word in place by the consumer: iceoryx2 publish-subscribe (loan, write, send;
//!   lossless: `RetryUntilDelivered`, no safe overflow) vs shmchan reserve/commit +
//!   peek/consume, and shmchan put/get (copy API);
//! - single 8-byte messages: iceoryx2 `u64` samples vs shmchan `put(&[x])` / `get`;
//! - one-way latency (half a round trip of one `u64`, spinning receivers) vs a cache line
//!   bounced between two threads.
//!
//! iceoryx2's subscriber has no blocking receive in publish-subscribe; its consumer polls
//! `receive()` in a spin loop (its fastest mode). shmchan uses its blocking calls with the
//! spin strategy for the latency case and the default strategy otherwise.

use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Args;
use iceoryx2::prelude::*;
use shmchan::{ChannelIo, ErrorKind, Options};

use crate::common::{self, check, collect, median, pin, report, Res, Trips};

const MSG: usize = 8192; // u64 per 64 KiB message

#[derive(Args, Debug)]
pub struct IceArgs {
    /// A tenth of the work, one run per case (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Runs per throughput case; the median is reported (default 5, with --quick 1).
    #[arg(long)]
    runs: Option<usize>,
    /// Internal: run as the consumer of a case ("CASE COUNT NAME").
    #[arg(long, hide = true, num_args = 3)]
    consume: Option<Vec<String>>,
}

/// The throughput cases: label, case, whether it moves single `u64`s (else 64 KiB
/// messages), and bytes per message.
const CASES: [(&str, &str, bool, f64); 5] = [
    (
        "64 KiB msgs, iceoryx2 loan/send",
        "ice-bulk",
        false,
        65536.0,
    ),
    (
        "64 KiB msgs, shmchan reserve/peek",
        "shm-bulk-zc",
        false,
        65536.0,
    ),
    (
        "64 KiB msgs, shmchan put/get",
        "shm-bulk-copy",
        false,
        65536.0,
    ),
    ("8-byte msgs, iceoryx2", "ice-single", true, 8.0),
    ("8-byte msgs, shmchan put/get", "shm-single", true, 8.0),
];

pub fn run(a: IceArgs) -> Res<()> {
    iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
    if let Some(c) = &a.consume {
        pin(1);
        let count: u64 = c[1].parse()?;
        return if c[0].ends_with("-echo") {
            echo(&c[0], count, &c[2])
        } else {
            report(consume(&c[0], count, &c[2])?, 0);
            Ok(())
        };
    }
    let runs = a.runs.unwrap_or(if a.quick { 1 } else { 5 }).max(1);
    let scale = if a.quick { 10 } else { 1 };
    pin(0);
    println!(
        "shmchan vs iceoryx2 0.10: two processes (CPU 0 -> CPU 1), every item checked, median of {runs} runs"
    );
    let msgs: u64 = 40_000 / scale; // 64 KiB messages: 2.6 GB
    let singles = 20_000_000 / scale;
    let mut rows = Vec::new();
    for (label, case, single, bytes) in CASES {
        let count = if single { singles } else { msgs };
        let secs: Vec<f64> = (0..runs)
            .map(|_| produce(case, count))
            .collect::<Res<_>>()?;
        let rate = count as f64 / median(secs, |s| *s);
        println!(
            "{label:<38} {:>10.2} M msgs/s {:>8.2} GB/s",
            rate / 1e6,
            rate * bytes / 1e9
        );
        rows.push((case, rate));
    }
    let get = |c: &str| rows.iter().find(|r| r.0 == c).map_or(0.0, |r| r.1);
    println!(
        "ratios: shmchan reserve/peek / iceoryx2 (64 KiB) = {:.2}; put/get / reserve/peek = {:.2}; \
         shmchan singles / iceoryx2 singles = {:.2}",
        get("shm-bulk-zc") / get("ice-bulk"),
        get("shm-bulk-copy") / get("shm-bulk-zc"),
        get("shm-single") / get("ice-single"),
    );
    let iters = 200_000 / scale;
    println!("one-way latency (ns), half a round trip of one u64, {iters} round trips:");
    for (label, case) in [
        ("cache line, 2 threads", "line"),
        ("iceoryx2, spinning receive", "ice-lat"),
        ("shmchan, spin strategy", "shm-lat"),
    ] {
        let h = latency(case, iters)?;
        println!(
            "  {label:<30} p50 {:>7}  p99 {:>7}  p99.9 {:>8}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999)
        );
    }
    Ok(())
}

fn spawn(case: &str, count: u64, name: &str) -> Res<std::process::Child> {
    common::spawn_consumer(
        "iceoryx2",
        &[case.to_string(), count.to_string(), name.to_string()],
        Stdio::null(),
    )
}

fn service_name(s: &str) -> Res<ServiceName> {
    Ok(s.try_into()?)
}

type U64Service =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, u64, ()>;

type SliceService =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u64], ()>;

/// The service of `ice-bulk`: 64 KiB slices, lossless.
fn bulk_service(node: &Node<ipc::Service>, name: &str) -> Res<SliceService> {
    Ok(node
        .service_builder(&service_name(name)?)
        .publish_subscribe::<[u64]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(16)
        .open_or_create()?)
}

/// The service of `ice-single`: single `u64` samples, lossless.
fn single_service(node: &Node<ipc::Service>, name: &str) -> Res<U64Service> {
    Ok(node
        .service_builder(&service_name(name)?)
        .publish_subscribe::<u64>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(1024)
        .open_or_create()?)
}

/// The two iceoryx2 services of the latency case: NAME-ping and NAME-pong.
fn ping_pong(node: &Node<ipc::Service>, name: &str) -> Res<(U64Service, U64Service)> {
    let open = |suffix: &str| -> Res<U64Service> {
        Ok(node
            .service_builder(&service_name(&format!("{name}-{suffix}"))?)
            .publish_subscribe::<u64>()
            .open_or_create()?)
    };
    Ok((open("ping")?, open("pong")?))
}

/// Runs the producer of `case` and returns the consumer's seconds.
fn produce(case: &str, count: u64) -> Res<f64> {
    let name = format!("cmp-{}-{case}", std::process::id());
    match case {
        "ice-bulk" | "ice-single" => produce_ice(case, count, &name),
        _ => produce_shm(case, count, &name),
    }
}

fn produce_ice(case: &str, count: u64, name: &str) -> Res<f64> {
    let node = NodeBuilder::new().create::<ipc::Service>()?;
    if case == "ice-bulk" {
        let service = bulk_service(&node, name)?;
        let publisher = service
            .publisher_builder()
            .initial_max_slice_len(MSG)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()?;
        let child = spawn(case, count, name)?;
        wait_for_subscriber(|| service.dynamic_config().number_of_subscribers())?;
        for m in 0..count {
            let base = m * MSG as u64;
            let sample = publisher.loan_slice_uninit(MSG)?;
            let sample = sample.write_from_fn(|i| base + i as u64);
            sample.send()?;
        }
        Ok(collect(child)?.0)
    } else {
        let service = single_service(&node, name)?;
        let publisher = service
            .publisher_builder()
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()?;
        let child = spawn(case, count, name)?;
        wait_for_subscriber(|| service.dynamic_config().number_of_subscribers())?;
        for i in 0..count {
            publisher.loan_uninit()?.write_payload(i).send()?;
        }
        Ok(collect(child)?.0)
    }
}

fn produce_shm(case: &str, count: u64, name: &str) -> Res<f64> {
    let chan = ChannelIo::<u64>::create(name, Options::new().capacity(1 << 17))?;
    let mut w = chan.writer()?;
    let child = spawn(case, count, name)?;
    match case {
        "shm-bulk-zc" => {
            for m in 0..count {
                let base = m * MSG as u64;
                let mut slots = w.blocking_reserve(MSG)?;
                for (i, s) in slots.iter_mut().enumerate() {
                    *s = base + i as u64;
                }
                slots.commit_all();
            }
        }
        "shm-bulk-copy" => {
            let mut buf = vec![0u64; MSG];
            for m in 0..count {
                let base = m * MSG as u64;
                for (i, s) in buf.iter_mut().enumerate() {
                    *s = base + i as u64;
                }
                w.blocking_put(&buf)?;
            }
        }
        _ => {
            for i in 0..count {
                w.blocking_put(&[i])?;
            }
        }
    }
    w.close();
    Ok(collect(child)?.0)
}

/// Waits (bounded) until the consumer's subscriber exists, so no sample goes to nobody.
/// (iceoryx2 offers no event for it; the producer yields between looks.)
fn wait_for_subscriber(subscribers: impl Fn() -> usize) -> Res<()> {
    let start = Instant::now();
    while subscribers() == 0 {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("the subscriber never came".into());
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// The consumer process of a throughput case; returns its seconds from first item to last.
fn consume(case: &str, count: u64, name: &str) -> Res<f64> {
    let start = match case {
        "ice-bulk" | "ice-single" => consume_ice(case, count, name)?,
        _ => consume_shm(case, count, name)?,
    };
    Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
}

/// The iceoryx2 consumer; returns when it saw its first item.
fn consume_ice(case: &str, count: u64, name: &str) -> Res<Option<Instant>> {
    let mut start = None;
    let node = NodeBuilder::new().create::<ipc::Service>()?;
    if case == "ice-bulk" {
        let sub = bulk_service(&node, name)?.subscriber_builder().create()?;
        let mut m = 0u64;
        while m < count {
            if let Some(sample) = sub.receive()? {
                start.get_or_insert_with(Instant::now);
                check(sample.payload(), m * MSG as u64)?;
                m += 1;
            } else {
                std::hint::spin_loop();
            }
        }
    } else {
        let sub = single_service(&node, name)?.subscriber_builder().create()?;
        let mut i = 0u64;
        while i < count {
            if let Some(sample) = sub.receive()? {
                start.get_or_insert_with(Instant::now);
                check(&[*sample.payload()], i)?;
                i += 1;
            } else {
                std::hint::spin_loop();
            }
        }
    }
    Ok(start)
}

/// The shmchan consumer; returns when it saw its first item.
fn consume_shm(case: &str, count: u64, name: &str) -> Res<Option<Instant>> {
    let mut start = None;
    let chan = ChannelIo::<u64>::open(name)?;
    let mut r = chan.reader()?;
    match case {
        "shm-bulk-zc" => {
            for m in 0..count {
                let view = r.blocking_peek(MSG)?;
                start.get_or_insert_with(Instant::now);
                check(&view, m * MSG as u64)?;
                view.consume_all();
            }
        }
        "shm-bulk-copy" => {
            let mut buf = vec![0u64; MSG];
            for m in 0..count {
                r.blocking_get(&mut buf)?;
                start.get_or_insert_with(Instant::now);
                check(&buf, m * MSG as u64)?;
            }
        }
        _ => {
            let mut x = [0u64];
            for i in 0..count {
                r.blocking_get(&mut x)?;
                start.get_or_insert_with(Instant::now);
                check(&x, i)?;
            }
        }
    }
    match r.blocking_get(&mut [0u64]) {
        Err(e) if e.kind() == ErrorKind::Closed => Ok(start),
        other => Err(format!("after the last item: {other:?}").into()),
    }
}

/// Ping-pong latency: half of each round trip, after a 10% warm-up.
fn latency(case: &str, iters: u64) -> Res<hdrhistogram::Histogram<u64>> {
    let name = format!("cmp-{}-lat", std::process::id());
    let mut trips = Trips::new(iters)?;
    let total = trips.total();
    match case {
        "line" => return common::cache_line(iters),
        "ice-lat" => {
            let node = NodeBuilder::new().create::<ipc::Service>()?;
            let (ping, pong) = ping_pong(&node, &name)?;
            let publisher = ping.publisher_builder().create()?;
            let sub = pong.subscriber_builder().create()?;
            let child = spawn("ice-echo", total, &name)?;
            wait_for_subscriber(|| ping.dynamic_config().number_of_subscribers())?;
            for i in 1..=total {
                let t0 = Instant::now();
                publisher.loan_uninit()?.write_payload(i).send()?;
                loop {
                    if let Some(s) = sub.receive()? {
                        if *s.payload() != i {
                            return Err(format!("echo {i} came back as {}", *s.payload()).into());
                        }
                        break;
                    }
                    std::hint::spin_loop();
                }
                trips.record(i, t0);
            }
            collect(child)?;
        }
        _ => {
            let spin = Options::new().capacity(512).wait_strategy(common::spin());
            common::shm_ping(&name, spin, &mut trips, || spawn("shm-echo", total, &name))?;
        }
    }
    Ok(trips.hist)
}

/// The echo side of the latency cases (dispatched from `consume`'s caller by case name).
fn echo(case: &str, total: u64, name: &str) -> Res<()> {
    if case != "ice-echo" {
        return common::shm_echo(name, Options::new().wait_strategy(common::spin()), total);
    }
    let node = NodeBuilder::new().create::<ipc::Service>()?;
    let (ping, pong) = ping_pong(&node, name)?;
    let sub = ping.subscriber_builder().create()?;
    let publisher = pong.publisher_builder().create()?;
    wait_for_subscriber(|| pong.dynamic_config().number_of_subscribers())?;
    let mut n = 0;
    while n < total {
        if let Some(s) = sub.receive()? {
            publisher
                .loan_uninit()?
                .write_payload(*s.payload())
                .send()?;
            n += 1;
        } else {
            std::hint::spin_loop();
        }
    }
    report(0.0, 0);
    Ok(())
}
