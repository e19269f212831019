//! `push`: reads a local channel and publishes its stream on a zenoh key.

use std::time::Duration;

use shmchan::{ChannelIo, ErrorKind, Options, RawChannel, RawReader};
use zenoh::qos::CongestionControl;
use zenoh::sample::SampleKind;

use crate::wire::{Frame, Kind};
use crate::{pull_token, push_token, session, Batching, BridgeError, Link};

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

async fn forward(
    name: &str,
    chan: &RawChannel,
    r: &mut RawReader,
    link: &Link,
    batching: Batching,
) -> Result<u64, BridgeError> {
    let elem = chan.element_type();
    let size = elem.size();
    // At most half the ring, so that a batch never waits for a full ring (the writer would
    // stall on every batch).
    let batch = (batching.batch_bytes / size).clamp(1, (chan.capacity() / 2).max(1));
    let session = session(link).await?;
    let _token = session
        .liveliness()
        .declare_token(push_token(&link.key))
        .await
        .map_err(BridgeError::zenoh)?;
    let pulls = session
        .liveliness()
        .declare_subscriber(pull_token(&link.key))
        .history(true)
        .await
        .map_err(BridgeError::zenoh)?;
    let refusals = session
        .declare_subscriber(crate::refusal_key(&link.key))
        .await
        .map_err(BridgeError::zenoh)?;
    let confirmations = session
        .declare_subscriber(crate::done_key(&link.key))
        .await
        .map_err(BridgeError::zenoh)?;
    let refused = |s: zenoh::sample::Sample| {
        BridgeError::Stream(format!(
            "the pull refused the stream: {}",
            String::from_utf8_lossy(&s.payload().to_bytes())
        ))
    };
    let publisher = session
        .declare_publisher(link.key.clone())
        .congestion_control(CongestionControl::Block)
        .await
        .map_err(BridgeError::zenoh)?;
    println!("ready");
    eprintln!("push: {name} ({elem}) to {}: waiting for a pull", link.key);
    loop {
        let s = pulls.recv_async().await.map_err(BridgeError::zenoh)?;
        if s.kind() == SampleKind::Put {
            break;
        }
    }
    let mut frame = Frame {
        kind: Kind::Data,
        elem,
        schema: chan.schema().map(str::to_string),
        stream: stream_id(),
        seq: 0,
        offset: 0,
    };
    eprintln!("push: a pull is there; stream {:016x}", frame.stream);
    let send = |frame: &Frame, payload: Vec<u8>| {
        std::future::IntoFuture::into_future(publisher.put(payload).attachment(frame.encode()))
    };
    loop {
        let got = tokio::select! {
            biased;
            s = pulls.recv_async() => {
                let s = s.map_err(BridgeError::zenoh)?;
                if s.kind() == SampleKind::Delete {
                    return Err(BridgeError::Stream(format!(
                        "the pull for {} went away after {} items; the local reader end was \
                         left for a restarted push",
                        link.key, frame.offset
                    )));
                }
                continue;
            }
            s = refusals.recv_async() => {
                return Err(refused(s.map_err(BridgeError::zenoh)?));
            }
            got = r.peek_some() => got.map(|v| v.elements()),
        };
        let (kind, payload) = match got {
            Ok(avail) => {
                let k = linger(r, avail, batch, batching.linger).await?;
                let view = r.try_peek_some()?;
                let k = k.min(view.elements());
                let payload = view[..k * size].to_vec();
                send(&frame, payload).await.map_err(BridgeError::zenoh)?;
                view.consume(k);
                frame.seq += 1;
                frame.offset += k as u64;
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Closed => (Kind::Close, Vec::new()),
            Err(e) if e.kind() == ErrorKind::Aborted => (
                Kind::Abort,
                e.reason().unwrap_or_default().as_bytes().to_vec(),
            ),
            Err(e) if e.kind() == ErrorKind::PeerGone => (
                Kind::Abort,
                format!("the writer of {name} on the push side died").into_bytes(),
            ),
            Err(e) => return Err(e.into()),
        };
        frame.kind = kind;
        send(&frame, payload).await.map_err(BridgeError::zenoh)?;
        break;
    }
    // Success only once the pull confirms that the end reached its channel. That may take
    // long (the far reader drains what is in flight first), so we wait as long as the pull
    // lives; its going without a confirmation is an error.
    let want = crate::done_payload(frame.stream, frame.offset);
    let confirmed = |s: &zenoh::sample::Sample| s.payload().to_bytes().as_ref() == want;
    loop {
        tokio::select! {
            biased;
            s = refusals.recv_async() => return Err(refused(s.map_err(BridgeError::zenoh)?)),
            s = confirmations.recv_async() => {
                if confirmed(&s.map_err(BridgeError::zenoh)?) {
                    break;
                }
            }
            s = pulls.recv_async() => {
                if s.map_err(BridgeError::zenoh)?.kind() != SampleKind::Delete {
                    continue;
                }
                // What the pull sent just before it went may be queued still.
                if let Ok(Some(s)) = refusals.try_recv() {
                    return Err(refused(s));
                }
                if std::iter::from_fn(|| confirmations.try_recv().ok().flatten())
                    .any(|s| confirmed(&s))
                {
                    break;
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
    drop(publisher);
    session.close().await.map_err(BridgeError::zenoh)?;
    Ok(frame.offset)
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
