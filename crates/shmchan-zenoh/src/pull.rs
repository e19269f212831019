//! `pull`: subscribes to a zenoh key and writes the stream into a local channel.

use shmchan::{ErrorKind, Options, RawChannel, RawWriter};
use zenoh::bytes::ZBytes;
use zenoh::sample::{Sample, SampleKind};

use crate::wire::{Frame, Kind};
use crate::{pull_token, push_token, session, BridgeError, Link};

/// A stream's end as passed on: how, and which stream after how many items.
struct End {
    ended: Ended,
    stream: u64,
    items: u64,
}

/// How the stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The far writer closed; everything arrived.
    Closed,
    /// The far writer aborted with this reason; everything before it arrived.
    Aborted(String),
}

/// The stream under way: its local channel and writer, and what comes next.
///
/// Dropped before its end was passed on (any error on the way out of `pull`), it aborts the
/// local channel: a writer end that is merely dropped would *close* it, and the local reader
/// would take a cut-off stream for a complete one.
struct Stream {
    _chan: RawChannel,
    /// `None` once the end was passed on.
    w: Option<RawWriter>,
    id: u64,
    next_seq: u64,
    offset: u64,
    /// The element type and schema tag every sample of the stream must carry.
    elem: shmchan::ElementType,
    schema: Option<String>,
}

