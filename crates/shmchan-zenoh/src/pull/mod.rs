//! `pull`: answers a push's hello, writes the stream into a local channel (the far one), and
//! acknowledges what the channel holds, so that the push may consume it on its side.
//!
//! `link` holds the zenoh side (the declarations, and the callback that queues samples
//! without blocking zenoh); `accept` the hello and the far channel it opens or creates;
//! this module the loop and the samples.

use std::sync::atomic::Ordering;
use std::time::Duration;

use shmchan::{ChannelIo, ErrorKind, Origin, RawChannel, RawWriter};
use zenoh::bytes::ZBytes;
use zenoh::query::Query;
use zenoh::sample::SampleKind;

use crate::wire::{Ack, AckKind, Element, Frame, Hello, Kind};
use crate::{BridgeError, Link};

mod accept;
mod link;

use link::{Queue, Wire};

/// The most bytes of samples a pull lets the push have in flight beyond what the far channel
/// holds (the window it grants is this many bytes of items, at least one item, at most the
/// push's ring): what its queue may hold.
pub const QUEUE_BYTES: u64 = 32 << 20;

/// The largest channel a pull creates unless told otherwise (`--max-bytes`): 1 GiB of ring.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// How a pull runs.
#[derive(Clone, Copy, Debug)]
pub struct PullOptions {
    /// The capacity of the channel if the pull creates it; a channel that exists must have
    /// it. `None`: a create makes the default (1 MiB of ring), and any capacity will do.
    pub capacity: Option<usize>,
    /// The most bytes of ring a stream may make the pull create (capacity × element size).
    pub max_bytes: u64,
    /// The longest it waits for a push (at the start, and each time one goes). `None`: as
    /// long as it takes.
    pub timeout: Option<Duration>,
}

impl Default for PullOptions {
    fn default() -> PullOptions {
        PullOptions {
            capacity: None,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: None,
        }
    }
}

/// How the stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The far writer closed; everything arrived.
    Closed,
    /// The far writer aborted with this reason; everything before it arrived.
    Aborted(String),
}

/// Validates what can be validated before anything arrives: the key, the channel name and
/// the capacity.
fn check(into: &str, link: &Link, options: &PullOptions) -> Result<(), BridgeError> {
    crate::check_key(&link.key)?;
    shmchan::validate_name(into)
        .map_err(|e| BridgeError::Stream(format!("invalid channel name {into:?}: {e}")))?;
    if options.capacity == Some(0) {
        return Err(BridgeError::Stream("--capacity must be at least 1".into()));
    }
    Ok(())
}

/// Receives the stream on `link.key` and writes it into channel `into`, created (with the
/// type the push announces, `options.capacity`, and the stream as its [`Origin`]) if it does
/// not exist. A channel that exists must carry the same stream (its origin) with the same
/// type, schema tag and capacity, else the stream is refused.
///
/// Ends with the stream: `Ok(Closed)` or `Ok(Aborted)` once that end is in the channel and
/// the push was told. A push that goes, or whose writer dies, makes the channel's writer go
/// too (its reader sees the writer gone); the pull then waits for a push to come back, at
/// most `options.timeout`. It never aborts the channel on its own: whatever stops it, a
/// restarted pull carries the stream on.
pub async fn pull(into: &str, link: &Link, options: PullOptions) -> Result<Ended, BridgeError> {
    check(into, link, &options)?;
    let (wire, samples, queries) = Wire::declare(link).await?;
    println!("ready");
    eprintln!("pull: {} into {into}: waiting for a push", link.key);
    let mut pull = Pull {
        into: into.to_string(),
        key: link.key.clone(),
        options,
        wire,
        samples,
        queries,
        far: None,
        epoch: None,
        pending: None,
        since: tokio::time::Instant::now(),
    };
    let end = pull.run().await;
    if let Some(w) = pull.far.as_mut().and_then(|f| f.w.take()) {
        // Not passed on: let the far writer end go without ending the stream.
        w.leave();
    }
    let end = end?;
    pull.farewell().await;
    pull.wire.close().await;
    Ok(end)
}

