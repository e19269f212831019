//! `shmchan`: see, feed, drain and clean shared-memory channels from a shell.
//!
//! Exit status: 0 on success, 1 on a channel error, 2 on a usage error.
//!
//! Modules: [`cli`] the clap types, [`cmd`] one module per subcommand, [`output`] the tables
//! and JSON of `ls` and `inspect`, [`fail`] the failure and its exit status.

mod cli;
mod cmd;
mod fail;
mod output;
mod text;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Send(_) | Cmd::Recv(_)) {
        // Listing commands die quietly when their reader goes away, like other Unix tools
        // (`shmchan ls | head -1`). send and recv keep Rust's SIGPIPE-ignored default: they
        // handle EPIPE themselves and close their end of the channel properly.
        // SAFETY: setting a signal's disposition to its default is async-signal-safe and
        // happens before any other thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let r = match cli.cmd {
        Cmd::Create(a) => cmd::create::run(a),
        Cmd::Send(a) => cmd::send::run(a),
        Cmd::Recv(a) => cmd::recv::run(a),
        Cmd::Ls(a) => cmd::ls::run(a),
        Cmd::Inspect(a) => cmd::inspect::run(a),
        Cmd::Rm(a) => cmd::rm::run(a),
        Cmd::Gc(a) => cmd::gc::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.msg.is_empty() {
                // Messages quote names, tags and reasons from segments: escaped.
                eprintln!("shmchan: {}", output::escape(&f.msg));
            }
            ExitCode::from(f.code)
        }
    }
}
