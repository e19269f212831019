//! shmchan over zenoh: `push` forwards a local channel's stream to a zenoh key, `pull`
//! writes what it receives on that key into a local channel of the same name and type on
//! another host. The programs on both ends do not change: one writes a channel, the other
//! reads one.
//!
//! The wire format (`wire`) and the guarantees are documented in `docs/bridge.md`. In short:
//! - the push consumes a local item only once the pull acknowledges that the far channel
//!   holds it, so a crash of either bridge loses nothing: a restarted push or pull resumes
//!   at the first item the far channel does not hold, which the far channel's header records
//!   ([`shmchan::Origin`]);
//! - nothing is consumed before the pull accepted the stream (a hello, answered);
//! - the push sends at most a window of items beyond the last acknowledged, so the pull's
//!   queue is bounded and never blocks zenoh, and a paused far reader pauses the writer;
//! - the local writer's close or abort arrives as close or abort after everything before it,
//!   and its death as the death of the far channel's writer: the stream stays resumable.

use std::time::Duration;

pub mod pull;
pub mod push;
pub mod wire;

/// Whether this host can put its items on the wire as they are (the format is
/// little-endian).
#[cfg(not(target_endian = "little"))]
compile_error!("shmchan-zenoh sends items as they are in memory, which the wire format says is little-endian: big-endian hosts are refused at build time");

/// What both directions share: the zenoh endpoints and the key.
#[derive(Clone, Debug)]
pub struct Link {
    /// The key expression of the data samples (a concrete key, no wildcards).
    pub key: String,
    /// Endpoints to connect to (`tcp/HOST:PORT`).
    pub connect: Vec<String>,
    /// Endpoints to listen on.
    pub listen: Vec<String>,
}

/// A subscriber whose samples queue until taken (`recv_async`, `try_recv`).
pub(crate) type Samples =
    zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<zenoh::sample::Sample>>;

/// A subscriber to the samples put on `key`.
pub(crate) async fn subscribe(
    session: &zenoh::Session,
    key: String,
) -> Result<Samples, BridgeError> {
    session
        .declare_subscriber(key)
        .await
        .map_err(BridgeError::zenoh)
}

/// A subscriber to liveliness token `key` (the peer bridge's), with history: a token
/// declared before we came counts.
pub(crate) async fn watch(session: &zenoh::Session, key: String) -> Result<Samples, BridgeError> {
    session
        .liveliness()
        .declare_subscriber(key)
        .history(true)
        .await
        .map_err(BridgeError::zenoh)
}

/// Declares liveliness token `key` (this bridge's), for as long as it is kept.
pub(crate) async fn token(
    session: &zenoh::Session,
    key: String,
) -> Result<zenoh::liveliness::LivelinessToken, BridgeError> {
    session
        .liveliness()
        .declare_token(key)
        .await
        .map_err(BridgeError::zenoh)
}

/// The errors of a bridge run.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The local channel could not be opened or created, or its end claimed.
    #[error(transparent)]
    Setup(shmchan::Error),
    /// From the local end while streaming: the reader (push) or the writer (pull).
    #[error(transparent)]
    Channel(#[from] shmchan::Error),
    /// From zenoh.
    #[error("zenoh: {0}")]
    Zenoh(String),
    /// The stream cannot go on; the far channel was aborted with this reason where there was
    /// one to abort.
    #[error("{0}")]
    Stream(String),
}

impl BridgeError {
    pub(crate) fn zenoh(e: impl std::fmt::Display) -> BridgeError {
        BridgeError::Zenoh(without_source_paths(&e.to_string()))
    }
}

/// A zenoh error's message without the source locations zenoh appends (`… at
/// /home/…/zenoh/src/net/runtime/mod.rs:123.`), which say nothing to an operator.
fn without_source_paths(message: &str) -> String {
    let is_path = |w: &str| {
        let w = w.trim_end_matches(['.', ',', ')']);
        w.rsplit_once(':')
            .is_some_and(|(file, line)| file.ends_with(".rs") && line.parse::<u32>().is_ok())
    };
    let words: Vec<&str> = message.split(' ').collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        if is_path(w) || (*w == "at" && words.get(i + 1).is_some_and(|n| is_path(n))) {
            continue;
        }
        out.push(w);
    }
    out.join(" ").trim_end().to_string()
}

/// The liveliness token a push declares for `key`.
pub fn push_token(key: &str) -> String {
    format!("{key}/_bridge/push")
}

/// How long a bridge that is done waits for its peer to take its last word (the last
/// acknowledgement) and go, before it closes its session anyway.
pub(crate) const FAREWELL: Duration = Duration::from_secs(30);

/// How long a push waits for the pull's answer to its hello before it asks again (while the
/// pull's token is there).
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a push asks a pull to take its stream (a query; see [`wire::Hello`]); the pull
/// answers with a [`wire::Accept`] or an error reply that says why it refuses.
pub fn hello_key(key: &str) -> String {
    format!("{key}/_bridge/hello")
}

/// Where a pull acknowledges what the far channel holds ([`wire::Ack`]).
pub fn ack_key(key: &str) -> String {
    format!("{key}/_bridge/ack")
}