/// The far channel: its handle, its writer end while a push is there, and its origin.
struct Far {
    chan: RawChannel,
    w: Option<RawWriter>,
    origin: Origin,
    element: Element,
}

impl Far {
    /// The stream's items the channel holds.
    fn held(&self) -> Result<u64, BridgeError> {
        let tail = ChannelIo::inspect(self.chan.name())
            .map_err(BridgeError::Channel)?
            .tail;
        Ok(self.origin.first() + tail)
    }
}

/// The accepted hello under way.
struct Epoch {
    id: u64,
    stream: u64,
    element: Element,
    next_seq: u64,
    /// The stream's number of the next item expected.
    expected: u64,
    /// The stream's items in the far channel.
    committed: u64,
    /// The last `committed` acknowledged.
    acked: u64,
    window: u64,
}

/// A data sample being written into the far channel.
struct Pending {
    payload: ZBytes,
    /// Bytes written so far.
    done: usize,
}

/// Why the pull drops an epoch (the push is told, and asks again).
struct Reset(String);

struct Pull {
    into: String,
    key: String,
    options: PullOptions,
    wire: Wire,
    samples: Queue<(Frame, ZBytes)>,
    queries: Queue<Query>,
    far: Option<Far>,
    epoch: Option<Epoch>,
    pending: Option<Pending>,
    /// Since when no push is there (for the timeout).
    since: tokio::time::Instant,
}

impl Pull {
    async fn run(&mut self) -> Result<Ended, BridgeError> {
        loop {
            if self.wire.gate.overflow.swap(false, Ordering::Relaxed) {
                let bytes = self.wire.gate.limit.load(Ordering::Relaxed);
                self.reset(format!(
                    "the push sent more than the window ({bytes} bytes)"
                ))
                .await?;
            }
            let waiting = self.pending.is_some();
            let deadline = self
                .options
                .timeout
                .filter(|_| self.wire.present == 0 && !self.wire.queried)
                .map(|t| self.since + t);
            tokio::select! {
                biased;
                q = self.queries.recv() => {
                    let Some(q) = q else { return Err(BridgeError::zenoh("the queryable closed")) };
                    if let Some(end) = self.answer(q).await? {
                        return Ok(end);
                    }
                }
                s = self.wire.pushes.recv_async() => {
                    let kind = s.map_err(BridgeError::zenoh)?.kind();
                    if !self.wire.count(kind) && kind == SampleKind::Delete {
                        self.push_gone();
                    }
                }
                r = room(&mut self.far), if waiting => {
                    r?;
                    self.write().await?;
                }
                m = self.samples.recv(), if !waiting => {
                    let Some((frame, payload)) = m else {
                        return Err(BridgeError::zenoh("the subscriber closed"));
                    };
                    self.wire.gate.queued.fetch_sub(payload.len() as u64, Ordering::Relaxed);
                    match self.sample(frame, payload).await {
                        Ok(Some(end)) => return Ok(end),
                        Ok(None) => self.acknowledge(false).await?,
                        Err(Reset(why)) => self.reset(why).await?,
                    }
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    return Err(BridgeError::Stream(format!(
                        "no push for {} came within {:?}",
                        self.key,
                        self.options.timeout.unwrap_or_default()
                    )));
                }
            }
        }
    }

    /// The push went: the far channel's writer goes too (its reader sees it gone once it
    /// has read what is there), and the epoch is over. A push that comes back carries on.
    fn push_gone(&mut self) {
        self.since = tokio::time::Instant::now();
        if self.epoch.take().is_some() {
            eprintln!("pull: the push went; waiting for one");
        }
        self.pending = None;
        self.wire.gate.epoch.store(0, Ordering::Release);
        if let Some(w) = self.far.as_mut().and_then(|f| f.w.take()) {
            w.leave();
        }
    }

