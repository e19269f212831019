//! `shmchan._shmchan`: the native half of the `shmchan` Python package.
//!
//! A thin layer over the library's raw ends ([`shmchan::RawChannel`]): copies between numpy
//! arrays and the ring, the non-blocking calls and the event-loop interface that the
//! package's asyncio methods (in Python, `shmchan/__init__.py`) are built from, the
//! blocking twins (which sleep without the GIL), and the zero-copy leases. No protocol logic
//! of its own: every guarantee is the library's.

use pyo3::prelude::*;

mod admin;
mod channel;
mod dtype;
mod end;
mod errors;
mod lease;
mod reader;
mod wait;
mod writer;

#[pymodule]
fn _shmchan(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<channel::Channel>()?;
    m.add_class::<reader::Reader>()?;
    m.add_class::<writer::Writer>()?;
    m.add_class::<lease::Lease>()?;
    m.add_function(wrap_pyfunction!(admin::list, m)?)?;
    m.add_function(wrap_pyfunction!(admin::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(admin::remove, m)?)?;
    m.add_function(wrap_pyfunction!(admin::gc, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
