//! `push`: reads a local channel and publishes its stream on a zenoh key.

use std::time::Duration;

use shmchan::{ChannelIo, ErrorKind, Options, RawChannel, RawReader};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Sample, SampleKind};

use crate::wire::{Frame, Kind};
use crate::{pull_token, push_token, session, Batching, BridgeError, Link, Samples};

/// A stream id no earlier push run used: the clock and the pid, mixed.
fn stream_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Opens `name` with whatever element type and schema tag it has.
fn open(name: &str) -> Result<RawChannel, BridgeError> {
    let info = ChannelIo::inspect(name).map_err(BridgeError::Setup)?;
    let options = match info.schema {
        Some(tag) => Options::new().schema(tag),
        None => Options::new(),
    };
    RawChannel::open_any(name, options).map_err(BridgeError::Setup)
}

/// Forwards channel `name` to `link.key` until its writer ends the stream; returns how many
/// items went out.
///
/// It waits for a pull (its liveliness token) before it reads anything, so that nothing is
/// published to nobody. If the pull vanishes mid-stream, the push lets go of the local
/// reader end without closing the channel (`leave`), as on every other failure: the local
/// writer learns that its reader is gone, and a restarted push resumes at the first item
/// not consumed. What was published but not delivered is lost, and the far side says so
/// (see `pull`).
pub async fn push(name: &str, link: &Link, batching: Batching) -> Result<u64, BridgeError> {
    crate::check_key(&link.key)?;
    let chan = open(name)?;
    let mut r = chan.reader().map_err(BridgeError::Setup)?;
    match forward(name, &chan, &mut r, link, batching).await {
        // The stream ended and went out: closing the reader end finishes the channel.
        Ok(n) => Ok(n),
        Err(e) => {
            // Whatever failed, the local channel is not finished: let go of the reader end
            // without closing it, so that the writer learns its reader is gone and a
            // restarted push resumes at the first item not consumed.
            r.leave();
            Err(e)
        }
    }
}

/// The push's side of the link: its zenoh session and what it declared on it. Dropped in
/// field order: the publisher first, the session last.
struct Wire {
    publisher: Publisher<'static>,
    /// The pull's confirmations that a stream's end reached its channel.
    confirmations: Samples,
    /// The pull's refusals of the stream.
    refusals: Samples,
    /// The pulls' liveliness tokens (with history: one there before us counts).
    pulls: Samples,
    _token: LivelinessToken,
    session: zenoh::Session,
}

impl Wire {
    /// Opens the session and declares the push's token, its subscribers and its publisher.
    async fn declare(link: &Link) -> Result<Wire, BridgeError> {
        let session = session(link).await?;
        let token = crate::token(&session, push_token(&link.key)).await?;
        let pulls = crate::watch(&session, pull_token(&link.key)).await?;
        let refusals = crate::subscribe(&session, crate::refusal_key(&link.key)).await?;
        let confirmations = crate::subscribe(&session, crate::done_key(&link.key)).await?;
        let publisher = session
            .declare_publisher(link.key.clone())
            .congestion_control(CongestionControl::Block)
            .await
            .map_err(BridgeError::zenoh)?;
        Ok(Wire {
            publisher,
            confirmations,
            refusals,
            pulls,
            _token: token,
            session,
        })
    }

    /// Waits until a pull is there (its liveliness token).
    async fn pull_comes(&self) -> Result<(), BridgeError> {
        loop {
            let s = self.pulls.recv_async().await.map_err(BridgeError::zenoh)?;
            if s.kind() == SampleKind::Put {
                return Ok(());
            }
        }
    }

    /// Publishes one sample: `frame` as its attachment, `payload` as its data.
    async fn publish(&self, frame: &Frame, payload: Vec<u8>) -> Result<(), BridgeError> {
        self.publisher
            .put(payload)
            .attachment(frame.encode())
            .await
            .map_err(BridgeError::zenoh)
    }

    /// Undeclares the publisher and closes the session.
    async fn close(self) -> Result<(), BridgeError> {
        drop(self.publisher);
        self.session.close().await.map_err(BridgeError::zenoh)
    }
}

/// The error for the pull's refusal `s` of the stream.
fn refused(s: Sample) -> BridgeError {
    BridgeError::Stream(format!(
        "the pull refused the stream: {}",
        String::from_utf8_lossy(&s.payload().to_bytes())
    ))
}

/// Waits for a pull, streams the channel to it, and sends the stream's end; done once the
/// pull confirms that the end reached its channel. Returns how many items went out.
async fn forward(
    name: &str,
    chan: &RawChannel,
    r: &mut RawReader,
    link: &Link,
    batching: Batching,
) -> Result<u64, BridgeError> {
    let elem = chan.element_type();
    let wire = Wire::declare(link).await?;
    println!("ready");
    eprintln!("push: {name} ({elem}) to {}: waiting for a pull", link.key);
    wire.pull_comes().await?;
    let mut frame = Frame {
        kind: Kind::Data,
        elem,
        schema: chan.schema().map(str::to_string),
        stream: stream_id(),
        seq: 0,
        offset: 0,
    };
    eprintln!("push: a pull is there; stream {:016x}", frame.stream);
    // At most half the ring, so that a batch never waits for a full ring (the writer would
    // stall on every batch).
    let batch = (batching.batch_bytes / elem.size()).clamp(1, (chan.capacity() / 2).max(1));
    let (kind, payload) = batches(&wire, r, &mut frame, batch, batching.linger, &link.key).await?;
    frame.kind = kind;
    wire.publish(&frame, payload).await?;
    confirmed(&wire, &frame, link).await?;
    wire.close().await?;
    Ok(frame.offset)
}

