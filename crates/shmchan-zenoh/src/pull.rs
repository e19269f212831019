//! `pull`: subscribes to a zenoh key and writes the stream into a local channel.

use shmchan::{ErrorKind, Options, RawChannel, RawWriter};
use zenoh::bytes::ZBytes;
use zenoh::liveliness::LivelinessToken;
use zenoh::sample::{Sample, SampleKind};

use crate::wire::{Frame, Kind};
use crate::{pull_token, push_token, session, BridgeError, Link, Samples};

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
/// type the stream announces, and `capacity`) if it does not exist. An existing channel
/// must have that type, schema tag and capacity (as a create rounds it), else the stream
/// is refused.
///
/// Ends with the stream: `Ok(Closed)` or `Ok(Aborted)` once that was passed on. Anything
/// else that ends it — a gap in the sequence numbers, a push that restarted mid-stream, a
/// push that vanished, a sample that is not a shmchan frame — aborts the local channel with
/// a reason that says so, and is an error.
pub async fn pull(into: &str, link: &Link, capacity: Option<usize>) -> Result<Ended, BridgeError> {
    crate::check_key(&link.key)?;
    let wire = Wire::declare(link).await?;
    println!("ready");
    eprintln!("pull: {} into {into}: waiting for a push", link.key);
    match receive(&wire, into, capacity, &link.key).await? {
        Received::Ended(end) => wire.confirm(end, &link.key).await,
        Received::Refused(e) => {
            wire.refuse(&e, &link.key).await;
            Err(e)
        }
    }
}

/// The pull's side of the link: its zenoh session and what it declared on it. Dropped in
/// field order: the token first, the session last.
struct Wire {
    token: LivelinessToken,
    /// The pushes' liveliness tokens (with history: one there before us counts).
    pushes: Samples,
    /// The stream's samples.
    sub: Samples,
    session: zenoh::Session,
}

impl Wire {
    /// Opens the session and declares the pull's subscribers and its token.
    async fn declare(link: &Link) -> Result<Wire, BridgeError> {
        let session = session(link).await?;
        let sub = crate::subscribe(&session, link.key.clone()).await?;
        let pushes = crate::watch(&session, push_token(&link.key)).await?;
        // Declared last: a push publishes once it sees this token, by when the subscriber
        // above is declared.
        let token = crate::token(&session, pull_token(&link.key)).await?;
        Ok(Wire {
            token,
            pushes,
            sub,
            session,
        })
    }

    /// Tells the push on `key` that the end of the stream reached the local channel (it
    /// exits with success only then), and closes the session.
    async fn confirm(self, end: End, key: &str) -> Result<Ended, BridgeError> {
        let done = crate::done_payload(end.stream, end.items).to_vec();
        last_word(&self.session, crate::done_key(key), done, &self.pushes).await?;
        drop(self.token);
        self.session.close().await.map_err(BridgeError::zenoh)?;
        Ok(end.ended)
    }

    /// Tells the push on `key` that the local channel refuses its stream (`e`: its type or
    /// schema tag differs, or its writer end is held), which it would otherwise take our
    /// going for the end of a delivered stream; then closes the session.
    async fn refuse(self, e: &BridgeError, key: &str) {
        let Wire {
            token,
            pushes,
            sub,
            session,
        } = self;
        // No more data: a full queue must not hold up the liveliness news.
        drop(sub);
        let _ = last_word(
            &session,
            crate::refusal_key(key),
            e.to_string().into(),
            &pushes,
        )
        .await;
        drop(token);
        let _ = session.close().await;
    }
}

/// How receiving ended, if not by an error.
enum Received {
    /// The stream ended, and its end was passed on to the local channel.
    Ended(End),
    /// The local channel refuses the stream (a [`BridgeError::Setup`]).
    Refused(BridgeError),
}

/// Receives samples and passes them on until the stream ends, the local channel refuses it,
/// or the push on `key` goes away mid-stream.
async fn receive(
    wire: &Wire,
    into: &str,
    capacity: Option<usize>,
    key: &str,
) -> Result<Received, BridgeError> {
    let mut stream: Option<Stream> = None;
    loop {
        let sample = tokio::select! {
            biased;
            s = wire.sub.recv_async() => s.map_err(BridgeError::zenoh)?,
            s = wire.pushes.recv_async() => {
                if s.map_err(BridgeError::zenoh)?.kind() == SampleKind::Delete {
                    if let Some(end) = push_gone(&wire.sub, &mut stream, into, capacity, key).await? {
                        return Ok(Received::Ended(end));
                    }
                }
                continue;
            }
        };
        match handle(&sample, &mut stream, into, capacity).await {
            Ok(Some(end)) => return Ok(Received::Ended(end)),
            Ok(None) => {}
            Err(e @ BridgeError::Setup(_)) => return Ok(Received::Refused(e)),
            Err(e) => return Err(e),
        }
    }
}

