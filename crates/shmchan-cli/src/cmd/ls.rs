//! `shmchan ls`: every channel on this machine, as a table or JSON.

use crate::cli::LsArgs;
use crate::fail::Fail;
use crate::output::{print_json, print_table, to_json, InfoJson};

pub(crate) fn run(a: LsArgs) -> Result<(), Fail> {
    let all = super::list()?;
    if a.json {
        let v: Vec<InfoJson> = all.iter().map(|(n, r)| to_json(n, r)).collect();
        return print_json(&v);
    }
    print_table(&all);
    Ok(())
}
