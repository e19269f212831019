//! `shmchan gc`: removes every channel that no live process holds, except persistent ones
//! and ones whose items or end of stream still wait for a reader (unless `--all`); also the
//! temporary directories of creators that were killed.

use std::io::{self, Write};

use shmchan::{ChannelInfo, ChannelIo, Error, Removal, WriterState};

use crate::cli::GcArgs;
use crate::fail::Fail;
use crate::output::{escape, state_word};

pub(crate) fn run(a: GcArgs) -> Result<(), Fail> {
    let names: Vec<String> = super::list()?.into_iter().map(|(n, _)| n).collect();
    let me = rustix::process::geteuid().as_raw();
    let mut out = io::stdout().lock();
    let mut errors = 0;
    for name in &names {
        let line = match collect(name, &a, me) {
            Ok(Some(line)) => line,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("shmchan: {}", escape(&e.to_string()));
                errors += 1;
                continue;
            }
        };
        // Names and errors from the directory and the segments: escaped.
        if writeln!(out, "{}", escape(&line)).is_err() {
            return Ok(());
        }
    }
    errors += leftovers(&mut out, a.dry_run);
    if errors > 0 {
        return Err(Fail::channel(format!("{errors} removals failed")));
    }
    Ok(())
}

/// Why `gc` keeps a channel (`None`: it may go), decided on its header (or on why that
/// could not be read); `me` is our effective uid.
fn keep_reason(r: Result<&ChannelInfo, &Error>, name: &str, all: bool, me: u32) -> Option<String> {
    match r {
        Ok(i) if i.owner_uid != me && me != 0 => Some("another user's".to_string()),
        Ok(i) if i.persist && !all => Some(format!("persistent (use --all, or shmchan rm {name})")),
        Ok(i) if i.has_undelivered() && !all => Some(format!(
            "{} items{} wait for a reader (use --all)",
            i.len(),
            if i.writer_state == WriterState::Open {
                ""
            } else {
                " and the end of stream"
            }
        )),
        Ok(_) => None,
        Err(e) if !all => Some(format!("not a readable channel ({e}); use --all")),
        Err(_) => None,
    }
}

/// Removes channel `name` if it may go (or, with --dry-run, only decides); returns the line
/// to print, if any.
fn collect(name: &str, a: &GcArgs, me: u32) -> Result<Option<String>, Error> {
    let mut why = String::new();
    let mut removable = false;
    // Decided under the channel's lock, on the header as it is then.
    let decide = |r: Result<&ChannelInfo, &Error>| match keep_reason(r, name, a.all, me) {
        Some(k) => {
            why = k;
            false
        }
        None => {
            why = match r {
                Ok(i) => state_word(i).to_string(),
                Err(_) => "not a readable channel".to_string(),
            };
            removable = true;
            !a.dry_run
        }
    };
    let r = ChannelIo::remove_unused(name, decide)?;
    Ok(match r {
        Removal::Removed => Some(format!("removed {name} ({why})")),
        Removal::Kept if removable => Some(format!("would remove {name} ({why})")),
        Removal::Kept => Some(format!("kept    {name}: {why}")),
        Removal::InUse => Some(format!("kept    {name}: open in a live process")),
        // NotFound (removed meanwhile), or what a later library may add: nothing to say.
        _ => None,
    })
}

/// Removes the temporary directories of creators that were killed (with --dry-run, only
/// names them); returns how many removals failed.
fn leftovers(out: &mut impl Write, dry_run: bool) -> usize {
    let mut errors = 0;
    for dir in ChannelIo::leftovers().unwrap_or_default() {
        if dry_run {
            let _ = writeln!(
                out,
                "would remove {} (left by a killed process)",
                escape(&dir.display().to_string())
            );
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                let _ = writeln!(
                    out,
                    "removed {} (left by a killed process)",
                    escape(&dir.display().to_string())
                );
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!(
                    "shmchan: removing {}: {e}",
                    escape(&dir.display().to_string())
                );
                errors += 1;
            }
        }
    }
    errors
}