/// The push on `key` went: the samples it sent before may still be queued, and may end the
/// stream (`Some`). If they do not, a stream under way is cut off: an error. A push that
/// went before it sent anything is no error: a new one is waited for (`None`).
async fn push_gone(
    sub: &Samples,
    stream: &mut Option<Stream>,
    into: &str,
    capacity: Option<usize>,
    key: &str,
) -> Result<Option<End>, BridgeError> {
    while let Ok(Some(sample)) = sub.try_recv() {
        if let Some(end) = handle(&sample, stream, into, capacity).await? {
            return Ok(Some(end));
        }
    }
    if stream.is_some() {
        return Err(fail(
            stream,
            format!(
                "the push for {key} went away mid-stream; what it sent after the last item \
                 received was lost"
            ),
        ));
    }
    Ok(None)
}

/// Puts our last word for the push (a refusal, a confirmation) on `key`, then stays until
/// the push has gone (it goes when told), so that our going cannot overtake the word;
/// bounded by `FAREWELL`, for a push that is stuck or gone already.
async fn last_word(
    session: &zenoh::Session,
    key: String,
    payload: Vec<u8>,
    pushes: &Samples,
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
    let frame = frame_of(sample, stream)?;
    if stream.is_none() {
        join(&frame, stream, into, capacity)?;
    }
    follows(&frame, stream)?;
    let payload = sample.payload();
    match frame.kind {
        Kind::Data => {
            data(stream, payload).await?;
            Ok(None)
        }
        Kind::Close | Kind::Abort => Ok(Some(end(&frame, stream, payload))),
    }
}

/// The shmchan frame `sample` carries as its attachment; a sample without one fails the
/// stream.
fn frame_of(sample: &Sample, stream: &mut Option<Stream>) -> Result<Frame, BridgeError> {
    match sample.attachment().map(|a| Frame::decode(&a.to_bytes())) {
        Some(Ok(f)) => Ok(f),
        Some(Err(e)) => Err(fail(
            stream,
            format!("a sample that is not a shmchan frame: {e}"),
        )),
        None => Err(fail(
            stream,
            "a sample without a shmchan frame header".into(),
        )),
    }
}

/// The first sample this pull receives: opens the local channel for its stream (see
/// [`start`]). A stream joined after its first sample fails (what came before is lost).
fn join(
    frame: &Frame,
    stream: &mut Option<Stream>,
    into: &str,
    capacity: Option<usize>,
) -> Result<(), BridgeError> {
    *stream = Some(start(into, frame, capacity)?);
    if frame.seq != 0 || frame.offset != 0 {
        return Err(fail(
            stream,
            format!(
                "this pull joined stream {:016x} at sample {} (item {}): what came before \
                 was not received",
                frame.stream, frame.seq, frame.offset
            ),
        ));
    }
    // For whoever waits for the local channel to exist (the tests do).
    println!("started");
    eprintln!("pull: stream {:016x} ({})", frame.stream, frame.elem);
    Ok(())
}

/// Checks that `frame` is the next sample of the stream under way: the same type and schema
/// tag, the same push, the next sequence number at the next item. Anything else fails the
/// stream.
fn follows(frame: &Frame, stream: &mut Option<Stream>) -> Result<(), BridgeError> {
    let Some(s) = stream.as_mut() else {
        return Err(BridgeError::Stream("no stream".into()));
    };
    let wrong = if frame.elem != s.elem || frame.schema != s.schema {
        format!(
            "stream {:016x} changed its type mid-way: {} {:?} after {} {:?}",
            frame.stream, frame.elem, frame.schema, s.elem, s.schema
        )
    } else if frame.stream != s.id {
        format!(
            "the push restarted (stream {:016x} after {:016x}); items it had read but not \
             delivered are lost",
            frame.stream, s.id
        )
    } else if frame.seq != s.next_seq || frame.offset != s.offset {
        format!(
            "gap in stream {:016x}: expected sample {} at item {}, got sample {} at item {}",
            frame.stream, s.next_seq, s.offset, frame.seq, frame.offset
        )
    } else {
        s.next_seq += 1;
        return Ok(());
    };
    Err(fail(stream, wrong))
}

/// A data sample: its items go into the local channel.
async fn data(stream: &mut Option<Stream>, payload: &ZBytes) -> Result<(), BridgeError> {
    let Some(s) = stream.as_mut() else {
        return Err(BridgeError::Stream("no stream".into()));
    };
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
    Ok(())
}

/// A close or an abort: passed on to the local channel, which ends the stream there.
fn end(frame: &Frame, stream: &mut Option<Stream>, payload: &ZBytes) -> End {
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
    End {
        ended,
        stream: frame.stream,
        items: frame.offset,
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
