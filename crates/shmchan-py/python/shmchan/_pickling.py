"""Values as the messages of an object channel: pickle protocol 5, whose out-of-band buffers
(numpy arrays, pandas blocks, Arrow buffers) the native writer copies once, straight into the
ring, and the reader hands back to ``pickle`` as buffers of their own."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._errors import PicklingError, UnpicklingError

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


class _Restricted(pickle.Unpickler):
    """An unpickler that loads only the globals ``allowed`` says it may."""

    def __init__(self, data: bytes, buffers: list[bytearray], allowed: Callable[[str, str], bool]):
        super().__init__(io.BytesIO(data), buffers=buffers)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if not self._allowed(module, name):
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
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
    buffers: list[bytearray],
    allowed: Callable[[str, str], bool] | None,
    name: str,
    filled: int,
) -> object:
    """The value of one frame; :class:`UnpicklingError` if it cannot be made here (a
    module this process lacks, a global not allowed, a garbled pickle)."""
    try:
        if allowed is None:
            return pickle.loads(data, buffers=buffers)
        return _Restricted(data, buffers, allowed).load()
    except Exception as e:  # whatever unpickling raises: it runs the pickle's code
        raise UnpicklingError(
            f"channel '{name}': the next value cannot be unpickled here, so it stays in the "
            f"channel (skip() removes it): {type(e).__name__}: {e}",
            name=name,
            filled=filled,
        ) from e
