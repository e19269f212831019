//! `shmchan inspect`: one channel's header in detail, validated, as text or JSON.

use shmchan::ChannelIo;

use crate::cli::InspectArgs;
use crate::fail::Fail;
use crate::output::{print_detail, print_json, to_json};

pub(crate) fn run(a: InspectArgs) -> Result<(), Fail> {
    let r = ChannelIo::inspect(&a.name);
    if a.json {
        print_json(&to_json(&a.name, &r))?;
        // The JSON says what is wrong; the exit status and stderr say it too, without the
        // hints the other commands add.
        return r.map(|_| ()).map_err(Fail::channel);
    }
    print_detail(&r?);
    Ok(())
}