    /// Once the stream's end is in the far channel: answers hellos (each learns of the end)
    /// until a push says goodbye, which it does once it has the end's acknowledgement, or for
    /// `FAREWELL` at most. A push killed before the acknowledgement reached it, and restarted,
    /// so learns of the end from the far channel instead of waiting for a pull that went.
    async fn farewell(&mut self) {
        let until = tokio::time::Instant::now() + crate::FAREWELL;
        loop {
            tokio::select! {
                q = self.queries.recv() => {
                    let Some(q) = q else { return };
                    let bye = q
                        .payload()
                        .and_then(|p| Hello::decode(&p.to_bytes()).ok())
                        .is_some_and(|h| h.goodbye);
                    if let Err(e) = self.answer(q).await {
                        eprintln!("pull: {e}");
                    }
                    if bye {
                        return;
                    }
                }
                s = self.wire.pushes.recv_async() => {
                    let Ok(s) = s else { return };
                    self.wire.count(s.kind());
                }
                _ = tokio::time::sleep_until(until) => return,
            }
        }
    }

    /// Tells the push sending under epoch `frame.epoch`, which is not this pull's, to say
    /// hello again.
    async fn stray(&self, frame: &Frame) {
        let reset = Ack {
            kind: AckKind::Reset,
            stream: frame.stream,
            epoch: frame.epoch,
            committed: 0,
            reason: "an epoch this pull does not have (it restarted?)".into(),
        };
        if let Err(e) = self.wire.ack(reset).await {
            eprintln!("pull: {e}");
        }
    }

    /// Drops the epoch under way and tells the push why.
    async fn reset(&mut self, why: String) -> Result<(), BridgeError> {
        eprintln!("pull: dropped the epoch: {why}");
        self.pending = None;
        self.wire.gate.epoch.store(0, Ordering::Release);
        let Some(e) = self.epoch.take() else {
            return Ok(());
        };
        self.wire
            .ack(Ack {
                kind: AckKind::Reset,
                stream: e.stream,
                epoch: e.id,
                committed: e.committed,
                reason: why,
            })
            .await
    }

    /// One sample of the current epoch: checked, then passed on. `Some` once the stream
    /// ended; a [`Reset`] drops the epoch.
    async fn sample(&mut self, frame: Frame, payload: ZBytes) -> Result<Option<Ended>, Reset> {
        if self.epoch.as_ref().is_none_or(|e| frame.epoch != e.id) {
            // Not the current epoch's: the push may still be sending under an epoch this
            // pull does not have (it restarted, and the push has not seen it go). Told so,
            // a push in that epoch says hello again; a push already past it ignores this.
            self.stray(&frame).await;
            return Ok(None);
        }
        let Some(e) = self.epoch.as_mut() else {
            return Ok(None);
        };
        if frame.stream != e.stream || frame.element != e.element {
            return Err(Reset(format!(
                "a sample of stream {:016x} ({}) in the epoch of stream {:016x} ({})",
                frame.stream, frame.element.elem, e.stream, e.element.elem
            )));
        }
        if frame.seq != e.next_seq || frame.offset != e.expected {
            return Err(Reset(format!(
                "expected sample {} at item {}, got sample {} at item {}",
                e.next_seq, e.expected, frame.seq, frame.offset
            )));
        }
        e.next_seq += 1;
        let size = e.element.elem.size();
        match frame.kind {
            Kind::Data => {
                if payload.is_empty() || payload.len() % size != 0 {
                    return Err(Reset(format!(
                        "a data sample of {} bytes is not a whole number of {size}-byte items",
                        payload.len()
                    )));
                }
                e.expected += (payload.len() / size) as u64;
                self.pending = Some(Pending { payload, done: 0 });
                self.write().await.map_err(|err| Reset(err.to_string()))?;
                Ok(None)
            }
            Kind::Close | Kind::WriterGone if !payload.is_empty() => Err(Reset(format!(
                "a {:?} sample with a payload of {} bytes (it has none)",
                frame.kind,
                payload.len()
            ))),
            Kind::Abort if payload.len() > crate::wire::REASON_MAX => Err(Reset(format!(
                "an abort reason of {} bytes (at most {})",
                payload.len(),
                crate::wire::REASON_MAX
            ))),
            kind => Ok(self.end(kind, &payload).await),
        }
    }

