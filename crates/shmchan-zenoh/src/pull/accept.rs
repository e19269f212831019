//! The hello: answered with an accept (a new epoch at the first item the far channel lacks)
//! or a refusal; and the far channel the accept opens or creates.

use std::sync::atomic::Ordering;

use shmchan::{ChannelIo, Options, Origin, RawChannel, WriterState};
use zenoh::query::Query;

use super::{Ended, Epoch, Far, Pull, QUEUE_BYTES};
use crate::push_token;
use crate::wire::{Accept, Hello};
use crate::BridgeError;

impl Pull {
    /// Answers a hello: accepts it (a new epoch), or refuses it with the reason. `Some` if
    /// the far channel holds the stream's end already (the pull is done once the push knows).
    pub(super) async fn answer(&mut self, q: Query) -> Result<Option<Ended>, BridgeError> {
        let result = match q.payload().map(|p| Hello::decode(&p.to_bytes())) {
            None => Err("a hello without a payload".to_string()),
            Some(Err(e)) => Err(format!("not a shmchan hello: {e}")),
            Some(Ok(_)) if !self.wire.push_there().await => Err(format!(
                "no push token: declare {} before the hello (the pull watches it to learn that \
                 the push went)",
                push_token(&self.key)
            )),
            Some(Ok(h)) => self.accept(&h),
        };
        let (reply, ended) = match result {
            Ok((a, ended)) => (q.reply(q.key_expr().clone(), a.encode()).await, ended),
            Err(why) => {
                eprintln!("pull: refused a hello: {why}");
                let mut payload = crate::wire::REFUSAL_MAGIC.to_vec();
                payload.extend_from_slice(why.as_bytes());
                (q.reply_err(payload).await, None)
            }
        };
        reply.map_err(BridgeError::zenoh)?;
        Ok(ended)
    }

    /// Takes the stream `h` announces: opens or creates the far channel, claims its writer,
    /// and starts an epoch at the first item the channel lacks.
    fn accept(&mut self, h: &Hello) -> Result<(Accept, Option<Ended>), String> {
        self.far_for(h)?;
        let far = self.far.as_mut().expect("far_for made it");
        let held = far.held().map_err(|e| e.to_string())?;
        if held < h.first {
            return Err(format!(
                "the far channel holds {held} items of the stream, but the push consumed {}: \
                 items {held}..{} are lost",
                h.first, h.first
            ));
        }
        if held > h.last {
            return Err(format!(
                "the far channel holds {held} items of the stream, more than the push's \
                 channel has ({}): it is not the same stream",
                h.last
            ));
        }
        let info = ChannelIo::inspect(&self.into).map_err(|e| e.to_string())?;
        let ended = match &info.writer_state {
            WriterState::Open => None,
            WriterState::Closed => Some(Ended::Closed),
            WriterState::Aborted(reason) => Some(Ended::Aborted(reason.clone())),
        };
        if h.goodbye && ended.is_none() {
            return Err("a goodbye, but the stream has not ended here".into());
        }
        if let Some(ended) = ended {
            eprintln!("pull: the far channel holds the end of the stream already");
            let a = Accept {
                ended: true,
                epoch: 0,
                resume: held,
                window: 1,
            };
            return Ok((a, Some(ended)));
        }
        if far.w.is_none() {
            far.w = Some(far.chan.writer().map_err(|e| e.to_string())?);
        }
        let size = h.element.elem.size() as u64;
        let window = h.window.min(QUEUE_BYTES / size).max(1);
        let id = epoch_id();
        self.pending = None;
        let gate = &self.wire.gate;
        // Room for the window, and once more for samples of an earlier epoch still queued.
        gate.limit.store(
            (2 * window * size).saturating_add(1 << 16),
            Ordering::Relaxed,
        );
        // Release: the limit above is visible to a callback that sees the epoch.
        gate.epoch.store(id, Ordering::Release);
        self.epoch = Some(Epoch {
            id,
            stream: h.stream,
            element: h.element.clone(),
            next_seq: 0,
            expected: held,
            committed: held,
            acked: held,
            window,
        });
        eprintln!(
            "pull: stream {:016x} ({}) from item {held}, epoch {id:016x}",
            h.stream, h.element.elem
        );
        println!("started");
        Ok((
            Accept {
                ended: false,
                epoch: id,
                resume: held,
                window,
            },
            None,
        ))
    }

    /// Opens the far channel for the stream `h` announces, or creates it; refuses a channel
    /// of another type or stream, and a channel larger than `--max-bytes`.
    fn far_for(&mut self, h: &Hello) -> Result<(), String> {
        if let Some(far) = &self.far {
            if far.origin.stream() != h.stream || far.element != h.element {
                return Err(format!(
                    "{} carries stream {:016x} ({} {:?}), not stream {:016x} ({} {:?}): a new \
                     stream needs a new channel",
                    self.into,
                    far.origin.stream(),
                    far.element.elem,
                    far.element.schema,
                    h.stream,
                    h.element.elem,
                    h.element.schema
                ));
            }
            return Ok(());
        }
        let size = h.element.elem.size() as u64;
        let exists = shmchan::channel_dir(&self.into).exists();
        let capacity = self
            .options
            .capacity
            .map_or((shmchan::DEFAULT_RING_BYTES as u64 / size).max(1), |c| {
                c as u64
            });
        if !exists && capacity.saturating_mul(size) > self.options.max_bytes {
            return Err(format!(
                "the stream's channel would take {} bytes ({capacity} items of {size} bytes), \
                 more than the pull's --max-bytes {}",
                capacity.saturating_mul(size),
                self.options.max_bytes
            ));
        }
        let origin = Origin::new(h.stream, h.first).ok_or("stream id 0")?;
        // A channel the pull creates orders its wake protocol with a fence on each side
        // (`Barrier::Fence`), not with membarrier(2) when a side goes to sleep. Both of its
        // ends sleep at nearly every sample (the network is slower than the ring), and each
        // membarrier interrupts every CPU running a process registered for it (any process
        // with a membarrier channel open, such as a push and its writer on the same host).
        // In `shmchan-bench bridge` the fence made 64 KiB batches 14–32% faster in 5 of 5
        // alternating pairs. It costs ~20 ns per put or get, which is nothing at the rate a
        // network delivers. A channel that exists keeps its own choice.
        let mut options = Options::new()
            .barrier(shmchan::Barrier::Fence)
            .origin(origin);
        if let Some(tag) = &h.element.schema {
            options = options.schema(tag.clone());
        }
        if let Some(c) = self.options.capacity {
            options = options.capacity(c);
        }
        let chan = RawChannel::create_or_open(&self.into, h.element.elem, options)
            .map_err(|e| e.to_string())?;
        let Some(found) = chan.origin() else {
            return Err(format!(
                "channel {} exists and was not made by a pull (it records no stream): remove \
                 it, or let the pull create it",
                self.into
            ));
        };
        if found.stream() != h.stream {
            return Err(format!(
                "channel {} carries stream {:016x}, not stream {:016x}: a new stream needs a \
                 new channel",
                self.into,
                found.stream(),
                h.stream
            ));
        }
        self.far = Some(Far {
            chan,
            w: None,
            origin: found,
            element: h.element.clone(),
        });
        Ok(())
    }
}

/// A fresh epoch id, never 0.
pub(super) fn epoch_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish().max(1)
}
