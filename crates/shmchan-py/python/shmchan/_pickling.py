"""Values as the messages of an object channel: pickle protocol 5, whose out-of-band buffers
(numpy arrays, pandas blocks, Arrow buffers) the native writer copies once, straight into the
ring, and the reader hands back to ``pickle`` as buffers of their own."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ._errors import PicklingError, UnpicklingError
from ._view import SlotArray

#: The schema tag of every object channel: a bytes channel (or a Rust ``MessageChannel``)
#: opens one only by naming it, and sees the frames of ``src/frame.rs``.
OBJECT_SCHEMA = "python-pickle-5"

#: A frame: the pickle, and its out-of-band buffers (contiguous bytes each).
Frame = tuple[bytes, list[memoryview]]

#: Which globals a reader's unpickling may load: names ``"module.qualname"``, or a
#: function of (module, qualname).
Allow = Iterable[str] | Callable[[str, str], bool]


def frame(value: object, index: int, name: str) -> Frame:
    """``value`` pickled (protocol 5) with its buffers out of band; :class:`PicklingError`
    (naming ``index``, the value's place in the put) if it cannot be."""
    buffers: list[pickle.PickleBuffer] = []
    try:
        data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as e:  # whatever pickling raises: TypeError, AttributeError, ...
        raise PicklingError(
            f"channel '{name}': value {index} of the put ({type(value).__name__}) cannot be "
            f"pickled, so nothing of the put went in: {e}",
            name=name,
            index=index,
        ) from e
    return data, [_raw(b) for b in buffers]


def _raw(buffer: pickle.PickleBuffer) -> memoryview:
    """A buffer's bytes, contiguous: as they are (no copy), or copied if its exporter lends
    them in pieces (numpy and Arrow never do)."""
    try:
        return buffer.raw()
    except BufferError:
        return memoryview(bytes(memoryview(buffer)))


def frames(values: Sequence[object], name: str) -> list[Frame]:
    """Every one of ``values`` pickled, or the error of the first that cannot be: a put
    pickles all before it puts any, so a value that cannot go leaves the channel as it
    was."""
    return [frame(v, i, name) for i, v in enumerate(values)]


#: Where numpy's arrays are rebuilt from their out-of-band buffers (numpy 2, numpy 1).
_FROMBUFFER = {("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer")}


def _frombuffer_in_place(
    buf: Any, dtype: Any, shape: Any, order: str, axis_order: Any = None
) -> Any:
    """numpy's ``_frombuffer``, for a buffer that is a piece of a lease's array: the array
    is made as a view of that piece (a :class:`SlotArray`, whose base is the lease's array),
    so the lease empties it when it ends, as it empties every view of its array."""
    piece = buf.obj if isinstance(buf, memoryview) else buf  # READONLY_BUFFER wraps it
    array: Any = piece.view(dtype) if isinstance(piece, SlotArray) else np.frombuffer(buf, dtype)
    if order == "K" and axis_order is not None:
        return array.reshape(shape, order="C").transpose(axis_order)
    return array.reshape(shape, order=order)


class _Unpickler(pickle.Unpickler):
    """An unpickler that loads only the globals ``allowed`` says it may (all, if None), and,
    if ``in_place``, rebuilds numpy arrays as views of the buffers it is given."""

    def __init__(
        self,
        data: bytes,
        buffers: Sequence[Any],
        allowed: Callable[[str, str], bool] | None,
        in_place: bool,
    ):
        super().__init__(io.BytesIO(data), buffers=buffers)
        self._allowed, self._in_place = allowed, in_place

    def find_class(self, module: str, name: str) -> Any:
        if self._allowed is not None and not self._allowed(module, name):
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        if self._in_place and (module, name) in _FROMBUFFER:
            return _frombuffer_in_place
        return super().find_class(module, name)


def allowing(allow: Allow | None) -> Callable[[str, str], bool] | None:
    """The check of an ``allow=`` argument (None: every global)."""
    if allow is None or callable(allow):
        return allow
    names = frozenset(allow)
    if isinstance(allow, str):
        raise TypeError("allow takes names of globals ('module.qualname'), not one string")
    return lambda module, name: f"{module}.{name}" in names


def load(
    data: bytes,
    buffers: Sequence[Any],
    allowed: Callable[[str, str], bool] | None,
    name: str,
    filled: int,
    in_place: bool = False,
) -> object:
    """The value of one frame; :class:`UnpicklingError` if it cannot be made here (a
    module this process lacks, a global not allowed, a garbled pickle). ``in_place``: the
    buffers are pieces of a lease's array, and numpy arrays are made as views of them."""
    try:
        if allowed is None and not in_place:
            return pickle.loads(data, buffers=buffers)
        return _Unpickler(data, buffers, allowed, in_place).load()
    except Exception as e:  # whatever unpickling raises: it runs the pickle's code
        raise UnpicklingError(
            f"channel '{name}': the next value cannot be unpickled here, so it stays in the "
            f"channel (skip() removes it): {type(e).__name__}: {e}",
            name=name,
            filled=filled,
        ) from e
