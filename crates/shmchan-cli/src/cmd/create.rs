//! `shmchan create`: a persistent channel, created and left for others to open.

use shmchan::{ElementType, Options, RawChannel};

use crate::cli::CreateArgs;
use crate::fail::Fail;

pub(crate) fn run(a: CreateArgs) -> Result<(), Fail> {
    let mut o = Options::new()
        .capacity(a.capacity)
        .mode(a.mode)
        .barrier(a.barrier.into())
        .persist(true);
    if let Some(s) = &a.schema {
        o = o.schema(s.clone());
    }
    let chan = RawChannel::create(&a.name, ElementType::primitive(a.ty), o)?;
    eprintln!(
        "created channel '{}': {} × {}, {} bytes of ring",
        a.name,
        chan.capacity(),
        a.ty,
        chan.capacity() * a.ty.size() as usize
    );
    Ok(())
}
