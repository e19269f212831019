//! `shmchan gc`: prints what the library's collection of unused channels
//! ([`ChannelIo::gc`]) did, one line per channel or leftover directory, and each failure on
//! stderr.

use std::io::{self, Write};

use shmchan::{ChannelIo, Collected, GcAction, GcOptions, GcReason};

use crate::cli::GcArgs;
use crate::fail::Fail;
use crate::output::escape;

pub(crate) fn run(a: GcArgs) -> Result<(), Fail> {
    let done = ChannelIo::gc(GcOptions::new().all(a.all).dry_run(a.dry_run)).map_err(|e| {
        Fail::channel(format!(
            "cannot read {}: {e}",
            shmchan::base_dir().display()
        ))
    })?;
    let mut out = io::stdout().lock();
    let mut errors = 0;
    for c in &done {
        match line(c) {
            Ok(None) => {}
            // Names, paths and errors from the directory and the segments: escaped.
            Ok(Some(line)) => {
                if writeln!(out, "{}", escape(&line)).is_err() {
                    return Ok(());
                }
            }
            Err(e) => {
                eprintln!("shmchan: {}", escape(&e));
                errors += 1;
            }
        }
    }
    if errors > 0 {
        return Err(Fail::channel(format!("{errors} removals failed")));
    }
    Ok(())
}

/// The line to print for `c` (if any), or the error line for stderr.
fn line(c: &Collected) -> Result<Option<String>, String> {
    let name = &c.name;
    // A leftover directory is named by its path, a channel by its name.
    let what = if c.leftover {
        c.path.display().to_string()
    } else {
        name.clone()
    };
    Ok(Some(match &c.action {
        GcAction::Removed(why) => format!("removed {what} ({})", gone_because(why)),
        GcAction::WouldRemove(why) => format!("would remove {what} ({})", gone_because(why)),
        GcAction::Kept(why) => format!("kept    {what}: {}", kept_because(why, name)),
        GcAction::Failed(e) if c.leftover => {
            let cause = std::error::Error::source(e).map_or(e.to_string(), |s| s.to_string());
            return Err(format!("removing {what}: {cause}"));
        }
        GcAction::Failed(e) => return Err(e.to_string()),
        // What a later library may add: nothing to say.
        _ => return Ok(None),
    }))
}

/// Why something goes, in the words of `gc`'s lines.
fn gone_because(why: &GcReason) -> String {
    match why {
        GcReason::NotInUse(state) => state.to_string(),
        GcReason::Leftover => "left by a killed process".to_string(),
        GcReason::Unreadable(_) => "not a readable channel".to_string(),
        other => format!("{other:?}"),
    }
}

/// Why channel `name` stays, and what would remove it.
fn kept_because(why: &GcReason, name: &str) -> String {
    match why {
        GcReason::InUse => "open in a live process".to_string(),
        GcReason::OtherUser(_) => "another user's".to_string(),
        GcReason::Persistent => format!("persistent (use --all, or shmchan rm {name})"),
        GcReason::Undelivered {
            items,
            end_of_stream,
        } => format!(
            "{items} items{} wait for a reader (use --all)",
            if *end_of_stream {
                " and the end of stream"
            } else {
                ""
            }
        ),
        GcReason::Unreadable(e) => format!("not a readable channel ({e}); use --all"),
        other => format!("{other:?}"),
    }
}
