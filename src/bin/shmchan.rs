//! The `shmchan` command (placeholder until the CLI issue lands): removes channels.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["rm", names @ ..] if !names.is_empty() => {
            let mut code = ExitCode::SUCCESS;
            for name in names {
                if let Err(e) = shmchan::ChannelIo::remove(name) {
                    eprintln!("shmchan: {e}");
                    code = ExitCode::from(1);
                }
            }
            code
        }
        _ => {
            eprintln!("usage: shmchan rm NAME...");
            ExitCode::from(2)
        }
    }
}
