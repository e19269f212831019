//! shmchan next to iceoryx2, the same work through both, two processes, in one run.
//!
//! ```text
//! cargo run --release -p shmchan-bench            # or scripts/bench.sh
//! cargo run --release -p shmchan-bench -- --quick
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

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iceoryx2::prelude::*;
use shmchan::{ChannelIo, GetError, Options, WaitStrategy};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const MSG: usize = 8192; // u64 per 64 KiB message

fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn main() -> Res<()> {
    iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("plot") {
        let (input, output) = (
            args.get(2).ok_or("plot IN.json OUT.svg")?,
            args.get(3).ok_or("plot IN.json OUT.svg")?,
        );
        return plot(input, output);
    }
    if let Some(i) = args.iter().position(|a| a == "--consume") {
        pin(1);
        let case = args[i + 1].as_str();
        let count: u64 = args[i + 2].parse()?;
        let name = &args[i + 3];
        let secs = if case.ends_with("-echo") {
            echo(case, count, name)?;
            0.0
        } else {
            consume(case, count, name)?
        };
        println!("{secs}");
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 5 });
    let scale = if quick { 10 } else { 1 };
    pin(0);
    println!(
        "shmchan vs iceoryx2 0.10: two processes (CPU 0 -> CPU 1), every item checked, median of {runs} runs"
    );
    let msgs: u64 = 40_000 / scale; // 64 KiB messages: 2.6 GB
    let singles = 20_000_000 / scale as u64;
    let mut rows = Vec::new();
    for (label, case, count, bytes) in [
        ("64 KiB msgs, iceoryx2 loan/send", "ice-bulk", msgs, 65536.0),
        (
            "64 KiB msgs, shmchan reserve/peek",
            "shm-bulk-zc",
            msgs,
            65536.0,
        ),
        (
            "64 KiB msgs, shmchan put/get",
            "shm-bulk-copy",
            msgs,
            65536.0,
        ),
        ("8-byte msgs, iceoryx2", "ice-single", singles, 8.0),
        ("8-byte msgs, shmchan put/get", "shm-single", singles, 8.0),
    ] {
        let mut secs: Vec<f64> = (0..runs)
            .map(|_| produce(case, count))
            .collect::<Res<_>>()?;
        secs.sort_by(f64::total_cmp);
        let s = secs[secs.len() / 2];
        let rate = count as f64 / s;
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
    let iters = 200_000 / scale as u64;
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
    Ok(Command::new(std::env::current_exe()?)
        .args(["--consume", case, &count.to_string(), name])
        .stdout(Stdio::piped())
        .spawn()?)
}

fn collect(child: std::process::Child) -> Res<f64> {
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("consumer failed: {text}").into());
    }
    Ok(text.trim().parse()?)
}

fn service_name(s: &str) -> Res<ServiceName> {
    Ok(s.try_into()?)
}

type U64Service =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, u64, ()>;

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
        "ice-bulk" | "ice-single" => {
            let node = NodeBuilder::new().create::<ipc::Service>()?;
            let child;
            if case == "ice-bulk" {
                let service = node
                    .service_builder(&service_name(&name)?)
                    .publish_subscribe::<[u64]>()
                    .enable_safe_overflow(false)
                    .subscriber_max_buffer_size(16)
                    .open_or_create()?;
                let publisher = service
                    .publisher_builder()
                    .initial_max_slice_len(MSG)
                    .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                    .create()?;
                child = spawn(case, count, &name)?;
                wait_for_subscriber(|| service.dynamic_config().number_of_subscribers())?;
                for m in 0..count {
                    let base = m * MSG as u64;
                    let sample = publisher.loan_slice_uninit(MSG)?;
                    let sample = sample.write_from_fn(|i| base + i as u64);
                    sample.send()?;
                }
                collect(child)
            } else {
                let service = node
                    .service_builder(&service_name(&name)?)
                    .publish_subscribe::<u64>()
                    .enable_safe_overflow(false)
                    .subscriber_max_buffer_size(1024)
                    .open_or_create()?;
                let publisher = service
                    .publisher_builder()
                    .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                    .create()?;
                child = spawn(case, count, &name)?;
                wait_for_subscriber(|| service.dynamic_config().number_of_subscribers())?;
                for i in 0..count {
                    publisher.loan_uninit()?.write_payload(i).send()?;
                }
                collect(child)
            }
        }
        _ => {
            let chan = ChannelIo::<u64>::create(&name, Options::new().capacity(1 << 17))?;
            let mut w = chan.writer()?;
            let child = spawn(case, count, &name)?;
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
            collect(child)
        }
    }
}

/// Waits (bounded) until the consumer's subscriber exists, so no sample goes to nobody.
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

fn check(vals: &[u64], next: u64) -> Res<()> {
    for (i, v) in vals.iter().enumerate() {
        if *v != next + i as u64 {
            return Err(format!("item {} is {v}", next + i as u64).into());
        }
    }
    Ok(())
}