/// Publishes the channel's items in samples of at most `batch` items (each waiting at most
/// `wait` for a whole one), advancing `frame`, until the local writer ends the stream;
/// returns that end (see [`end_of`]). Fails if the pull for `key` goes away or refuses the
/// stream.
async fn batches(
    wire: &Wire,
    r: &mut RawReader,
    frame: &mut Frame,
    batch: usize,
    wait: Duration,
    key: &str,
) -> Result<(Kind, Vec<u8>), BridgeError> {
    let size = frame.elem.size();
    loop {
        let got = tokio::select! {
            biased;
            s = wire.pulls.recv_async() => {
                let s = s.map_err(BridgeError::zenoh)?;
                if s.kind() == SampleKind::Delete {
                    return Err(BridgeError::Stream(format!(
                        "the pull for {key} went away after {} items; the local reader end \
                         was left for a restarted push",
                        frame.offset
                    )));
                }
                continue;
            }
            s = wire.refusals.recv_async() => {
                return Err(refused(s.map_err(BridgeError::zenoh)?));
            }
            got = r.peek_some() => got.map(|v| v.elements()),
        };
        match got {
            Ok(avail) => {
                let k = linger(r, avail, batch, wait).await?;
                let view = r.try_peek_some()?;
                let k = k.min(view.elements());
                wire.publish(frame, view[..k * size].to_vec()).await?;
                view.consume(k);
                frame.seq += 1;
                frame.offset += k as u64;
            }
            Err(e) => return end_of(e, r.name()),
        }
    }
}

/// The last sample for the local reader's error `e` (on channel `name`): a close, or an
/// abort with its reason (the writer's, or that it died); any other error fails the push.
fn end_of(e: shmchan::Error, name: &str) -> Result<(Kind, Vec<u8>), BridgeError> {
    match e.kind() {
        ErrorKind::Closed => Ok((Kind::Close, Vec::new())),
        ErrorKind::Aborted => Ok((
            Kind::Abort,
            e.reason().unwrap_or_default().as_bytes().to_vec(),
        )),
        ErrorKind::PeerGone => Ok((
            Kind::Abort,
            format!("the writer of {name} on the push side died").into_bytes(),
        )),
        _ => Err(e.into()),
    }
}

/// Waits for the pull to confirm that the end of the stream (`frame`, the last sample)
/// reached its channel. That may take long (the far reader drains what is in flight first),
/// so it waits as long as the pull lives; the pull's going without a confirmation, or a
/// refusal, is an error.
async fn confirmed(wire: &Wire, frame: &Frame, link: &Link) -> Result<(), BridgeError> {
    let want = crate::done_payload(frame.stream, frame.offset);
    let confirms = |s: &Sample| s.payload().to_bytes().as_ref() == want;
    loop {
        tokio::select! {
            biased;
            s = wire.refusals.recv_async() => return Err(refused(s.map_err(BridgeError::zenoh)?)),
            s = wire.confirmations.recv_async() => {
                if confirms(&s.map_err(BridgeError::zenoh)?) {
                    return Ok(());
                }
            }
            s = wire.pulls.recv_async() => {
                if s.map_err(BridgeError::zenoh)?.kind() != SampleKind::Delete {
                    continue;
                }
                // What the pull sent just before it went may be queued still.
                if let Ok(Some(s)) = wire.refusals.try_recv() {
                    return Err(refused(s));
                }
                if std::iter::from_fn(|| wire.confirmations.try_recv().ok().flatten())
                    .any(|s| confirms(&s))
                {
                    return Ok(());
                }
                return Err(BridgeError::Stream(format!(
                    "the pull for {} went away without confirming that the end of the stream \
                     (after {} items) reached its channel: the far channel may have been \
                     aborted",
                    link.key, frame.offset
                )));
            }
        }
    }
}

/// With `avail` items there: if fewer than a batch, waits (at most `linger`) for a whole
/// batch, then returns how many to send now (at most a batch).
async fn linger(
    r: &mut RawReader,
    avail: usize,
    batch: usize,
    linger: Duration,
) -> Result<usize, BridgeError> {
    if avail >= batch || linger.is_zero() {
        return Ok(batch.min(avail));
    }
    r.set_timeout(Some(linger));
    let waited = r.peek(batch).await.map(|v| v.elements());
    r.set_timeout(None);
    match waited {
        Ok(n) => Ok(n),
        // Not a whole batch in time, or the stream ended: send what is there (the next
        // round reports the end).
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::TimedOut | ErrorKind::Closed | ErrorKind::Aborted | ErrorKind::PeerGone
            ) =>
        {
            Ok(batch)
        }
        Err(e) => Err(e.into()),
    }
}
