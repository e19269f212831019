//! `_Lease`: a zero-copy view of ring slots, lent to Python as an ndarray, and taken back.
//!
//! # The rule
//!
//! A lease's array (an instance of `shmchan._view.SlotArray`, an ndarray subclass) points
//! into the shared ring. When the lease ends (the `with` block's exit, or the end's close),
//! the slots go back to the peer, who will reuse them. So at that moment:
//!
//! - the array, and every view derived from it (slices, reshapes, `.view()`: numpy gives
//!   them the subclass, whose `__array_finalize__` registers them here), are *emptied*:
//!   their length becomes 0, so no later read or write reaches the slots;
//! - anything else still holding the array (a `memoryview`, `np.asarray(view)` of the base
//!   class, a record scalar of a structured array, a second name) could still reach the
//!   slots: the lease then refuses to consume or commit, and raises `BufferError` (nothing is
//!   consumed or committed; the items stay readable, and the lease stays open until it is
//!   released again or the end is closed).
//!
//! The check in the second point is a lint, not a proof: something built on a *derived*
//! view (`np.asarray(view[1:])`) holds that view, not the array, and is not seen. What is
//! guaranteed whatever the program does is memory safety: the lease keeps the channel's
//! memory mapped as long as anything made from its array lives, so a stale reference reads
//! old or reused values of mapped memory, never an unmapped page.
//!
//! # What a lease holds
//!
//! Everything made from the array keeps the lease alive, so the lease holds nothing that
//! would keep the channel or its end from going:
//!
//! - the memory, through a [`KeepMapped`], not a channel handle: the channel closes and is
//!   removed as if the lease did not exist (its files go; the memory stays mapped until the
//!   last reference to the array goes);
//! - its end (the `_Reader` or `_Writer`), through a weak reference: the end holds its open
//!   lease, and a strong reference back would make a cycle that no collector sees (neither
//!   class takes part in the cyclic GC), so an end dropped while a view stayed open (its
//!   exit raised `BufferError`) would never close, and the channel would stay behind after
//!   the process exits. An end that goes ends its lease first (`Held`'s `Drop`).
//!
//! The array and the lease refer to each other (the array's base is the lease, and the lease
//! holds the array until it ends): every way a lease ends (its release, the end's close,
//! leave or drop) lets go of the array.
//!
//! Only what shares the memory is in danger; copies (`view.copy()`, `np.array(view)`,
//! arithmetic results) own their data and are free to keep.

use numpy::npyffi::{self, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyBufferError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyType, PyWeakrefMethods, PyWeakrefReference};
use shmchan::KeepMapped;

use crate::message_reader::MessageReaderPy;
use crate::message_writer::MessageWriterPy;
use crate::reader::Reader;
use crate::writer::Writer;

