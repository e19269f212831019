//! `shmchan-bridge`: a shmchan channel forwarded over zenoh.
//!
//! ```text
//! shmchan-bridge push NAME [--key KEY] [--connect EP]... [--listen EP]...
//! shmchan-bridge pull KEY --into NAME [--connect EP]... [--listen EP]...
//! ```
//!
//! `push` reads local channel NAME and publishes its stream on KEY (default `shmchan/NAME`);
//! `pull` subscribes to KEY and writes into local channel NAME, creating it with the type the
//! stream announces. EP is a zenoh endpoint such as `tcp/127.0.0.1:7447`; without endpoints,
//! zenoh's multicast scouting finds the peer. See docs/bridge.md.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use shmchan_zenoh::pull::PullOptions;
use shmchan_zenoh::push::PushOptions;
use shmchan_zenoh::{pull, push, Batching, BridgeError, Link};

#[derive(Parser)]
#[command(
    name = "shmchan-bridge",
    version,
    about = "Forward a shmchan channel over zenoh"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Endpoints {
    /// A zenoh endpoint to connect to, such as tcp/10.0.0.2:7447 (repeatable).
    #[arg(long = "connect", value_name = "EP")]
    connect: Vec<String>,
    /// A zenoh endpoint to listen on, such as tcp/0.0.0.0:7447 (repeatable).
    #[arg(long = "listen", value_name = "EP")]
    listen: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Read local channel NAME and publish its stream on KEY.
    Push {
        /// The local channel (its type is read from it; waited for if it does not exist yet).
        name: String,
        /// The zenoh key (default shmchan/NAME).
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        endpoints: Endpoints,
        /// The most bytes in one sample; this many are sent at once. The default fits one
        /// zenoh batch on common TCP links (a larger sample is fragmented).
        #[arg(long, default_value_t = shmchan_zenoh::DEFAULT_BATCH_BYTES, value_name = "BYTES")]
        batch_bytes: usize,
        /// The longest an item waits for others to fill its sample, in microseconds. The
        /// default, 0, sends what is there at once (samples grow under load by themselves).
        #[arg(long, default_value_t = 0, value_name = "US")]
        linger_us: u64,
        /// The longest to wait for the local channel to be created, and for a pull to come
        /// (each time one goes), in seconds. Default: as long as it takes.
        #[arg(long, value_name = "SECS", value_parser = seconds)]
        timeout: Option<Duration>,
    },
    /// Subscribe to KEY and write its stream into local channel NAME.
    Pull {
        /// The zenoh key.
        key: String,
        /// The local channel (created with the stream's type if missing).
        #[arg(long = "into", value_name = "NAME")]
        into: String,
        #[command(flatten)]
        endpoints: Endpoints,
        /// Capacity of the channel if the pull creates it, in items (rounded up to whole
        /// pages); an existing channel must have it, else the stream is refused. Default: 1 MiB
        /// of ring (1 048 576 bytes / the element size, at least 1 item).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        capacity: Option<u64>,
        /// The most bytes of ring a stream may make the pull create (capacity × element
        /// size); a stream that needs more is refused before anything is created.
        #[arg(long, default_value_t = shmchan_zenoh::pull::DEFAULT_MAX_BYTES, value_name = "BYTES")]
        max_bytes: u64,
        /// The longest to wait for a push (at the start, and each time one goes), in
        /// seconds. Default: as long as it takes.
        #[arg(long, value_name = "SECS", value_parser = seconds)]
        timeout: Option<Duration>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shmchan-bridge: no runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(msg) => {
            eprintln!("shmchan-bridge: {msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shmchan-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` to its end; what it did, in words.
async fn run(command: Command) -> Result<String, BridgeError> {
    match command {
        Command::Push {
            name,
            key,
            endpoints,
            batch_bytes,
            linger_us,
            timeout,
        } => {
            let link = Link {
                key: key.unwrap_or_else(|| format!("shmchan/{name}")),
                connect: endpoints.connect,
                listen: endpoints.listen,
            };
            let batching = Batching {
                batch_bytes,
                linger: Duration::from_micros(linger_us),
            };
            let options = PushOptions { batching, timeout };
            push::push(&name, &link, options)
                .await
                .map(|n| format!("pushed {n} items, stream ended"))
        }
        Command::Pull {
            key,
            into,
            endpoints,
            capacity,
            max_bytes,
            timeout,
        } => {
            let link = Link {
                key,
                connect: endpoints.connect,
                listen: endpoints.listen,
            };
            let capacity = match capacity.map(usize::try_from) {
                Some(Err(_)) => return Err(BridgeError::Stream("--capacity is too large".into())),
                Some(Ok(c)) => Some(c),
                None => None,
            };
            let options = PullOptions {
                capacity,
                max_bytes,
                timeout,
            };
            pull::pull(&into, &link, options)
                .await
                .map(|end| format!("pulled into {into}: {end:?}"))
        }
    }
}

/// `--timeout`: seconds, fractions allowed, more than 0.
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s:?}: the timeout must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}
