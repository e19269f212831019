//! Collecting unused channels (`ChannelIo::gc`) on real channels: what a live process holds
//! stays, what a killed one held goes, and what speaks for a channel keeps it.
//!
//! `gc` sweeps its whole base directory, so these tests give every child, the one that
//! collects included, a directory of their own (`SHMCHAN_DIR`): the other tests' channels,
//! and other users', are never in its way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use libtest_mimic::Failed;
use shmchan::{ChannelIo, GcAction, GcOptions, GcReason};
use shmchan_testkit::unique;

use crate::harness::{check, Peer, R};
use crate::roles::stream_env;

/// A channel directory of the test's own, removed (with whatever is left in it) on drop.
struct Private(PathBuf);

impl Private {
    fn new(tag: &str) -> Result<Private, String> {
        let dir = shmchan::base_dir().join(unique(tag));
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Private(dir))
    }

    /// The environment of a child that works on channel `name` (capacity 512) in here.
    fn env(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut e = stream_env(name, 0, 1, 512, 1);
        e.push(("SHMCHAN_DIR", self.0.display().to_string()));
        e
    }

    /// Whether channel `name`'s directory is (still) in here.
    fn has(&self, name: &str) -> bool {
        self.0.join(format!("shmchan.{name}")).exists()
    }

    /// What a collecting child reports, one line per channel or leftover: the name, then
    /// what was done and why (see [`role_gc`]), with `all` and `dry_run`.
    fn gc(&self, all: bool, dry_run: bool) -> Result<BTreeMap<String, String>, Failed> {
        let mut env = vec![("SHMCHAN_DIR", self.0.display().to_string())];
        if all {
            env.push(("ALL", "1".into()));
        }
        if dry_run {
            env.push(("DRY_RUN", "1".into()));
        }
        let out = Peer::spawn("gc", &env).success()?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, said)| (name.to_string(), said.to_string()))
            .collect())
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A temporary directory as a creator of channel `name` with pid `pid` leaves it, last
/// changed `age` ago.
fn plant_leftover(dir: &Path, name: &str, pid: u32, age: Duration) -> Result<PathBuf, String> {
    let path = dir.join(format!(".shmchan-tmp.{name}.{pid}.0.1"));
    std::fs::create_dir(&path).map_err(|e| e.to_string())?;
    std::fs::write(path.join("ring"), b"half made").map_err(|e| e.to_string())?;
    let when = SystemTime::now() - age;
    std::fs::File::open(&path)
        .and_then(|d| d.set_modified(when))
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// `want`, pairs of a name and what gc says of it, is exactly what `got` says.
fn says(got: &BTreeMap<String, String>, want: &[(&str, &str)]) -> R {
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    check(*got == want, format!("gc said {got:#?}, not {want:#?}"))
}

/// A channel a live child holds is kept, however stale its other end; the same channel is
/// collected once that child is killed with SIGKILL, and so is every channel whose holder
/// was. What speaks for a channel (items for a reader, persistence, files that are not a
/// channel) keeps it until `all`; only our leftovers whose process is gone and that are
/// older than a minute go. A dry run removes nothing.
pub fn gc_keeps_what_the_living_hold() -> R {
    let dir = Private::new("gc")?;
    let (held, dead_writer, dead_reader) = (unique("held"), unique("deadw"), unique("deadr"));
    let (items, persistent, junk) = (unique("items"), unique("persist"), unique("junk"));
    let mut holder = Peer::spawn("hold_writer", &dir.env(&held));
    check(holder.read_line()? == "ready", "holder not ready")?;
    let mut dead_pid = 0;
    for (name, role) in [(&dead_writer, "hold_writer"), (&dead_reader, "hold_reader")] {
        let mut p = Peer::spawn(role, &dir.env(name));
        check(p.read_line()? == "ready", format!("{role} not ready"))?;
        dead_pid = p.pid();
        p.kill9(); // and reaped: its pid names no process now
    }
    let mut e = dir.env(&items);
    e.push(("PUT", "5".into()));
    let mut p = Peer::spawn("hold_writer", &e);
    check(p.read_line()? == "ready", "writer of items not ready")?;
    p.kill9();
    let created = Peer::spawn("create_persist", &dir.env(&persistent)).success()?;
    check(
        created == "created",
        format!("create_persist said {created:?}"),
    )?;
    let junk_dir = dir.0.join(format!("shmchan.{junk}"));
    std::fs::create_dir(&junk_dir).map_err(|e| e.to_string())?;
    std::fs::write(junk_dir.join("ring"), vec![0x5a; 10_000]).map_err(|e| e.to_string())?;
    let minutes = Duration::from_secs(120);
    let lost = plant_leftover(&dir.0, "lost", dead_pid, minutes)?;
    // Too young (a creation may be under way), or its process lives: not leftovers.
    let young = plant_leftover(&dir.0, "young", dead_pid, Duration::ZERO)?;
    let alive = plant_leftover(&dir.0, "alive", holder.pid(), minutes)?;
    let path = |name: &str| dir.0.join(format!("shmchan.{name}")).display().to_string();
    let stale = |verb: &str, name: &str| format!("{verb} stale {}", path(name));

    let got = dir.gc(false, true)?;
    says(
        &got,
        &[
            (&held, &format!("kept in_use {}", path(&held))),
            (&dead_writer, &stale("would_remove", &dead_writer)),
            (&dead_reader, &stale("would_remove", &dead_reader)),
            (
                &items,
                &format!("kept undelivered:5:false {}", path(&items)),
            ),
            (
                &persistent,
                &format!("kept persistent {}", path(&persistent)),
            ),
            (
                &junk,
                &format!("kept unreadable:NotAChannel {}", path(&junk)),
            ),
            ("lost", &format!("would_remove leftover {}", lost.display())),
        ],
    )?;
    let all_there = [
        &held,
        &dead_writer,
        &dead_reader,
        &items,
        &persistent,
        &junk,
    ]
    .iter()
    .all(|n| dir.has(n));
    check(all_there && lost.exists(), "a dry run removed something")?;

    let got = dir.gc(false, false)?;
    says(
        &got,
        &[
            (&held, &format!("kept in_use {}", path(&held))),
            (&dead_writer, &stale("removed", &dead_writer)),
            (&dead_reader, &stale("removed", &dead_reader)),
            (
                &items,
                &format!("kept undelivered:5:false {}", path(&items)),
            ),
            (
                &persistent,
                &format!("kept persistent {}", path(&persistent)),
            ),
            (
                &junk,
                &format!("kept unreadable:NotAChannel {}", path(&junk)),
            ),
            ("lost", &format!("removed leftover {}", lost.display())),
        ],
    )?;
    check(
        dir.has(&held) && !dir.has(&dead_writer) && !dir.has(&dead_reader),
        "the held channel went, or a dead holder's stayed",
    )?;
    check(
        !lost.exists() && young.exists() && alive.exists(),
        "leftovers: the old one of a dead process stays, or another went",
    )?;

    // `all` overrides what speaks for a channel, never a live holder.
    let got = dir.gc(true, false)?;
    says(
        &got,
        &[
            (&held, &format!("kept in_use {}", path(&held))),
            (&items, &stale("removed", &items)),
            (
                &persistent,
                &format!("removed unused {}", path(&persistent)),
            ),
            (
                &junk,
                &format!("removed unreadable:NotAChannel {}", path(&junk)),
            ),
        ],
    )?;
    check(
        dir.has(&held) && !dir.has(&items) && !dir.has(&persistent) && !dir.has(&junk),
        "all: the held channel went, or another stayed",
    )?;

    // The holder dies: the very channel it held goes now, and so does the old directory
    // named after its pid.
    holder.kill9();
    let got = dir.gc(false, false)?;
    says(
        &got,
        &[
            (&held, &stale("removed", &held)),
            ("alive", &format!("removed leftover {}", alive.display())),
        ],
    )?;
    check(
        !dir.has(&held) && !alive.exists() && young.exists(),
        "the killed holder's channel or leftover stayed, or the young leftover went",
    )
}

/// Collects the channels of its `SHMCHAN_DIR` (with ALL and DRY_RUN as set) and prints a
/// line for each: its name, what was done (`removed`, `would_remove`, `kept`, `failed`), why
/// (`stale`, `unused`... for a channel in use by nobody, `leftover`, `in_use`,
/// `undelivered:ITEMS:END_OF_STREAM`, `persistent`, `unreadable:KIND`, `other_user:UID`),
/// and its path.
pub fn role_gc() -> Result<(), String> {
    let options = GcOptions::new()
        .all(std::env::var("ALL").is_ok())
        .dry_run(std::env::var("DRY_RUN").is_ok());
    for c in ChannelIo::gc(options).map_err(|e| e.to_string())? {
        let (done, why) = match &c.action {
            GcAction::Removed(why) => ("removed", why),
            GcAction::WouldRemove(why) => ("would_remove", why),
            GcAction::Kept(why) => ("kept", why),
            GcAction::Failed(e) => {
                println!("{} failed:{:?} {}", c.name, e.kind(), c.path.display());
                continue;
            }
            other => return Err(format!("{}: {other:?}", c.name)),
        };
        let why = match why {
            GcReason::NotInUse(state) => state.to_string(),
            GcReason::Leftover if c.leftover => "leftover".to_string(),
            GcReason::Unreadable(e) => format!("unreadable:{:?}", e.kind()),
            GcReason::InUse => "in_use".to_string(),
            GcReason::OtherUser(uid) => format!("other_user:{uid}"),
            GcReason::Persistent => "persistent".to_string(),
            GcReason::Undelivered {
                items,
                end_of_stream,
            } => format!("undelivered:{items}:{end_of_stream}"),
            other => format!("unexpected:{other:?}"),
        };
        println!("{} {done} {why} {}", c.name, c.path.display());
    }
    Ok(())
}