static SLOT_ARRAY: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Ring slots lent out as an array (the package's view context managers hold one).
#[pyclass(module = "shmchan._shmchan", name = "_Lease")]
pub(crate) struct Lease {
    /// The `_Reader` or `_Writer` that lent the slots, weakly (see the module's docs): dead
    /// only once the end has gone, which ended the lease first.
    owner: Py<PyWeakrefReference>,
    /// Keeps the channel's memory, which the array points into, mapped for as long as the
    /// lease lives, and every array, memoryview or record made from the array keeps the
    /// lease alive (its base chain ends here). So even a reference that outlives the lease
    /// (see the rule) reads mapped memory, never an unmapped page, whatever the owner does
    /// (close, or its collection), and whatever becomes of the channel's files.
    _mapping: KeepMapped,
    /// The lent memory: `start .. start + bytes`.
    start: usize,
    bytes: usize,
    /// Slots: commit on release (else consume).
    writable: bool,
    /// Elements lent.
    elements: usize,
    /// Messages lent, for a message reader's lease (what its release consumes).
    pub(crate) messages: usize,
    /// The array, until the lease ends.
    array: Option<Py<PyAny>>,
    /// Weak references to the views derived from the array.
    derived: Vec<Py<PyWeakrefReference>>,
}

impl Lease {
    /// Lends `elements` elements of `dtype` at `ptr` (in `mapping`, ours until consumed or
    /// committed) as a new lease of `owner`'s, and its array.
    pub(crate) fn lend(
        py: Python<'_>,
        owner: &Bound<'_, PyAny>,
        mapping: KeepMapped,
        dtype: Py<PyArrayDescr>,
        ptr: *mut u8,
        elements: usize,
        writable: bool,
    ) -> PyResult<Py<Lease>> {
        let bytes = elements * dtype.bind(py).itemsize();
        if !mapping.contains(ptr, bytes) {
            return Err(PyRuntimeError::new_err(
                "shmchan: lent slots outside the channel's mapping (a bug)",
            ));
        }
        let owner = PyWeakrefReference::new(owner)?.unbind();
        let lease = Py::new(
            py,
            Lease {
                owner,
                _mapping: mapping,
                start: ptr as usize,
                bytes,
                writable,
                elements,
                messages: 1,
                array: None,
                derived: Vec::new(),
            },
        )?;
        let subtype = SLOT_ARRAY.get_or_try_init(py, || {
            py.import("shmchan._view")?
                .getattr("SlotArray")?
                .cast_into::<PyType>()
                .map(Bound::unbind)
                .map_err(PyErr::from)
        })?;
        let mut dims = [elements as npyffi::npy_intp];
        let mut flags = npyffi::NPY_ARRAY_C_CONTIGUOUS | npyffi::NPY_ARRAY_ALIGNED;
        if writable {
            flags |= npyffi::NPY_ARRAY_WRITEABLE;
        }
        // NewFromDescr steals the descriptor reference we pass (`into_dtype_ptr` hands one
        // over); numpy fails the call if the subtype is not an ndarray subclass.
        // SAFETY: `ptr` is valid for `elements × itemsize` bytes (inside the mapping, checked
        // above), aligned for the dtype (the ring's slots are), and stays mapped while the
        // lease lives (`_mapping`), which the array's base keeps alive; numpy does not free
        // memory it does not own.
        let array = unsafe {
            let raw = PY_ARRAY_API.PyArray_NewFromDescr(
                py,
                subtype.as_ptr().cast(),
                dtype.bind(py).clone().into_dtype_ptr(),
                1,
                dims.as_mut_ptr(),
                std::ptr::null_mut(),
                ptr.cast(),
                flags,
                std::ptr::null_mut(),
            );
            Bound::from_owned_ptr_or_err(py, raw)?
        };
        // SAFETY: `array` is the new ndarray; SetBaseObject steals the lease reference we
        // pass, and makes the lease the array's base (so every derived view keeps it alive).
        let rc = unsafe {
            PY_ARRAY_API.PyArray_SetBaseObject(
                py,
                array.as_ptr().cast(),
                lease.clone_ref(py).into_ptr(),
            )
        };
        if rc != 0 {
            return Err(PyErr::fetch(py));
        }
        lease.borrow_mut(py).array = Some(array.unbind());
        Ok(lease)
    }

    /// Ends `lease` without consuming or committing: empties its array and views, and lets
    /// go of the array (the owner is closing, leaving or going).
    pub(crate) fn revoke(py: Python<'_>, lease: &Py<Lease>) {
        if let Ok(mut me) = lease.try_borrow_mut(py) {
            me.empty_all(py);
        }
    }

    /// References to the array beyond the lease's own and its live views' (each view holds
    /// the array as its base): a name bound to it, or something that may still reach the
    /// slots.
    fn extra_references(&self, py: Python<'_>) -> isize {
        let Some(array) = &self.array else {
            return 0;
        };
        let live = self
            .derived
            .iter()
            .filter(|w| w.bind(py).upgrade().is_some())
            .count() as isize;
        // SAFETY: `array` is a live object (we hold a reference) and we hold the GIL.
        let count = unsafe { pyo3::ffi::Py_REFCNT(array.as_ptr()) };
        count - 1 - live
    }

    /// Empties the array and its registered views, and ends the lease.
    fn empty_all(&mut self, py: Python<'_>) {
        let Some(array) = self.array.take() else {
            return;
        };
        for w in self.derived.drain(..) {
            if let Some(view) = w.bind(py).upgrade() {
                empty(&view);
            }
        }
        empty(array.bind(py));
    }
}

/// Makes `array` (an ndarray we lent, or a view of it) zero-length, and read-only, so no
/// later access reaches the slots.
fn empty(array: &Bound<'_, PyAny>) {
    // A zero first dimension makes its size 0 whatever its other dimensions; numpy
    // recomputes sizes from the dimensions on every use. Views of no dimensions have no
    // length to zero: `register` refuses them.
    // SAFETY: `array` is an ndarray (the lease's, or a view `register` checked) and we hold
    // the GIL, so no other thread uses its fields now.
    unsafe {
        let f = npyffi::_PyArray_GET_ITEM_DATA(array.as_ptr().cast());
        if (*f).nd >= 1 && !(*f).dimensions.is_null() {
            *(*f).dimensions = 0;
        }
        (*f).flags &= !npyffi::NPY_ARRAY_WRITEABLE;
    }
}

#[pymethods]
impl Lease {
    /// The lent slots as an ndarray (None once the lease ended).
    #[getter]
    fn array(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.array.as_ref().map(|a| a.clone_ref(py))
    }

    /// Elements lent.
    #[getter]
    fn elements(&self) -> usize {
        self.elements
    }

    /// Called by `SlotArray.__array_finalize__` for each view made from the array.
    fn register(&mut self, py: Python<'_>, view: &Bound<'_, PyUntypedArray>) -> PyResult<()> {
        if self.array.is_none() {
            // Ended: the array and its views are empty, and so is anything made from them.
            return Ok(());
        }
        // SAFETY: `view` is an ndarray (the Bound's type was checked on extraction) and we
        // hold the GIL, so its fields may be read.
        let (nd, data, flags) = unsafe {
            let f = npyffi::_PyArray_GET_ITEM_DATA(view.as_array_ptr());
            ((*f).nd, (*f).data as usize, (*f).flags)
        };
        // Only views of our memory are ours to empty later (a caller could pass any array).
        let ours = flags & npyffi::NPY_ARRAY_OWNDATA == 0
            && data >= self.start
            && data <= self.start + self.bytes;
        if nd == 0 || !ours {
            // A zero-dimensional view cannot be emptied: left unregistered, it counts as a
            // reference that blocks the consume.
            return Ok(());
        }
        let weak = PyWeakrefReference::new(view.as_any())
            .map_err(|_| PyTypeError::new_err("a view of a shmchan array could not be tracked"))?;
        self.derived.push(weak.unbind());
        // Drop the dead ones now and then, so a loop making views keeps the list short.
        if self.derived.len() % 64 == 0 {
            self.derived.retain(|w| w.bind(py).upgrade().is_some());
        }
        Ok(())
    }

    /// Ends the lease: empties the array and its views, then (if `finish`) consumes the
    /// items shown or commits the slots (`count` of them, default all: messages of a
    /// message reader's lease, bytes of a message writer's). Returns how many.
    ///
    /// With `finish`, it first checks that nothing but one name (the `with` target) refers
    /// to the array besides its registered views: otherwise something may still reach the
    /// slots once the peer reuses them, so it raises BufferError, consuming or committing
    /// nothing and leaving the lease open (the end refuses other calls until the lease is
    /// released again, or the end is closed). Without `finish` (the block raised: its
    /// traceback may hold the view) nothing is consumed, and the lease ends.
    #[pyo3(signature = (finish, count=None))]
    fn release(&mut self, py: Python<'_>, finish: bool, count: Option<usize>) -> PyResult<usize> {
        if self.array.is_none() {
            return Ok(0); // ended already (the owner was closed)
        }
        if finish {
            let extra = self.extra_references(py);
            if extra > 1 {
                return Err(PyBufferError::new_err(format!(
                    "{} references to the view's memory remain besides the with target (a \
                     memoryview, np.asarray of it, a record taken from it, or a second \
                     name); they could read reused slots, so nothing was {} and the view \
                     stays open. Drop them and call end_view() again, or close the end; keep \
                     copies (view.copy()) instead.",
                    extra - 1,
                    if self.writable {
                        "committed"
                    } else {
                        "consumed"
                    },
                )));
            }
        }
        self.empty_all(py);
        let Some(owner) = self.owner.bind(py).upgrade() else {
            // The end is gone, and ended this lease as it went (this is not reached then).
            return Ok(0);
        };
        let k = count.unwrap_or(self.elements).min(self.elements);
        if let Ok(r) = owner.cast::<Reader>() {
            let mut r = r.try_borrow_mut()?;
            r.end.end_lease();
            if finish {
                return r.consume(py, k);
            }
        } else if let Ok(w) = owner.cast::<Writer>() {
            let mut w = w.try_borrow_mut()?;
            w.end.end_lease();
            if finish {
                return w.commit(py, k);
            }
        } else if let Ok(r) = owner.cast::<MessageReaderPy>() {
            // A message reader lends whole messages: they go whole.
            let mut r = r.try_borrow_mut()?;
            r.end.end_lease();
            if finish {
                // `count`: of the messages lent, those the caller used (a prefix).
                let k = count.unwrap_or(self.messages).min(self.messages);
                return r.consume(py, k);
            }
        } else if let Ok(w) = owner.cast::<MessageWriterPy>() {
            // A message writer lends room for a message: `k` bytes of it are the message.
            let mut w = w.try_borrow_mut()?;
            w.end.end_lease();
            if finish {
                return w.commit(py, k);
            }
        }
        Ok(0)
    }
}