impl Stream {
    fn writer(&mut self) -> Result<&mut RawWriter, BridgeError> {
        self.w
            .as_mut()
            .ok_or_else(|| BridgeError::Stream("the stream was over".into()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(w) = self.w.take() {
            w.abort("the pull bridge stopped before the end of the stream");
        }
    }
}

/// Receives the stream on `link.key` and writes it into channel `into`, created (with the
/// type the stream announces, and `capacity`) if it does not exist.
///
/// Ends with the stream: `Ok(Closed)` or `Ok(Aborted)` once that was passed on. Anything
/// else that ends it — a gap in the sequence numbers, a push that restarted mid-stream, a
/// push that vanished, a sample that is not a shmchan frame — aborts the local channel with
/// a reason that says so, and is an error.
pub async fn pull(into: &str, link: &Link, capacity: Option<usize>) -> Result<Ended, BridgeError> {
    crate::check_key(&link.key)?;
    let session = session(link).await?;
    let sub = session
        .declare_subscriber(link.key.clone())
        .await
        .map_err(BridgeError::zenoh)?;
    let pushes = session
        .liveliness()
        .declare_subscriber(push_token(&link.key))
        .history(true)
        .await
        .map_err(BridgeError::zenoh)?;
    // Declared last: a push publishes once it sees this token, by when the subscriber above
    // is declared.
    let token = session
        .liveliness()
        .declare_token(pull_token(&link.key))
        .await
        .map_err(BridgeError::zenoh)?;
    println!("ready");
    eprintln!("pull: {} into {into}: waiting for a push", link.key);
    let mut stream: Option<Stream> = None;
    let refusal = crate::refusal_key(&link.key);
    let end = loop {
        let sample = tokio::select! {
            biased;
            s = sub.recv_async() => s.map_err(BridgeError::zenoh)?,
            s = pushes.recv_async() => {
                let s = s.map_err(BridgeError::zenoh)?;
                if s.kind() == SampleKind::Delete {
                    // The push went: samples it sent before may still be queued.
                    if let Some(end) = drain(&sub, &mut stream, into, capacity).await? {
                        break end;
                    }
                    if stream.is_some() {
                        return Err(fail(&mut stream, format!(
                            "the push for {} went away mid-stream; what it sent after the \
                             last item received was lost",
                            link.key
                        )));
                    }
                    // It went before it sent anything: wait for a new one.
                }
                continue;
            }
        };
        match handle(&sample, &mut stream, into, capacity).await {
            Ok(Some(end)) => break end,
            Ok(None) => {}
            Err(e @ BridgeError::Setup(_)) => {
                // The local channel refuses this stream (its type or schema tag differs, or
                // its writer end is held): tell the push, which would otherwise take our
                // going for the end of a delivered stream.
                // No more data: a full queue must not hold up the liveliness news.
                drop(sub);
                let _ = last_word(&session, refusal.clone(), e.to_string().into(), &pushes).await;
                drop(token);
                let _ = session.close().await;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    };
    // Tell the push that the end reached the local channel: it exits with success only then.
    let done = crate::done_payload(end.stream, end.items).to_vec();
    last_word(&session, crate::done_key(&link.key), done, &pushes).await?;
    drop(token);
    session.close().await.map_err(BridgeError::zenoh)?;
    Ok(end.ended)
}

/// Puts our last word for the push (a refusal, a confirmation) on `key`, then stays until
/// the push has gone (it goes when told), so that our going cannot overtake the word;
/// bounded by `FAREWELL`, for a push that is stuck or gone already.
async fn last_word(
    session: &zenoh::Session,
    key: String,
    payload: Vec<u8>,
    pushes: &zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<Sample>>,
) -> Result<(), BridgeError> {
    let sent = session
        .put(key, payload)
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .await
        .map_err(BridgeError::zenoh);
    let _ = tokio::time::timeout(crate::FAREWELL, async {
        while let Ok(s) = pushes.recv_async().await {
            if s.kind() == SampleKind::Delete {
                return;
            }
        }
    })
    .await;
    sent
}

/// Handles the samples already queued after the push vanished; `Some` if one of them ended
/// the stream properly.
async fn drain(
    sub: &zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<Sample>>,
    stream: &mut Option<Stream>,
    into: &str,
    capacity: Option<usize>,
) -> Result<Option<End>, BridgeError> {
    while let Ok(Some(sample)) = sub.try_recv() {
        if let Some(end) = handle(&sample, stream, into, capacity).await? {
            return Ok(Some(end));
        }
    }
    Ok(None)
}

/// Aborts the local channel (if there is one) with `reason`; the error to return.
fn fail(stream: &mut Option<Stream>, reason: String) -> BridgeError {
    if let Some(w) = stream.take().and_then(|mut s| s.w.take()) {
        w.abort(&reason);
    }
    eprintln!("pull: {reason}");
    BridgeError::Stream(reason)
}

/// One sample: checked, then passed on. `Some` once the stream ended.
async fn handle(
    sample: &Sample,
    stream: &mut Option<Stream>,
    into: &str,
    capacity: Option<usize>,
) -> Result<Option<End>, BridgeError> {
    let frame = match sample.attachment().map(|a| Frame::decode(&a.to_bytes())) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            return Err(fail(
                stream,
                format!("a sample that is not a shmchan frame: {e}"),
            ))
        }
        None => {
            return Err(fail(
                stream,
                "a sample without a shmchan frame header".into(),
            ))
        }
    };
    if stream.is_none() {
        if frame.seq != 0 || frame.offset != 0 {
            let s = start(into, &frame, capacity)?;
            *stream = Some(s);
            return Err(fail(
                stream,
                format!(
                    "this pull joined stream {:016x} at sample {} (item {}): what came before \
                     was not received",
                    frame.stream, frame.seq, frame.offset
                ),
            ));
        }
        *stream = Some(start(into, &frame, capacity)?);
        // For whoever waits for the local channel to exist (the tests do).
        println!("started");
        eprintln!("pull: stream {:016x} ({})", frame.stream, frame.elem);
    }
    let Some(s) = stream.as_mut() else {
        return Err(BridgeError::Stream("no stream".into()));
    };
    if frame.elem != s.elem || frame.schema != s.schema {
        let (elem, schema) = (s.elem, s.schema.clone());
        return Err(fail(
            stream,
            format!(
                "stream {:016x} changed its type mid-way: {} {:?} after {elem} {schema:?}",
                frame.stream, frame.elem, frame.schema
            ),
        ));
    }
    if frame.stream != s.id {
        let id = s.id;
        return Err(fail(
            stream,
            format!(
                "the push restarted (stream {:016x} after {id:016x}); items it had read but \
                 not delivered are lost",
                frame.stream
            ),
        ));
    }
    if frame.seq != s.next_seq || frame.offset != s.offset {
        let (want, at) = (s.next_seq, s.offset);
        return Err(fail(
            stream,
            format!(
                "gap in stream {:016x}: expected sample {want} at item {at}, got sample {} at \
                 item {}",
                frame.stream, frame.seq, frame.offset
            ),
        ));
    }
    s.next_seq += 1;
    let payload = sample.payload();
    match frame.kind {
        Kind::Data => {
            let size = s.elem.size();
            if payload.len() % size != 0 {
                return Err(fail(
                    stream,
                    format!(
                        "a sample of {} bytes is not a whole number of {size}-byte items",
                        payload.len()
                    ),
                ));
            }
            let Some(offset) = s.offset.checked_add((payload.len() / size) as u64) else {
                return Err(fail(stream, "the stream's item count overflowed".into()));
            };
            put_all(s, payload).await?;
            s.offset = offset;
            Ok(None)
        }
        Kind::Close | Kind::Abort => {
            let ended = match frame.kind {
                Kind::Close => Ended::Closed,
                _ => Ended::Aborted(String::from_utf8_lossy(&payload.to_bytes()).into_owned()),
            };
            if let Some(w) = stream.take().and_then(|mut s| s.w.take()) {
                match &ended {
                    Ended::Closed => w.close(),
                    Ended::Aborted(reason) => w.abort(reason),
                }
            }
            Ok(Some(End {
                ended,
                stream: frame.stream,
                items: frame.offset,
            }))
        }
    }
}

/// Writes `payload` (whole items, in however many slices zenoh delivered it: a sample
/// larger than a zenoh batch arrives in fragments) into the local channel, each slice
/// straight from zenoh's buffers into free slots, without first copying it into one piece.
///
/// It takes the slots that are free at each turn, however few, and waits only when none
/// are: a reservation of a fixed size could wait for room that a reader blocked in a
/// `get` of more items than are there never makes. A local reader that dies is waited for
/// (a restarted one resumes where it stopped), as any writer of a channel would.
async fn put_all(s: &mut Stream, payload: &ZBytes) -> Result<(), BridgeError> {
    let size = s.elem.size();
    let w = s.writer()?;
    let mut slices = payload.slices();
    let mut piece: &[u8] = &[];
    let mut left = payload.len() / size;
    while left > 0 {
        let mut slots = w.try_reserve(left)?;
        if slots.elements() == 0 {
            // Nothing free: wait for one slot (reserved and given back unwritten).
            match w.reserve(1).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::PeerGone => {
                    eprintln!("pull: the local reader died; waiting for a new one");
                }
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        let mut to: &mut [u8] = &mut slots;
        while !to.is_empty() {
            if piece.is_empty() {
                // The slices hold `payload.len()` bytes, of which `left × size` are unwritten.
                piece = slices.next().ok_or_else(|| {
                    BridgeError::Stream("a sample shorter than its length".into())
                })?;
                continue;
            }
            let k = piece.len().min(to.len());
            let (head, rest) = std::mem::take(&mut to).split_at_mut(k);
            head.copy_from_slice(&piece[..k]);
            (to, piece) = (rest, &piece[k..]);
        }
        left -= slots.commit_all();
    }
    Ok(())
}

/// Opens (or creates) the local channel for the stream `frame` announces, and claims its
/// writer end.
fn start(into: &str, frame: &Frame, capacity: Option<usize>) -> Result<Stream, BridgeError> {
    // A channel the pull creates orders its wake protocol with a fence on each side
    // (`Barrier::Fence`), not with membarrier(2) when a side goes to sleep. Both of its
    // ends sleep at nearly every sample (the network is slower than the ring), and each
    // membarrier interrupts every CPU running a process registered for it (any process
    // with a membarrier channel open, such as a push and its writer on the same host). In
    // `shmchan-bench bridge` the fence made 64 KiB batches 14–32% faster in 5 of 5
    // alternating pairs. It costs ~20 ns per put or get, which is nothing at the rate a
    // network delivers. A channel that exists keeps its own choice.
    let mut options = Options::new().barrier(shmchan::Barrier::Fence);
    if let Some(tag) = &frame.schema {
        options = options.schema(tag.clone());
    }
    if let Some(c) = capacity {
        options = options.capacity(c);
    }
    let chan = RawChannel::create_or_open(into, frame.elem, options).map_err(BridgeError::Setup)?;
    let w = chan.writer().map_err(BridgeError::Setup)?;
    // A channel that already holds items a writer committed carries an earlier stream
    // (a pull that died mid-way, say): appending a new one would leave a gap that its reader
    // could not see. Refused loudly instead.
    let committed = shmchan::ChannelIo::inspect(into)
        .map(|i| i.tail)
        .unwrap_or(0);
    if committed > 0 {
        w.abort("an earlier stream into this channel broke off; a new stream was refused");
        return Err(BridgeError::Stream(format!(
            "channel {into} already holds {committed} items of an earlier stream (its pull \
             died?): it was aborted, and a new stream needs a new channel"
        )));
    }
    Ok(Stream {
        w: Some(w),
        id: frame.stream,
        next_seq: frame.seq,
        offset: frame.offset,
        elem: frame.elem,
        schema: frame.schema.clone(),
        _chan: chan,
    })
}