    /// A close, an abort or the writer's death, with everything before it in the channel:
    /// passed on, and confirmed to the push. `Some` if the stream is over.
    async fn end(&mut self, kind: Kind, payload: &ZBytes) -> Option<Ended> {
        let e = self.epoch.take()?;
        self.wire.gate.epoch.store(0, Ordering::Release);
        let w = self.far.as_mut().and_then(|f| f.w.take())?;
        let ended = match kind {
            Kind::Close => {
                w.close();
                Some(Ended::Closed)
            }
            Kind::Abort => {
                let reason = crate::printable(&payload.to_bytes());
                w.abort(&reason);
                Some(Ended::Aborted(reason))
            }
            _ => {
                eprintln!("pull: the writer on the push side died; its far twin goes too");
                w.leave();
                None
            }
        };
        let ack = Ack {
            kind: AckKind::End,
            stream: e.stream,
            epoch: e.id,
            committed: e.expected,
            reason: String::new(),
        };
        if let Err(err) = self.wire.ack(ack).await {
            eprintln!("pull: could not confirm the end: {err}");
        }
        ended
    }

    /// Writes as much of the pending sample as the far ring has room for.
    async fn write(&mut self) -> Result<(), BridgeError> {
        let (Some(p), Some(far), Some(e)) = (
            self.pending.as_mut(),
            self.far.as_mut(),
            self.epoch.as_mut(),
        ) else {
            self.pending = None;
            return Ok(());
        };
        let Some(w) = far.w.as_mut() else {
            self.pending = None;
            return Ok(());
        };
        let size = e.element.elem.size();
        let left = (p.payload.len() - p.done) / size;
        let mut slots = w.try_reserve(left)?;
        let n = slots.elements();
        let mut to: &mut [u8] = &mut slots;
        let mut skip = p.done;
        for piece in p.payload.slices() {
            if to.is_empty() {
                break;
            }
            if skip >= piece.len() {
                skip -= piece.len();
                continue;
            }
            let piece = &piece[skip..];
            skip = 0;
            let k = piece.len().min(to.len());
            let (head, rest) = std::mem::take(&mut to).split_at_mut(k);
            head.copy_from_slice(&piece[..k]);
            to = rest;
        }
        slots.commit_all();
        p.done += n * size;
        e.committed += n as u64;
        if p.done == p.payload.len() {
            self.pending = None;
        }
        self.acknowledge(n == 0).await
    }

    /// Acknowledges what the far channel holds, once a quarter of the window is unacknowledged,
    /// or the queue ran dry (`force` only if nothing was written, which acknowledges nothing).
    async fn acknowledge(&mut self, force: bool) -> Result<(), BridgeError> {
        let Some(e) = self.epoch.as_mut() else {
            return Ok(());
        };
        let new = e.committed - e.acked;
        let dry = self.pending.is_none() && self.samples.is_empty();
        if new == 0 || !(new >= (e.window / 4).max(1) || dry || force) {
            return Ok(());
        }
        e.acked = e.committed;
        let ack = Ack {
            kind: AckKind::Progress,
            stream: e.stream,
            epoch: e.id,
            committed: e.committed,
            reason: String::new(),
        };
        self.wire.ack(ack).await
    }
}

/// Waits for room in the far channel (its writer end must be there).
async fn room(far: &mut Option<Far>) -> Result<(), BridgeError> {
    let Some(w) = far.as_mut().and_then(|f| f.w.as_mut()) else {
        return std::future::pending().await;
    };
    match w.wait_room(1).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::PeerGone => {
            // Reported once; the next wait waits for a new reader.
            eprintln!("pull: the far reader died; waiting for a new one");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The `--timeout` deadline for a push to come, raced in the loop's `select!` against the
/// events that end the wait (a token, a hello): a deadline, not a poll. `None`: never.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
