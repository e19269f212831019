//! End claims and peer liveness.
//!
//! Claiming an end takes an exclusive OFD lock on that end's byte of the segment file. The
//! kernel releases it when the holder's descriptor closes — in particular when the holder is
//! killed — so "is the peer alive" is "is the peer end's byte locked", with no pid check and
//! therefore no pid-reuse race. The pid (and start time) recorded in the header serve only
//! to find a process to watch with a pidfd while sleeping, and for the CLI.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Context, Error, ErrorKind};
use crate::header::{End, OPEN};
use crate::segment::{end_byte, ofd_lock, ofd_lock_held, Segment};

/// What the lock and the header say about the peer end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerStatus {
    /// Nobody ever claimed it.
    NeverClaimed,
    /// Held by a live process (or through this very handle).
    Alive {
        claims: u64,
        pid: u32,
        start_time: u64,
    },
    /// Claimed before (`claims` times), but no longer held: its holder closed it or died.
    Gone { claims: u64 },
}

/// Probes the lock of `peer`. One `fcntl` (none if this handle holds the end itself).
pub(crate) fn peer_status(seg: &Segment, peer: End) -> io::Result<PeerStatus> {
    let rec = seg.header().end(peer);
    // Acquire: pairs with the Release increment in `claim`, so the pid read below is the one
    // that holder wrote.
    let claims = rec.claims.load(Ordering::Acquire);
    let pid = rec.pid.load(Ordering::Relaxed);
    let start_time = rec.start_time.load(Ordering::Relaxed);
    if seg.claimed_local(peer) {
        // Our own handle's lock is invisible to F_OFD_GETLK through the same descriptor.
        return Ok(PeerStatus::Alive {
            claims,
            pid,
            start_time,
        });
    }
    if ofd_lock_held(seg.fd(), end_byte(peer))? {
        return Ok(PeerStatus::Alive {
            claims,
            pid,
            start_time,
        });
    }
    Ok(if claims == 0 {
        PeerStatus::NeverClaimed
    } else {
        PeerStatus::Gone { claims }
    })
}

/// A claimed end: holds the end's lock until dropped.
pub(crate) struct Claim {
    pub(crate) seg: Arc<Segment>,
    end: End,
}

impl Claim {
    /// Takes the lock of `end` of `seg` for this process and checks the channel is not
    /// closed; [`publish`](Self::publish) then makes the claim visible.
    pub(crate) fn take(seg: &Arc<Segment>, end: End) -> Result<Claim, Error> {
        let h = seg.header();
        let taken = || {
            let pid = Some(h.end(end).pid.load(Ordering::Relaxed)).filter(|p| *p != 0);
            Error::new(ErrorKind::EndTaken, seg.name())
                .with_context(Context::Holder { end, pid })
                .by(end)
        };
        if !seg.in_owner_process() {
            // A child forked without exec shares our open file description, so the lock
            // would not stop two holders of one end.
            return Err(Error::new(ErrorKind::Forked, seg.name()).by(end));
        }
        // Before the end records its fork generation (`EndCore::claim`): from here on, a
        // fork changes the generation in the child.
        crate::fork::register().map_err(|source| {
            Error::io(seg.name(), "registering a fork handler", source).by(end)
        })?;
        // Our start time, read once per process (a /proc read) before we lock, so that
        // `publish` records it at once.
        let _ = own_start_time();
        if !seg.claim_local(end) {
            return Err(taken());
        }
        match ofd_lock(seg.fd(), end_byte(end), libc::F_WRLCK, false) {
            Ok(true) => {}
            Ok(false) => {
                seg.release_local(end);
                return Err(taken());
            }
            Err(source) => {
                seg.release_local(end);
                return Err(Error::io(seg.name(), "locking the end", source).by(end));
            }
        }
        let claim = Claim {
            seg: Arc::clone(seg),
            end,
        };
        // Acquire: pairs with the Release store of a closing end's state.
        let rs = h.reader_state.load(Ordering::Acquire);
        let ws = h.writer_state.load(Ordering::Acquire);
        let closed_by = if rs != OPEN {
            Some(End::Reader)
        } else if end == End::Writer && ws != OPEN {
            Some(End::Writer)
        } else {
            None
        };
        if let Some(by) = closed_by {
            return Err(Error::new(ErrorKind::Closed, seg.name())
                .with_context(Context::ClosedBy(by))
                .by(end));
        }
        Ok(claim)
    }

    /// Records this process as the end's holder, so the peer can watch it. Called once the
    /// front is fully set up: a claim that fails before this was never visible (the peer
    /// saw the end as never claimed, or as its previous holder left it).
    pub(crate) fn publish(&self) {
        let rec = self.seg.header().end(self.end);
        // Read (and cached) in `take`, before the lock: a peer that probes our end between
        // our lock and these stores sees no holder to watch, and re-checks on a timer.
        let start_time = own_start_time();
        // Relaxed stores published by the Release store of `claims` below.
        rec.pid.store(std::process::id(), Ordering::Relaxed);
        rec.start_time.store(start_time, Ordering::Relaxed);
        // Release: a peer that reads this claim count with Acquire sees our pid above.
        // Only the lock holder writes this word, so load + store cannot lose an update.
        let c = rec.claims.load(Ordering::Relaxed);
        rec.claims
            .store(c.wrapping_add(1).max(1), Ordering::Release);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // In a child forked without exec the lock is the parent's (shared open file
        // description): leave it.
        if self.seg.in_owner_process() {
            let _ = ofd_lock(self.seg.fd(), end_byte(self.end), libc::F_UNLCK, false);
            self.seg.release_local(self.end);
        }
    }
}

/// `/proc/self/stat` field 22 (start time in clock ticks since boot), 0 if unreadable.
/// Cached per pid, so a child forked without exec records its own.
pub(crate) fn own_start_time() -> u64 {
    static START: std::sync::Mutex<(u32, u64)> = std::sync::Mutex::new((0, 0));
    let pid = std::process::id();
    let mut cached = START.lock().unwrap_or_else(|p| p.into_inner());
    if cached.0 != pid {
        *cached = (pid, process_start_time(pid).unwrap_or(0));
    }
    cached.1
}

/// Start time of process `pid` (field 22 of `/proc/PID/stat`), if it exists.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}
