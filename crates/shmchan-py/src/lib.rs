//! `shmchan._shmchan`: the native half of the `shmchan` Python package.
//!
//! A thin layer over the library's raw ends ([`shmchan::RawChannel`]) and message ends
//! ([`shmchan::MessageChannel`]): copies between numpy arrays (or bytes-likes) and the ring,
//! the frames of pickled values (`frame`), the non-blocking calls and the event-loop
//! interface that the package's asyncio methods (in Python, `shmchan/*.py`) are built from,
//! the blocking twins (which sleep without the GIL), and the zero-copy leases. No protocol
//! logic of its own: every guarantee is the library's.

use pyo3::prelude::*;

mod admin;
mod channel;
mod dtype;
mod end;
mod errors;
mod frame;
mod lease;
mod message;
mod message_reader;
mod message_writer;
mod reader;
mod wait;
mod writer;

#[pymodule]
fn _shmchan(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<channel::Channel>()?;
    m.add_class::<reader::Reader>()?;
    m.add_class::<writer::Writer>()?;
    m.add_class::<lease::Lease>()?;
    m.add_class::<message::MessageChannelPy>()?;
    m.add_class::<message_reader::MessageReaderPy>()?;
    m.add_class::<message_writer::MessageWriterPy>()?;
    m.add_function(wrap_pyfunction!(admin::list, m)?)?;
    m.add_function(wrap_pyfunction!(admin::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(admin::remove, m)?)?;
    m.add_function(wrap_pyfunction!(admin::gc, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
