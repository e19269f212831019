"""The reading end: :class:`Reader`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import numpy as np

from . import _shmchan
from ._end import _Done, _End, _Lent
from ._errors import ChannelError, PeerGoneError, QueueClosedError, _Counted

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
        # What a cancelled get larger than the ring had taken: the next read returns it
        # first (see `get`).
        self._carry: np.ndarray[Any, Any] | None = None

    async def get(self, frame: A) -> A:
        """Fills ``frame`` (a writable C-contiguous array of the dtype, of any shape) with
        exactly ``frame.size`` items, however they were put; returns it.

        Raises :class:`QueueClosedError` (or :class:`AbortedError`, :class:`PeerGoneError`)
        if the stream ended with fewer items left; they are not removed (``remaining``),
        and :meth:`get_some` or a smaller ``get`` reads them.

        Cancelled (``asyncio.wait_for``'s timeout, say), it removed nothing if ``frame``
        fits in the ring. A larger ``frame`` is filled in pieces: what a cancelled get took
        stays with the reader, and the next read (any ``get``, ``get_some``, ``frames``)
        returns it first, so nothing is lost and nothing comes twice."""
        flat = _flat(frame)
        native, n = self._native, flat.size
        if n == 0:
            return frame
        if n <= native.capacity and self._carry is None:
            while not native.try_get(flat):
                await self._wait(n)
            return frame
        filled = self._take_carry(flat)
        try:
            while filled < n:
                k = native.try_get_some(flat, filled)
                if k:
                    filled += k
                else:
                    await self._wait(1, filled)
        except BaseException as e:
            # A channel error counts what is in `frame` (`filled`); a cancellation cannot,
            # so the reader keeps it for the next read.
            if not isinstance(e, ChannelError) and filled:
                self._carry = flat[:filled].copy()
            raise
        return frame

    def _take_carry(self, flat: np.ndarray[Any, Any]) -> int:
        """Moves what a cancelled get had taken (as much as fits) into ``flat``; how many."""
        carry = self._carry
        if carry is None:
            return 0
        k = min(len(carry), flat.size)
        flat[:k] = carry[:k]
        self._carry = carry[k:] if k < len(carry) else None
        return k

    def blocking_get(self, frame: A, timeout: float | None = None) -> A:
        """The blocking twin of :meth:`get` (the GIL is released while it waits). After
        ``timeout`` seconds it raises :class:`TimedOutError`, having removed nothing, unless
        ``frame`` is larger than the ring: then ``filled`` items are already in it."""
        flat = _flat(frame)
        filled = self._take_carry(flat)
        if filled == flat.size and filled:
            return frame
        try:
            self._native.blocking_get(flat[filled:], timeout)
        except _Counted as e:
            e.filled += filled
            raise
        return frame

    async def get_some(self, frame: np.ndarray[Any, Any]) -> int:
        """Copies between 1 and ``frame.size`` items into ``frame`` (flat), whatever is
        there, waiting only while nothing is; returns the count. Raises
        :class:`QueueClosedError` once the stream ended and everything was read.
        Cancelled, it removed nothing."""
        flat = _flat(frame)
        if flat.size == 0:
            return 0
        if k := self._take_carry(flat):
            return k
        native = self._native
        while (k := native.try_get_some(flat)) == 0:
            await self._wait(1)
        return k

    def blocking_get_some(self, frame: np.ndarray[Any, Any], timeout: float | None = None) -> int:
        """The blocking twin of :meth:`get_some`."""
        flat = _flat(frame)
        return self._take_carry(flat) or self._native.blocking_get_some(flat, timeout)

    def try_get_some(self, frame: np.ndarray[Any, Any]) -> int:
        """Copies what is there now (up to ``frame.size``) without waiting; 0 if nothing."""
        flat = _flat(frame)
        return self._take_carry(flat) or self._native.try_get_some(flat)

    async def wait_items(self, n: int = 1) -> int:
        """Waits until at least ``n`` items are there (``n`` at most the capacity),
        removing nothing; returns how many are there. A base for reads of one's own;
        cancelling it changes nothing. Raises as :meth:`get` if the stream ended with
        fewer."""
        carried = self._carried()
        if carried >= n:
            return carried + len(self._native)
        native = self._native
        try:
            while (k := native.items_now(n - carried)) is None:
                await self._wait(n - carried)
        except _Counted as e:
            e.remaining += carried
            raise
        return carried + k

    def blocking_wait_items(self, n: int = 1, timeout: float | None = None) -> int:
        """The blocking twin of :meth:`wait_items`."""
        carried = self._carried()
        if carried >= n:
            return carried + len(self._native)
        try:
            return carried + self._native.blocking_wait_items(n - carried, timeout)
        except _Counted as e:
            e.remaining += carried
            raise

    def _carried(self) -> int:
        return 0 if self._carry is None else len(self._carry)

    def peek(self, n: int | None = None) -> _Lent:
        """Shows ``n`` items in place, without copying, once they are there (``n=None``:
        all that are there, at least one): ``async with r.peek(n) as view:``. ``view`` is a
        read-only :class:`SlotArray` over the ring; leaving the block consumes the items
        (nothing if the block raised) and empties ``view`` and every view made from it.
        Keep copies, not views: a view kept another way (``memoryview``, ``np.asarray``) makes
        the exit raise ``BufferError`` and consume nothing. After a cancelled get larger
        than the ring, a copying read first takes what it had taken (see :meth:`get`)."""
        self._no_carry()
        return _Lent(self, n, None)

    def blocking_peek(self, n: int | None = None, timeout: float | None = None) -> _Lent:
        """The blocking twin of :meth:`peek`: ``with r.blocking_peek(n) as view:``."""
        self._no_carry()
        return _Lent(self, n, timeout)

    def _no_carry(self) -> None:
        """Refuses a view while a cancelled get's items wait to be read: they are no longer
        in the ring, so a view would show what comes after them."""
        if self._carry is not None:
            raise ChannelError(
                f"channel '{self.name}': a cancelled get took {len(self._carry)} items that "
                "were not read yet; read them with get or get_some before peeking",
                name=self.name,
            )

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
        return self._carried() + len(self._native)

    def __repr__(self) -> str:
        return f"<shmchan.Reader of {self.name!r}>"


def _frame_size(n: int) -> None:
    """Refuses a frame size that is not a positive number of items (``frames(0)`` would
    yield empty arrays forever)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"frames need a positive number of items, not {n!r}")
