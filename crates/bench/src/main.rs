//! `shmchan-bench`: shmchan next to other transports, two processes, every item checked.
//!
//! ```text
//! cargo build --release -p shmchan-bench           # or scripts/bench.sh, which runs it all
//! target/release/shmchan-bench suite [--quick] [--only TEXT] [--runs N] [--json FILE]
//! target/release/shmchan-bench iceoryx2 [--quick] [--runs N]
//! target/release/shmchan-bench plot SUITE.json OUT.svg
//! target/release/shmchan-bench bridge [--quick] [--runs N] [--bridge PATH]
//! target/release/shmchan-bench instructions [--iters N] [--only TEXT]
//! ```
//!
//! One binary with subcommands rather than one binary per comparison: every cross-process case
//! re-executes this binary as its consumer (`SUBCOMMAND --consume …`), so the consumer is
//! always the very build of the producer, and the helpers both comparisons share
//! ([`common`]) are compiled once. The measuring programs `single_items` and `put_get_loop`
//! are examples of this package (`cargo run --release -p shmchan-bench --example …`).

mod bridge;
mod common;
mod ice;
mod instructions;
mod plot;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Throughput and latency of shmchan next to other transports.
#[derive(Parser, Debug)]
#[command(name = "shmchan-bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// shmchan next to pipes, Unix sockets, memcpy and in-process queues; latency; idle CPU;
    /// system calls.
    #[command(
        after_help = "Producer and consumer run as two processes pinned to CPUs 0 and 1 \
                      (the in-process baselines as two pinned threads); every item is \
                      checked.\n\nExamples:\n  shmchan-bench suite\n  shmchan-bench suite --quick\n  \
                      shmchan-bench suite --only shmchan --json results.json"
    )]
    Suite(suite::SuiteArgs),
    /// shmchan next to iceoryx2: 64 KiB messages, single items, latency.
    Iceoryx2(ice::IceArgs),
    /// The zenoh bridge on loopback next to raw zenoh pub/sub and a TCP socket.
    Bridge(bridge::BridgeArgs),
    /// Instructions per put+get pair on one thread (callgrind), shmchan's calls next to
    /// rtrb's.
    Instructions(instructions::InstrArgs),
    /// Draws the suite's throughput (its --json output) as an SVG.
    Plot {
        /// The JSON that `suite --json` wrote.
        input: PathBuf,
        /// The SVG to write.
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let r = match Cli::parse().cmd {
        Cmd::Suite(a) => suite::run(a),
        Cmd::Iceoryx2(a) => ice::run(a),
        Cmd::Bridge(a) => bridge::run(a),
        Cmd::Instructions(a) => instructions::run(a),
        Cmd::Plot { input, output } => plot::plot(&input, &output),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmchan-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
