//! `shmchan create`: a persistent channel, created and left for others to open.

use bytemuck::Pod;
use shmchan::{ChannelIo, Options};

use crate::cli::CreateArgs;
use crate::fail::Fail;

pub(crate) fn run(a: CreateArgs) -> Result<(), Fail> {
    fn go<T: Pod>(a: &CreateArgs) -> Result<(), Fail> {
        let mut o = Options::new()
            .capacity(a.capacity)
            .mode(a.mode)
            .barrier(a.barrier.into())
            .persist(true);
        if let Some(s) = &a.schema {
            o = o.schema(s.clone());
        }
        let chan = ChannelIo::<T>::create(&a.name, o)?;
        eprintln!(
            "created channel '{}': {} × {}, {} bytes of ring",
            a.name,
            chan.capacity(),
            a.ty,
            chan.capacity() * std::mem::size_of::<T>()
        );
        Ok(())
    }
    with_type!(a.ty, go(&a))
}
