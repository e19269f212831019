"""The writing end: :class:`Writer`."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _shmchan
from ._end import _Done, _End, _Lent
from ._errors import ElementMismatchError


class Writer(_End):
    """The writing end: appends items in order. One per channel across all processes.

    Closing it (``close()``, or leaving its ``with`` block) ends the stream: the reader
    drains what was sent, then gets :class:`QueueClosedError`. ``abort(reason)`` ends it
    with :class:`AbortedError` instead."""

    _native: _shmchan._Writer

    def __init__(self, native: _shmchan._Writer, dtype: np.dtype[Any]) -> None:
        super().__init__(dtype)
        self._native = native

    def _items(self, items: npt.ArrayLike) -> np.ndarray[Any, Any]:
        """``items`` as a flat C-contiguous array of the channel's dtype. An ndarray must
        have that dtype already (no silent cast); bytes-like objects are taken as raw items;
        other sequences are converted."""
        if isinstance(items, bytes | bytearray | memoryview):
            return np.frombuffer(items, dtype=self._dtype)
        if isinstance(items, np.ndarray):
            if items.dtype != self._dtype:
                raise ElementMismatchError(
                    f"channel '{self.name}' holds {self._dtype}, but the array holds {items.dtype}",
                    name=self.name,
                )
            return np.ascontiguousarray(items).reshape(-1)
        return np.ascontiguousarray(np.asarray(items, dtype=self._dtype)).reshape(-1)

    async def put(self, items: npt.ArrayLike) -> None:
        """Appends all of ``items`` (a C-contiguous array is taken flat), in order, waiting
        for room as needed; more than the ring holds is streamed in pieces.

        Raises :class:`QueueClosedError` if the reader closed, :class:`PeerGoneError` if
        its process died while this waited; both say how many items were ``accepted``.

        Cancelled while it waits, the items before the wait are in the channel (a prefix,
        whose length is lost with the cancellation); use :meth:`try_put` to count."""
        array = self._items(items)
        native, n, done = self._native, len(array), 0
        while True:
            done += native.try_put(array, done)
            if done >= n:
                return
            await self._wait(1, done)

    def blocking_put(self, items: npt.ArrayLike, timeout: float | None = None) -> None:
        """The blocking twin of :meth:`put` (the GIL is released while it waits). After
        ``timeout`` seconds it raises :class:`TimedOutError` with the count ``accepted``."""
        self._native.blocking_put(self._items(items), timeout)

    def try_put(self, items: npt.ArrayLike) -> int:
        """Puts as many of ``items`` as fit now, without waiting; returns how many."""
        return self._native.try_put(self._items(items))

    def reserve(self, n: int) -> _Lent:
        """Lends ``n`` free slots in place, as a writable :class:`SlotArray`, once they are
        free: ``async with w.reserve(n) as slots: slots[:] = ...``. Leaving the block
        commits all ``n`` (nothing if the block raised). The slots hold old data until
        written."""
        return _Lent(self, n, None)

    def blocking_reserve(self, n: int, timeout: float | None = None) -> _Lent:
        """The blocking twin of :meth:`reserve`: ``with w.blocking_reserve(n) as slots:``."""
        return _Lent(self, n, timeout)

    def close(self) -> _Done:
        """Closes the channel for writing: the reader drains, then gets
        :class:`QueueClosedError`. Idempotent; the result may be awaited
        (``await w.close()``)."""
        return super().close()

    def abort(self, reason: str) -> None:
        """Closes the channel for writing with ``reason``: the reader drains, then gets
        :class:`AbortedError` carrying it (cut to 256 bytes of UTF-8, at a character
        boundary)."""
        self._native.abort(reason)

    @property
    def reader_closed(self) -> bool:
        """True if the reader closed the channel (a put would fail)."""
        return self._native.reader_closed

    def __repr__(self) -> str:
        return f"<shmchan.Writer of {self.name!r}>"