/// The consumer process of a throughput case; returns its seconds from first item to last.
fn consume(case: &str, count: u64, name: &str) -> Res<f64> {
    let mut start = None;
    match case {
        "ice-bulk" | "ice-single" => {
            let node = NodeBuilder::new().create::<ipc::Service>()?;
            if case == "ice-bulk" {
                let service = node
                    .service_builder(&service_name(name)?)
                    .publish_subscribe::<[u64]>()
                    .enable_safe_overflow(false)
                    .subscriber_max_buffer_size(16)
                    .open_or_create()?;
                let sub = service.subscriber_builder().create()?;
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
                let service = node
                    .service_builder(&service_name(name)?)
                    .publish_subscribe::<u64>()
                    .enable_safe_overflow(false)
                    .subscriber_max_buffer_size(1024)
                    .open_or_create()?;
                let sub = service.subscriber_builder().create()?;
                let mut i = 0u64;
                while i < count {
                    if let Some(sample) = sub.receive()? {
                        start.get_or_insert_with(Instant::now);
                        if *sample.payload() != i {
                            return Err(format!("item {i} is {}", *sample.payload()).into());
                        }
                        i += 1;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
        _ => {
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
                        if x[0] != i {
                            return Err(format!("item {i} is {}", x[0]).into());
                        }
                    }
                }
            }
            match r.blocking_get(&mut [0u64]) {
                Err(GetError::Closed { .. }) => {}
                other => return Err(format!("after the last item: {other:?}").into()),
            }
        }
    }
    Ok(start.map_or(0.0, |s| s.elapsed().as_secs_f64()))
}

fn histogram() -> Res<hdrhistogram::Histogram<u64>> {
    Ok(hdrhistogram::Histogram::new_with_bounds(
        1,
        10_000_000_000,
        3,
    )?)
}

/// Ping-pong latency: half of each round trip, after a 10% warm-up.
fn latency(case: &str, iters: u64) -> Res<hdrhistogram::Histogram<u64>> {
    let mut h = histogram()?;
    let warm = iters / 10;
    let total = iters + warm;
    let mut record = |i: u64, t0: Instant| {
        if i > warm {
            let _ = h.record((t0.elapsed().as_nanos() as u64 / 2).max(1));
        }
    };
    match case {
        "line" => {
            use std::sync::atomic::{AtomicU64, Ordering};
            use std::sync::Arc;
            #[repr(align(128))]
            struct Line(AtomicU64);
            let (ping, pong) = (
                Arc::new(Line(AtomicU64::new(0))),
                Arc::new(Line(AtomicU64::new(0))),
            );
            let (p2, q2) = (Arc::clone(&ping), Arc::clone(&pong));
            let echo = std::thread::spawn(move || {
                pin(1);
                for i in 1..=total {
                    while p2.0.load(Ordering::Acquire) != i {
                        std::hint::spin_loop();
                    }
                    q2.0.store(i, Ordering::Release);
                }
            });
            for i in 1..=total {
                let t0 = Instant::now();
                ping.0.store(i, Ordering::Release);
                while pong.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                record(i, t0);
            }
            echo.join().map_err(|_| "echo thread panicked")?;
        }
        "ice-lat" => {
            let name = format!("cmp-{}-lat", std::process::id());
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
                record(i, t0);
            }
            collect(child)?;
        }
        _ => {
            let name = format!("cmp-{}-lat", std::process::id());
            let spin = Options::new()
                .capacity(512)
                .wait_strategy(WaitStrategy::SpinThenSleep(Duration::from_secs(1)));
            let ping = ChannelIo::<u64>::create(&format!("{name}-ping"), spin.clone())?;
            let pong = ChannelIo::<u64>::create(&format!("{name}-pong"), spin)?;
            let (mut w, mut r) = (ping.writer()?, pong.reader()?);
            let child = spawn("shm-echo", total, &name)?;
            let mut x = [0u64];
            for i in 1..=total {
                let t0 = Instant::now();
                w.blocking_put(&[i])?;
                r.blocking_get(&mut x)?;
                if x[0] != i {
                    return Err(format!("echo {i} came back as {}", x[0]).into());
                }
                record(i, t0);
            }
            w.close();
            collect(child)?;
        }
    }
    Ok(h)
}

/// The echo side of the latency cases (dispatched from `consume`'s caller by case name).
fn echo(case: &str, total: u64, name: &str) -> Res<()> {
    if case == "ice-echo" {
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
        return Ok(());
    }
    let spin = Options::new().wait_strategy(WaitStrategy::SpinThenSleep(Duration::from_secs(1)));
    let ping = ChannelIo::<u64>::open_with(&format!("{name}-ping"), spin.clone())?;
    let pong = ChannelIo::<u64>::open_with(&format!("{name}-pong"), spin)?;
    let (mut r, mut w) = (ping.reader()?, pong.writer()?);
    let mut x = [0u64];
    for _ in 0..total {
        r.blocking_get(&mut x)?;
        w.blocking_put(&x)?;
    }
    Ok(())
}

/// Draws throughput (M items/s, log scale) against batch size for each transport, from the
/// JSON that `shmchan bench --json` writes.
fn plot(input: &str, output: &str) -> Res<()> {
    use plotters::prelude::*;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(input)?)?;
    let rows = v["throughput"]
        .as_array()
        .ok_or("no throughput in the JSON")?;
    let batches = [1u64, 64, 4096, 8192];
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in rows {
        let t = r["transport"].as_str().unwrap_or("?").to_string();
        let b = r["batch_items"].as_u64().unwrap_or(0);
        let x = batches.iter().position(|&x| x == b).unwrap_or(0) as f64;
        let y = r["items_per_sec"].as_f64().unwrap_or(0.0) / 1e6;
        match series.iter_mut().find(|s| s.0 == t) {
            Some(s) => s.1.push((x, y)),
            None => series.push((t, vec![(x, y)])),
        }
    }
    let root = SVGBackend::new(output, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "shmchan bench: throughput by batch size (u64 items, 2 processes)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..3.2f64, (0.5f64..20_000f64).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&|x| match x.round() as i64 {
            0 => "batch 1".into(),
            1 => "batch 64".into(),
            2 => "batch 4096".into(),
            3 => "64 KiB msgs".into(),
            _ => String::new(),
        })
        .y_desc("million items per second (log)")
        .draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
