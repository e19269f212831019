//! `push`: reads a local channel and publishes its stream on a zenoh key. It consumes a local
//! item only once the pull acknowledges that the far channel holds it, so whatever dies, a
//! restarted push finds every item the far channel lacks still in the local channel.

use std::time::Duration;

use shmchan::{ChannelInfo, ChannelIo, ErrorKind, Options, RawChannel, RawReader};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::query::QueryTarget;
use zenoh::sample::SampleKind;

use crate::wire::{Accept, Ack, AckKind, Element, Frame, Hello, Kind};
use crate::{pull_token, push_token, session, Batching, BridgeError, Link, Samples};

/// How a push runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct PushOptions {
    /// How it batches items into samples.
    pub batching: Batching,
    /// The longest it waits for the local channel to be created, and for a pull to come
    /// (each time one goes). `None`: as long as it takes.
    pub timeout: Option<Duration>,
}

/// The stream id of the local channel that `info` describes: the same for every push of
/// that channel (so that a restarted push carries its stream on), another for a channel
/// created anew under the same name.
fn stream_of(info: &ChannelInfo) -> u64 {
    // splitmix64 over the channel's identity: its creation time, its creator, its name.
    let mut x = info.created_unix_ns ^ (u64::from(info.creator_pid) << 40);
    for b in info.name.bytes() {
        x = x.rotate_left(8) ^ u64::from(b);
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x.max(1)
}

/// The local channel and its reader end.
struct Local {
    chan: RawChannel,
    r: RawReader,
    /// The stream's items consumed from the local channel (its head).
    head: u64,
    stream: u64,
    element: Element,
}

impl Local {
    /// Waits for channel `name` to exist (at most `timeout`), opens it whatever its type, and
    /// claims its reader end.
    async fn open(name: &str, timeout: Option<Duration>) -> Result<Local, BridgeError> {
        ChannelIo::wait_created(name, timeout)
            .await
            .map_err(BridgeError::Setup)?;
        let info = ChannelIo::inspect(name).map_err(BridgeError::Setup)?;
        let options = match &info.schema {
            Some(tag) => Options::new().schema(tag.clone()),
            None => Options::new(),
        };
        let chan = RawChannel::open_any(name, options).map_err(BridgeError::Setup)?;
        let r = chan.reader().map_err(BridgeError::Setup)?;
        // Read again now that the reader end is ours: nothing else moves the head.
        let head = ChannelIo::inspect(name).map_err(BridgeError::Setup)?.head;
        let element = Element {
            elem: chan.element_type(),
            schema: chan.schema().map(str::to_string),
        };
        Ok(Local {
            stream: stream_of(&info),
            head,
            element,
            chan,
            r,
        })
    }

    /// The hello for the stream as it stands.
    fn hello(&self) -> Result<Hello, BridgeError> {
        let tail = ChannelIo::inspect(self.r.name())
            .map_err(BridgeError::Channel)?
            .tail;
        Ok(Hello {
            goodbye: false,
            element: self.element.clone(),
            stream: self.stream,
            first: self.head,
            last: tail.max(self.head),
            window: self.chan.capacity() as u64,
        })
    }

    /// Consumes the stream's items up to `upto` (the far channel holds them).
    fn consume_to(&mut self, upto: u64) -> Result<(), BridgeError> {
        while self.head < upto {
            let view = self.r.try_peek_some()?;
            let k = ((upto - self.head) as usize).min(view.elements());
            if k == 0 {
                return Err(BridgeError::Stream(format!(
                    "the pull says the far channel holds {upto} items, but the local channel \
                     has {}: it is not this channel's stream",
                    self.head
                )));
            }
            view.consume(k);
            self.head += k as u64;
        }
        Ok(())
    }
}

/// Forwards channel `name` to `link.key` until its writer ends the stream and the pull
/// confirms that the end is in the far channel; returns the stream's length in items.
///
/// It waits (at most `options.timeout`) for the channel to exist and for a pull, and asks the
/// pull to take the stream (a hello) before it reads anything. A pull that goes, or drops
/// the stream, is waited for again; the items it had not acknowledged are sent again from
/// the first one the far channel lacks. On any error the reader end is let go without
/// closing the channel (`leave`): the local writer learns that its reader is gone, and a
/// restarted push carries on. A local writer that dies makes the far channel's writer go too,
/// once everything it committed is there; the push then fails, and a restarted writer and
/// push carry the stream on.
pub async fn push(name: &str, link: &Link, options: PushOptions) -> Result<u64, BridgeError> {
    crate::check_key(&link.key)?;
    shmchan::validate_name(name)
        .map_err(|e| BridgeError::Stream(format!("invalid channel name {name:?}: {e}")))?;
    let wire = Wire::declare(link).await?;
    println!("ready");
    let mut local = Local::open(name, options.timeout).await?;
    let result = forward(&mut local, wire, link, options).await;
    match result {
        Ok(n) => {
            // The far channel holds the end: closing the reader end finishes the channel.
            local.r.close();
            Ok(n)
        }
        Err(e) => {
            local.r.leave();
            Err(e)
        }
    }
}

/// The push's side of the link: its zenoh session and what it declared on it. Dropped in
/// field order: the publisher first, the session last.
struct Wire {
    publisher: Publisher<'static>,
    /// The pull's acknowledgements.
    acks: Samples,
    /// The pulls' liveliness tokens (with history: one there before us counts).
    pulls: Samples,
    /// Pull tokens there now.
    present: usize,
    _token: LivelinessToken,
    session: zenoh::Session,
    hello_key: String,
}

/// What a pull said to a hello.
enum Answer {
    Accept(Accept),
    Refused(String),
    /// Nothing (no pull answered in time, or it went).
    Silence,
}

impl Wire {
    /// Opens the session and declares the push's subscribers, its publisher and its token.
    async fn declare(link: &Link) -> Result<Wire, BridgeError> {
        let session = session(link).await?;
        let pulls = crate::watch(&session, pull_token(&link.key)).await?;
        let acks = crate::subscribe(&session, crate::ack_key(&link.key)).await?;
        let publisher = session
            .declare_publisher(link.key.clone())
            .congestion_control(CongestionControl::Block)
            .await
            .map_err(BridgeError::zenoh)?;
        // Declared last: a pull answers a hello only while this token is there.
        let token = crate::token(&session, push_token(&link.key)).await?;
        Ok(Wire {
            publisher,
            acks,
            pulls,
            present: 0,
            _token: token,
            session,
            hello_key: crate::hello_key(&link.key),
        })
    }

    /// Counts one liveliness sample of the pull tokens; whether a pull is there.
    fn count(
        &mut self,
        s: Result<zenoh::sample::Sample, BridgeError>,
    ) -> Result<bool, BridgeError> {
        match s?.kind() {
            SampleKind::Put => self.present += 1,
            SampleKind::Delete => self.present = self.present.saturating_sub(1),
        }
        Ok(self.present > 0)
    }

    /// Waits until a pull is there (its liveliness token), at most `timeout`.
    async fn pull_comes(
        &mut self,
        timeout: Option<Duration>,
        key: &str,
    ) -> Result<(), BridgeError> {
        let wait = async {
            while self.present == 0 {
                let s = self.pulls.recv_async().await.map_err(BridgeError::zenoh);
                self.count(s)?;
            }
            Ok(())
        };
        match timeout {
            None => wait.await,
            Some(t) => tokio::time::timeout(t, wait)
                .await
                .map_err(|_| BridgeError::Stream(format!("no pull for {key} came within {t:?}")))?,
        }
    }

    /// Waits for news of the pulls (a token that comes or goes), at most `timeout`.
    async fn news(&mut self, timeout: Duration) -> Result<(), BridgeError> {
        if let Ok(s) = tokio::time::timeout(timeout, self.pulls.recv_async()).await {
            self.count(s.map_err(BridgeError::zenoh))?;
        }
        Ok(())
    }

    /// Asks the pulls to take the stream; the first answer.
    async fn hello(&self, hello: &Hello) -> Result<Answer, BridgeError> {
        let replies = self
            .session
            .get(self.hello_key.clone())
            .payload(hello.encode())
            .target(QueryTarget::All)
            .timeout(crate::HELLO_TIMEOUT)
            .await
            .map_err(BridgeError::zenoh)?;
        let Ok(reply) = replies.recv_async().await else {
            return Ok(Answer::Silence);
        };
        Ok(match reply.into_result() {
            Ok(sample) => match Accept::decode(&sample.payload().to_bytes()) {
                Ok(a) => Answer::Accept(a),
                Err(e) => Answer::Refused(format!("its answer is not an accept: {e}")),
            },
            Err(e) => {
                let b = e.payload().to_bytes();
                match b.strip_prefix(&crate::wire::REFUSAL_MAGIC[..]) {
                    Some(why) => Answer::Refused(crate::printable(why)),
                    // zenoh's own (a timeout): no answer from a pull.
                    None => {
                        eprintln!("push: no answer to the hello ({})", crate::printable(&b));
                        Answer::Silence
                    }
                }
            }
        })
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

/// How an epoch (one accepted hello) ended.
enum Outcome {
    /// The stream's end is in the far channel: a close or an abort (the stream is over), or
    /// the writer's death (`gone`: it is not).
    Ended { gone: bool },
    /// The pull went, or dropped the epoch: ask again.
    Again,
}

/// Hellos, epochs and the stream's end: the push's work once the local channel is open.
async fn forward(
    local: &mut Local,
    mut wire: Wire,
    link: &Link,
    options: PushOptions,
) -> Result<u64, BridgeError> {
    let name = local.r.name().to_string();
    eprintln!(
        "push: {name} ({}) to {}: stream {:016x}",
        local.element.elem, link.key, local.stream
    );
    // How long to wait for news of the pulls before asking again after no answer: a pull
    // whose queryable is not known here yet, or one that does not answer (an older or a
    // broken one), is asked again at growing intervals, not in a loop.
    let mut again = Duration::from_millis(50);
    loop {
        wire.pull_comes(options.timeout, &link.key).await?;
        let accept = match wire.hello(&local.hello()?).await? {
            Answer::Accept(a) => {
                again = Duration::from_millis(50);
                a
            }
            Answer::Refused(why) => {
                return Err(BridgeError::Stream(format!(
                    "the pull refused the stream: {why}"
                )))
            }
            Answer::Silence => {
                wire.news(again).await?;
                again = (again * 2).min(crate::HELLO_TIMEOUT);
                continue;
            }
        };
        if accept.resume < local.head {
            return Err(BridgeError::Stream(format!(
                "the far channel holds {} items of the stream, but this side consumed {}: \
                 items {}..{} are lost (was the far channel removed?)",
                accept.resume, local.head, accept.resume, local.head
            )));
        }
        local.consume_to(accept.resume)?;
        eprintln!(
            "push: the pull took the stream at item {} (epoch {:016x})",
            accept.resume, accept.epoch
        );
        let outcome = if accept.ended {
            ended_already(local)?
        } else {
            epoch(local, &mut wire, &accept, options.batching).await?
        };
        match outcome {
            Outcome::Again => continue,
            Outcome::Ended { gone: false } => {
                // Tell the pull that we have its acknowledgement of the end: it may go. Until
                // then it stays, for a push restarted before it learnt of the end.
                let bye = Hello {
                    goodbye: true,
                    ..local.hello()?
                };
                if let Ok(Answer::Silence) | Err(_) = wire.hello(&bye).await {
                    eprintln!("push: the pull did not answer the goodbye; it goes in its time");
                }
                wire.close().await?;
                return Ok(local.head);
            }
            Outcome::Ended { gone: true } => {
                return Err(BridgeError::Stream(format!(
                    "the writer of {name} died after {} items; the far channel's writer is \
                     gone too. The stream is not over: restart the writer (shmchan send \
                     --resume, say) and this push",
                    local.head
                )))
            }
        }
    }
}

/// The far channel holds the stream's end: so must the local channel, at the same item.
fn ended_already(local: &mut Local) -> Result<Outcome, BridgeError> {
    match local.r.try_peek_some() {
        Err(e) if matches!(e.kind(), ErrorKind::Closed | ErrorKind::Aborted) => {
            Ok(Outcome::Ended { gone: false })
        }
        _ => Err(BridgeError::Stream(format!(
            "the far channel holds the end of the stream after {} items, but the local \
             channel goes on: it is not this channel's stream",
            local.head
        ))),
    }
}

/// The end of the stream for the local reader's error `e`: its kind and payload.
fn end_of(e: shmchan::Error) -> Result<(Kind, Vec<u8>), BridgeError> {
    match e.kind() {
        ErrorKind::Closed => Ok((Kind::Close, Vec::new())),
        ErrorKind::Aborted => Ok((
            Kind::Abort,
            e.reason().unwrap_or_default().as_bytes().to_vec(),
        )),
        ErrorKind::PeerGone => Ok((Kind::WriterGone, Vec::new())),
        _ => Err(e.into()),
    }
}

/// One epoch: sends the stream from `accept.resume`, at most `accept.window` items beyond
/// the last acknowledged, consumes what the pull acknowledges, and sends the end once the
/// local writer ends the stream.
async fn epoch(
    local: &mut Local,
    wire: &mut Wire,
    accept: &Accept,
    batching: Batching,
) -> Result<Outcome, BridgeError> {
    let size = local.element.elem.size();
    let capacity = local.chan.capacity() as u64;
    let window = accept.window.min(capacity);
    // At most half the ring a sample, so that a sample never waits for a full ring.
    let batch = ((batching.batch_bytes / size) as u64).clamp(1, (capacity / 2).max(1));
    let mut frame = Frame {
        kind: Kind::Data,
        element: local.element.clone(),
        stream: local.stream,
        epoch: accept.epoch,
        seq: 0,
        offset: local.head,
    };
    // Where the end was sent, once it was, and whether it was the writer's death.
    let mut end: Option<(u64, bool)> = None;
    loop {
        let in_flight = frame.offset - local.head;
        tokio::select! {
            biased;
            a = wire.acks.recv_async() => {
                let a = a.map_err(BridgeError::zenoh)?;
                let Ok(ack) = Ack::decode(&a.payload().to_bytes()) else { continue };
                if ack.stream != local.stream || ack.epoch != accept.epoch {
                    continue; // another stream's, or an earlier epoch's
                }
                if let Some(outcome) = acknowledged(local, &ack, frame.offset, end)? {
                    return Ok(outcome);
                }
            }
            s = wire.pulls.recv_async() => {
                if !wire.count(s.map_err(BridgeError::zenoh))? {
                    eprintln!("push: the pull went after item {}; waiting for one", local.head);
                    return Ok(Outcome::Again);
                }
            }
            got = local.r.wait_items(in_flight as usize + 1),
                if end.is_none() && in_flight < window =>
            {
                match got {
                    Ok(_) => {
                        let skip = in_flight;
                        let want = batch.min(window - skip);
                        linger(&mut local.r, skip, want, batching.linger).await?;
                        // A copy of the items after the unacknowledged ones; the view goes
                        // without consuming anything (only an acknowledgement consumes).
                        let (k, payload) = {
                            let view = local.r.try_peek_some()?;
                            let k = (view.elements() as u64 - skip).min(want);
                            let (from, to) = ((skip as usize) * size, ((skip + k) as usize) * size);
                            (k, view[from..to].to_vec())
                        };
                        wire.publish(&frame, payload).await?;
                        frame.seq += 1;
                        frame.offset += k;
                    }
                    Err(e) => {
                        // Every item is sent (the error says no more come): the end follows.
                        let (kind, payload) = end_of(e)?;
                        let last = Frame { kind, ..frame.clone() };
                        wire.publish(&last, payload).await?;
                        frame.seq += 1;
                        end = Some((frame.offset, kind == Kind::WriterGone));
                    }
                }
            }
        }
    }
}

/// Applies acknowledgement `ack` of the current epoch, with the stream sent up to `sent` and
/// its end sent at `end`; `Some` once the epoch is over.
fn acknowledged(
    local: &mut Local,
    ack: &Ack,
    sent: u64,
    end: Option<(u64, bool)>,
) -> Result<Option<Outcome>, BridgeError> {
    if ack.committed > sent {
        return Err(BridgeError::Stream(format!(
            "the pull acknowledged {} items, but only {sent} were sent",
            ack.committed
        )));
    }
    match ack.kind {
        AckKind::Progress => {
            if ack.committed > local.head {
                local.consume_to(ack.committed)?;
            }
            Ok(None)
        }
        AckKind::End => match end {
            Some((at, gone)) if at == ack.committed => {
                local.consume_to(at)?;
                Ok(Some(Outcome::Ended { gone }))
            }
            _ => Err(BridgeError::Stream(format!(
                "the pull confirmed an end at item {} that was not sent",
                ack.committed
            ))),
        },
        AckKind::Reset => {
            eprintln!("push: the pull dropped the epoch: {}", ack.reason);
            Ok(Some(Outcome::Again))
        }
    }
}

/// With `skip` items sent and unacknowledged: if fewer than `want` more are there and
/// `linger` is not zero, waits at most `linger` for them (the stream's end, or a timeout,
/// ends the wait; the caller sends what is there).
async fn linger(
    r: &mut RawReader,
    skip: u64,
    want: u64,
    linger: Duration,
) -> Result<(), BridgeError> {
    if linger.is_zero() {
        return Ok(());
    }
    r.set_timeout(Some(linger));
    let waited = r.wait_items((skip + want) as usize).await;
    r.set_timeout(None);
    match waited {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::TimedOut | ErrorKind::Closed | ErrorKind::Aborted | ErrorKind::PeerGone
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
