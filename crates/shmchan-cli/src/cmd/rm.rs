//! `shmchan rm`: removes channels and all their files; refuses one that a live process has
//! open, unless `--force`.

use shmchan::{ChannelInfo, ChannelIo, Removal};

use crate::cli::RmArgs;
use crate::fail::Fail;

/// Who holds a channel that `rm` refuses to remove.
fn holders(i: &ChannelInfo) -> String {
    let mut v = Vec::new();
    if i.writer.held {
        v.push(format!("writer pid {}", i.writer.pid.unwrap_or(0)));
    }
    if i.reader.held {
        v.push(format!("reader pid {}", i.reader.pid.unwrap_or(0)));
    }
    if v.is_empty() {
        "a live process has it open".to_string()
    } else {
        format!("held by a live {}", v.join(" and "))
    }
}

pub(crate) fn run(a: RmArgs) -> Result<(), Fail> {
    for name in &a.names {
        if let Err(e) = shmchan::validate_name(name) {
            return Err(Fail::usage(format!("invalid channel name \"{name}\": {e}")));
        }
    }
    let mut failed = false;
    for name in &a.names {
        let r = if a.force {
            match ChannelIo::remove(name) {
                Ok(()) => Ok(Removal::Removed),
                Err(e) if e.kind() == shmchan::ErrorKind::NotFound => Ok(Removal::NotFound),
                Err(e) => Err(e),
            }
        } else {
            // Decided and removed under the channel's lock: nobody can open it in between.
            ChannelIo::remove_unused(name, |_| true)
        };
        match r {
            Ok(Removal::Removed) => {}
            Ok(Removal::NotFound) if a.force => {}
            Ok(Removal::NotFound) => {
                eprintln!(
                    "shmchan: channel '{name}' does not exist (no {})",
                    shmchan::channel_dir(name).display()
                );
                failed = true;
            }
            Ok(_) => {
                let who = ChannelIo::inspect(name)
                    .map(|i| holders(&i))
                    .unwrap_or_else(|_| "open in a live process".to_string());
                eprintln!("shmchan: channel '{name}' is {who}; stop it first, or use --force");
                failed = true;
            }
            Err(e) => {
                eprintln!("shmchan: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Fail::channel("")); // each failure was reported above
    }
    Ok(())
}
