//! The pull's side of the link: its zenoh declarations, and the callback that takes samples
//! off zenoh without ever blocking it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use zenoh::bytes::ZBytes;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::query::{Query, Queryable};
use zenoh::sample::{Sample, SampleKind};

use crate::wire::{Ack, Frame};
use crate::{pull_token, push_token, session, BridgeError, Link, Samples};

/// What zenoh's receiving thread shares with the pull's task: which samples to queue, and
/// how many bytes are queued. The callback never blocks zenoh: it queues a sample of the
/// current epoch, or drops it.
#[derive(Default)]
pub(super) struct Gate {
    /// The epoch whose samples are queued (0: none).
    pub(super) epoch: AtomicU64,
    /// Payload bytes queued and not yet taken.
    pub(super) queued: AtomicU64,
    /// The most bytes that may be queued.
    pub(super) limit: AtomicU64,
    /// The epoch of the last sample dropped for not being the current epoch's.
    pub(super) stray: AtomicU64,
    /// A sample would have passed `limit`: the push sent more than its window.
    pub(super) overflow: AtomicBool,
}

/// The pull's side of the link. Dropped in field order: the token first, the session last.
pub(super) struct Wire {
    pub(super) token: LivelinessToken,
    /// The pushes' liveliness tokens (with history: one there before us counts).
    pub(super) pushes: Samples,
    /// Push tokens there now, as the liveliness subscriber told.
    pub(super) present: usize,
    /// A liveliness query found a push token that the subscriber has not told of yet (it
    /// tells of each token in its own time, which may come after the push's hello).
    pub(super) queried: bool,
    pub(super) push_token: String,
    pub(super) acks: Publisher<'static>,
    pub(super) gate: Arc<Gate>,
    _queryable: Queryable<()>,
    _subscriber: Subscriber<()>,
    pub(super) session: zenoh::Session,
}

pub(super) type Queue<T> = mpsc::UnboundedReceiver<T>;

impl Wire {
    /// Opens the session and declares the pull's subscriber, queryable, publisher and token.
    pub(super) async fn declare(
        link: &Link,
    ) -> Result<(Wire, Queue<(Frame, ZBytes)>, Queue<Query>), BridgeError> {
        let session = session(link).await?;
        let gate = Arc::new(Gate::default());
        let (tx, samples) = mpsc::unbounded_channel();
        let g = gate.clone();
        let subscriber = session
            .declare_subscriber(link.key.clone())
            .callback(move |s: Sample| admit(&g, &tx, s))
            .await
            .map_err(BridgeError::zenoh)?;
        let (qtx, queries) = mpsc::unbounded_channel();
        let queryable = session
            .declare_queryable(crate::hello_key(&link.key))
            .callback(move |q: Query| {
                let _ = qtx.send(q);
            })
            .await
            .map_err(BridgeError::zenoh)?;
        let acks = session
            .declare_publisher(crate::ack_key(&link.key))
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .express(true)
            .await
            .map_err(BridgeError::zenoh)?;
        let pushes = crate::watch(&session, push_token(&link.key)).await?;
        // Declared last: a push says hello once it sees this token.
        let token = crate::token(&session, pull_token(&link.key)).await?;
        let wire = Wire {
            token,
            pushes,
            present: 0,
            queried: false,
            push_token: push_token(&link.key),
            acks,
            gate,
            _queryable: queryable,
            _subscriber: subscriber,
            session,
        };
        Ok((wire, samples, queries))
    }

    /// Whether a push is there: its token, as the subscriber told or a query finds.
    pub(super) async fn push_there(&mut self) -> bool {
        if self.present > 0 || self.queried {
            return true;
        }
        let Ok(replies) = self
            .session
            .liveliness()
            .get(self.push_token.clone())
            .timeout(crate::HELLO_TIMEOUT / 4)
            .await
        else {
            return false;
        };
        while let Ok(reply) = replies.recv_async().await {
            if reply.result().is_ok() {
                self.queried = true;
                return true;
            }
        }
        false
    }

    /// Counts one sample of the push tokens' subscriber; whether a push is there.
    pub(super) fn count(&mut self, kind: SampleKind) -> bool {
        self.queried = false;
        match kind {
            SampleKind::Put => self.present += 1,
            SampleKind::Delete => self.present = self.present.saturating_sub(1),
        }
        self.present > 0
    }

    pub(super) async fn ack(&self, ack: Ack) -> Result<(), BridgeError> {
        self.acks
            .put(ack.encode())
            .await
            .map_err(BridgeError::zenoh)
    }

    /// Undeclares the token and closes the session.
    pub(super) async fn close(self) {
        drop(self.token);
        let _ = self.session.close().await;
    }
}

/// zenoh's callback for a sample on the data key: queues it if it belongs to the current
/// epoch and fits under the limit; drops it otherwise. Never blocks.
fn admit(gate: &Gate, tx: &mpsc::UnboundedSender<(Frame, ZBytes)>, s: Sample) {
    let Some(Ok(frame)) = s.attachment().map(|a| Frame::decode(&a.to_bytes())) else {
        return; // not a shmchan frame: nobody's sample
    };
    // Acquire: pairs with the Release store of a new epoch, after which its limit is set.
    let epoch = gate.epoch.load(Ordering::Acquire);
    if epoch == 0 || frame.epoch != epoch {
        // An earlier epoch's, or one this pull never accepted (a push that went on sending
        // to a pull that restarted): dropped. The pull's task hears of each such epoch once,
        // without its payload, to tell the push to say hello again.
        if gate.stray.swap(frame.epoch, Ordering::Relaxed) != frame.epoch {
            let _ = tx.send((frame, ZBytes::default()));
        }
        return;
    }
    let len = s.payload().len() as u64;
    // Relaxed: a counter of bytes, exact under any interleaving (fetch_add is atomic); it
    // orders nothing else.
    let before = gate.queued.fetch_add(len, Ordering::Relaxed);
    if before + len > gate.limit.load(Ordering::Relaxed) {
        gate.queued.fetch_sub(len, Ordering::Relaxed);
        gate.overflow.store(true, Ordering::Relaxed);
        return;
    }
    if tx.send((frame, s.payload().clone())).is_err() {
        gate.queued.fetch_sub(len, Ordering::Relaxed);
    }
}