/// The liveliness token a pull declares for `key`.
pub fn pull_token(key: &str) -> String {
    format!("{key}/_bridge/pull")
}

/// Opens a zenoh session in peer mode. With endpoints given, multicast scouting is off (the
/// peers find each other through the endpoints alone); without, zenoh's defaults apply.
pub async fn session(link: &Link) -> Result<zenoh::Session, BridgeError> {
    zenoh::open(config(link)?).await.map_err(BridgeError::zenoh)
}

/// The zenoh configuration of [`session`]: peer mode, the endpoints, and the transport
/// settings a bridge needs (public so that a benchmark can give raw zenoh the same).
pub fn config(link: &Link) -> Result<zenoh::Config, BridgeError> {
    let mut config = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, k: &str, v: String| {
        c.insert_json5(k, &v).map_err(BridgeError::zenoh)
    };
    set(&mut config, "mode", "\"peer\"".into())?;
    let list = |eps: &[String]| {
        let quoted: Vec<String> = eps.iter().map(|e| format!("{e:?}")).collect();
        format!("[{}]", quoted.join(","))
    };
    if !link.connect.is_empty() {
        set(&mut config, "connect/endpoints", list(&link.connect))?;
    }
    if !link.listen.is_empty() {
        set(&mut config, "listen/endpoints", list(&link.listen))?;
    }
    if !link.connect.is_empty() || !link.listen.is_empty() {
        set(&mut config, "scouting/multicast/enabled", "false".into())?;
    }
    // A publication blocked for zenoh's `wait_before_close` (5 s) closes the link: a pull
    // never blocks zenoh's receiving (its queue is bounded by the window it grants, see
    // `pull`), so a link that takes nothing for that long is stalled or dead. The push then
    // sees the pull's token go and waits for a pull to come back.
    // The deepest transmission queue zenoh allows (its default is 2 batches): the push may
    // then run up to 16 batches (768 KiB on loopback) ahead of the socket instead of
    // waiting for the link's thread at every other sample. Measured in `shmchan-bench
    // bridge`, which runs raw zenoh with and without this setting (docs/bridge.md).
    set(
        &mut config,
        "transport/link/tx/queue/size/data",
        TX_QUEUE_BATCHES.to_string(),
    )?;
    Ok(config)
}

/// Batches in the transmission queue of a bridge's zenoh links (zenoh allows 1 to 16).
pub const TX_QUEUE_BATCHES: usize = 16;

/// Checks that `key` is a concrete key expression (a bridge publishes on it).
pub fn check_key(key: &str) -> Result<(), BridgeError> {
    let ke = zenoh::key_expr::KeyExpr::try_from(key.to_string())
        .map_err(|e| BridgeError::Stream(format!("invalid key {key:?}: {e}")))?;
    if key.contains('*') || key.contains('$') {
        return Err(BridgeError::Stream(format!(
            "key {key:?} has wildcards; a bridge needs one concrete key"
        )));
    }
    drop(ke);
    Ok(())
}

/// How the push batches: it publishes what is there at once, up to `batch_bytes` a sample
/// (items that come while a sample is being sent make the next one larger: batches grow
/// only under load), and with a `linger` other than zero, waits that long for a fuller one.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// The most bytes in one sample (and the size that flushes at once).
    pub batch_bytes: usize,
    /// The longest an item waits for others to fill its batch (default: not at all).
    pub linger: Duration,
}

/// The default most bytes in one sample: 47.5 KiB, which fits one zenoh batch on every
/// TCP link we know of, with 512 bytes for the sample's headers: the attachment (at most 88
/// bytes) and the key, which may travel in each sample (a key of a few hundred bytes fits).
///
/// A sample larger than the link's batch is fragmented: it takes two batches, one of them
/// part-empty, and the pull receives it in pieces. Zenoh sizes a TCP link's batch as the
/// largest multiple of half the socket's MSS under 64 KiB. On loopback the accepting side's
/// MSS is 32 768, which makes 48 KiB; on Ethernet (MSS 1448) it is 63.6 KiB, and with jumbo
/// frames (MSS 8948) 61.2 KiB. `shmchan-bench bridge` measures the difference (docs/bridge.md).
pub const DEFAULT_BATCH_BYTES: usize = 48 * 1024 - 512;

impl Default for Batching {
    fn default() -> Batching {
        Batching {
            batch_bytes: DEFAULT_BATCH_BYTES,
            linger: Duration::ZERO,
        }
    }
}

/// Bytes from the peer as text for a message: lossy UTF-8, control characters escaped,
/// at most [`wire::REASON_MAX`] bytes (cut at a character).
pub(crate) fn printable(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    let mut out = String::new();
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        if out.len() + piece.len() > wire::REASON_MAX {
            break;
        }
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn zenoh_messages_lose_their_source_paths() {
        let m = "Unable to connect to tcp/1.2.3.4:7447 at \
                 /root/.cargo/registry/src/zenoh-1.10.2/src/net/runtime/orchestrator.rs:1234.";
        assert_eq!(
            super::without_source_paths(m),
            "Unable to connect to tcp/1.2.3.4:7447"
        );
        assert_eq!(super::without_source_paths("plain words"), "plain words");
    }
}
