//! The eventcount's two halves, over the waiting word only: no system call, no waiting, so
//! that `tests/loom.rs` can model-check them (with a modelled doorbell) exactly as built.
//! `notify` adds the doorbell; see its module docs for the protocol and why it is correct.

use crate::sync::{compiler_fence, fence, AtomicU32, Ordering};

/// Waiter, step 1: announce that we may sleep. After this returns, re-check the condition;
/// if it now holds, [`retract`], else sleep on the doorbell.
#[inline]
pub(crate) fn announce(waiting: &AtomicU32) {
    // Relaxed: the fence orders it.
    waiting.store(1, Ordering::Relaxed);
    // SeqCst fence: orders the store above before the waiter's following loads of the
    // peer's index; pairs with the fence in `must_ring` (Dekker: of the two store→load
    // pairs, at least one load sees the other side's store).
    fence(Ordering::SeqCst);
}

/// Waiter: the re-check succeeded after all; spare the notifier a pointless ring.
#[inline]
pub(crate) fn retract(waiting: &AtomicU32) {
    waiting.store(0, Ordering::Relaxed);
}

/// Notifier, right after publishing with a Release store: true if a waiter announced a
/// sleep and this call took it upon itself to ring (exactly one notifier rings per
/// announcement).
///
/// `asymmetric`: the channel uses `Barrier::Membarrier` and this process is registered for
/// it, so every waiter issues `membarrier(2)` between `announce` and its re-check (see
/// `barrier`), and a compiler fence is enough here.
#[inline]
pub(crate) fn must_ring(waiting: &AtomicU32, asymmetric: bool) -> bool {
    // Compiler fence: keeps the compiler from moving the load below above our Release store
    // of the index (which Release alone allows). On an asymmetric channel that is all: the
    // CPU may still let the load pass the store, and the waiter's membarrier, which forces a
    // full barrier on this thread while it runs, pairs with this and closes that window
    // (`barrier` docs). (An `if` without an `else`: the asymmetric case, the default, then
    // runs straight on to the load.)
    compiler_fence(Ordering::SeqCst);
    if !asymmetric {
        // SeqCst fence: orders our preceding Release store of the index before the load of
        // the waiting word below (a Release store alone may be reordered after a later
        // load). Pairs with the fence in `announce`.
        fence(Ordering::SeqCst);
    }
    // Relaxed load first: while the peer is busy the word stays 0 and its line stays shared
    // in our cache, so the fast path writes nothing. The swap makes exactly one notifier
    // ring per announced sleep (Relaxed: the doorbell carries no data; the waiter re-checks
    // the indices with Acquire after waking).
    waiting.load(Ordering::Relaxed) != 0 && waiting.swap(0, Ordering::Relaxed) != 0
}

/// What ends a wait besides its condition, and how it sleeps: the environment of [`wait`].
/// The library's `Waiter` sleeps on its doorbell and a pidfd of the peer; `tests/loom.rs`
/// sleeps on a modelled doorbell, so that loom checks this skeleton exactly as the library
/// runs it.
pub(crate) trait Sleeper {
    /// What ends a wait other than its condition (the peer's death).
    type End;
    /// The error of a failed barrier or sleep.
    type Error;

    /// Called between the announcement and the re-check: on a membarrier channel, the
    /// `membarrier(2)` that makes the peer's thread execute the fence its notify left out.
    fn barrier(&mut self) -> Result<(), Self::Error>;

    /// Sleeps until woken (a ring, or anything that may have changed the outcome).
    /// `Ok(None)`: check again; `Ok(Some(end))`: the wait ends with `end` unless the
    /// condition holds after all.
    async fn sleep_once(&mut self) -> Result<Option<Self::End>, Self::Error>;
}

/// How [`wait`] ended.
pub(crate) enum Waited<R, E> {
    /// The condition returned `Some`.
    Ready(R),
    /// The sleeper ended the wait, and the condition still does not hold.
    Ended(E),
}

/// The waiter's first half, after any spinning: announce, barrier, re-check. `Some`: the
/// condition holds after all (the announcement is retracted); `None`: the waiter must now
/// sleep until woken (the announcement stands, so a notifier rings). [`wait`] runs it in a
/// loop around its sleeps; an event loop that sleeps itself runs it through
/// `Waiter::prepare` (`ReaderFront::prepare_wait`).
pub(crate) fn prepare<R, S: Sleeper>(
    waiting: &AtomicU32,
    sleeper: &mut S,
    check: &mut impl FnMut() -> Option<R>,
) -> Result<Option<R>, S::Error> {
    announce(waiting);
    if let Err(e) = sleeper.barrier() {
        retract(waiting);
        return Err(e);
    }
    if let Some(r) = check() {
        retract(waiting);
        return Ok(Some(r));
    }
    Ok(None)
}

/// The waiter's side of the eventcount, after any spinning: announce, barrier, re-check,
/// sleep; until `check` returns `Some` or the sleeper ends the wait. The caller checked
/// once before (and found nothing).
pub(crate) async fn wait<R, S: Sleeper>(
    waiting: &AtomicU32,
    sleeper: &mut S,
    mut check: impl FnMut() -> Option<R>,
) -> Result<Waited<R, S::End>, S::Error> {
    loop {
        if let Some(r) = prepare(waiting, sleeper, &mut check)? {
            return Ok(Waited::Ready(r));
        }
        // An error leaves the announcement standing: it costs the peer one spurious ring.
        if let Some(end) = sleeper.sleep_once().await? {
            retract(waiting);
            // The peer may have published (or closed properly) just before it went: check
            // once more.
            return Ok(match check() {
                Some(r) => Waited::Ready(r),
                None => Waited::Ended(end),
            });
        }
    }
}
