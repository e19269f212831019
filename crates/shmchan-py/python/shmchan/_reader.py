"""The reading end: :class:`Reader`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import numpy as np

from . import _shmchan
from ._end import _Done, _End, _Lent
from ._errors import PeerGoneError, QueueClosedError

A = TypeVar("A", bound="np.ndarray[Any, Any]")


def _flat(frame: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A writable C-contiguous array as one dimension (a view, sharing its memory)."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"expected a numpy array to fill, got {type(frame).__name__}")
    if not frame.flags.c_contiguous:
        raise ValueError("the array is not C-contiguous (np.ascontiguousarray makes it so)")
    return frame.reshape(-1)


class Reader(_End):
    """The reading end: takes items out in order, in any batch sizes. One per channel
    across all processes. Closing it discards what remains; the writer's put then fails."""

    _native: _shmchan._Reader

    def __init__(self, native: _shmchan._Reader, dtype: np.dtype[Any]) -> None:
        super().__init__(dtype)
        self._native = native

    async def get(self, frame: A) -> A:
        """Fills ``frame`` (a writable C-contiguous array of the dtype, of any shape) with
        exactly ``frame.size`` items, however they were put; returns it.

        Raises :class:`QueueClosedError` (or :class:`AbortedError`, :class:`PeerGoneError`)
        if the stream ended with fewer items left; they are not removed (``remaining``),
        and :meth:`get_some` or a smaller ``get`` reads them.

        Cancelled while it waits, it removed nothing, unless ``frame`` is larger than the
        ring (then its first items may have been consumed into ``frame``)."""
        flat = _flat(frame)
        native, n = self._native, flat.size
        if n == 0:
            return frame
        if n <= native.capacity:
            while not native.try_get(flat):
                await self._wait(n)
            return frame
        filled = 0
        while filled < n:
            k = native.try_get_some(flat, filled)
            if k:
                filled += k
            else:
                await self._wait(1, filled)
        return frame

    def blocking_get(self, frame: A, timeout: float | None = None) -> A:
        """The blocking twin of :meth:`get` (the GIL is released while it waits). After
        ``timeout`` seconds it raises :class:`TimedOutError`, having removed nothing, unless
        ``frame`` is larger than the ring: then ``filled`` items are already in it."""
        self._native.blocking_get(_flat(frame), timeout)
        return frame

    async def get_some(self, frame: np.ndarray[Any, Any]) -> int:
        """Copies between 1 and ``frame.size`` items into ``frame`` (flat), whatever is
        there, waiting only while nothing is; returns the count. Raises
        :class:`QueueClosedError` once the stream ended and everything was read."""
        flat = _flat(frame)
        if flat.size == 0:
            return 0
        native = self._native
        while (k := native.try_get_some(flat)) == 0:
            await self._wait(1)
        return k

    def blocking_get_some(self, frame: np.ndarray[Any, Any], timeout: float | None = None) -> int:
        """The blocking twin of :meth:`get_some`."""
        return self._native.blocking_get_some(_flat(frame), timeout)

    def try_get_some(self, frame: np.ndarray[Any, Any]) -> int:
        """Copies what is there now (up to ``frame.size``) without waiting; 0 if nothing."""
        return self._native.try_get_some(_flat(frame))

    def peek(self, n: int | None = None) -> _Lent:
        """Shows ``n`` items in place, without copying, once they are there (``n=None``:
        all that are there, at least one): ``async with r.peek(n) as view:``. ``view`` is a
        read-only :class:`SlotArray` over the ring; leaving the block consumes the items
        (nothing if the block raised) and empties ``view`` and every view made from it.
        Keep copies, not views: a view kept another way (``memoryview``, ``np.asarray``) makes
        the exit raise ``BufferError`` and consume nothing."""
        return _Lent(self, n, None)

    def blocking_peek(self, n: int | None = None, timeout: float | None = None) -> _Lent:
        """The blocking twin of :meth:`peek`: ``with r.blocking_peek(n) as view:``."""
        return _Lent(self, n, timeout)

    async def frames(self, n: int) -> AsyncIterator[np.ndarray[Any, Any]]:
        """New arrays of ``n`` items each until the writer closes; then the rest, shorter
        (if any). After an abort or the writer's death, the rest comes first, then the
        error (:class:`AbortedError`, :class:`PeerGoneError`). ``n`` is at least 1."""
        _frame_size(n)
        while True:
            frame = np.empty(n, self._dtype)
            try:
                await self.get(frame)
            except (QueueClosedError, PeerGoneError) as e:
                rest = np.empty(e.remaining, self._dtype)
                await self.get(rest)
                last = np.concatenate([frame[: e.filled], rest])
                if len(last):
                    yield last
                if type(e) is QueueClosedError:
                    return
                raise
            yield frame

    def blocking_frames(
        self, n: int, timeout: float | None = None
    ) -> Iterator[np.ndarray[Any, Any]]:
        """The blocking twin of :meth:`frames` (``timeout`` bounds each wait)."""
        _frame_size(n)
        while True:
            frame = np.empty(n, self._dtype)
            try:
                self.blocking_get(frame, timeout)
            except (QueueClosedError, PeerGoneError) as e:
                rest = np.empty(e.remaining, self._dtype)
                self.blocking_get(rest)
                last = np.concatenate([frame[: e.filled], rest])
                if len(last):
                    yield last
                if type(e) is QueueClosedError:
                    return
                raise
            yield frame

    def close(self) -> _Done:
        """Closes the channel: what remains is discarded, and the writer's waiting or next
        put fails with :class:`QueueClosedError`. An open view is emptied first.
        Idempotent; the result may be awaited (``await r.close()``)."""
        return super().close()

    def __len__(self) -> int:
        """Items available now."""
        return len(self._native)

    def __repr__(self) -> str:
        return f"<shmchan.Reader of {self.name!r}>"


def _frame_size(n: int) -> None:
    """Refuses a frame size that is not a positive number of items (``frames(0)`` would
    yield empty arrays forever)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"frames need a positive number of items, not {n!r}")
