"""shmchan: typed channels between processes through shared memory.

A channel is a ring of fixed-size items (one numpy dtype) in a shared-memory segment that two
unrelated processes open by name: one writer, one reader, in either start order, in Python or
in Rust. Items are copied in and out of numpy arrays, or read and written in place.

>>> import numpy as np, shmchan
>>> chan = shmchan.ChannelIO.create("doc-imu", np.float32, capacity=1 << 16)
>>> w, r = chan.writer(), chan.reader()
>>> w.blocking_put(np.arange(5, dtype=np.float32))
>>> r.blocking_get(np.empty(3, np.float32))
array([0., 1., 2.], dtype=float32)
>>> w.close()
>>> r.blocking_get_some(np.empty(8, np.float32))
2
>>> r.close()

The async methods wait on the channel's doorbell with ``loop.add_reader``: no thread per
waiter, no polling, no tokio. The blocking twins sleep without the GIL, and Ctrl-C ends them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from . import _shmchan
from ._errors import (
    AbiMismatchError,
    AbortedError,
    AlreadyExistsError,
    ChannelError,
    ChannelOSError,
    CorruptedError,
    ElementMismatchError,
    EndClosedError,
    EndTakenError,
    ForeignOwnerError,
    ForeignSegmentError,
    InvalidCapacityError,
    InvalidNameError,
    InvalidSchemaError,
    MembarrierUnavailableError,
    NoSpaceError,
    NotFoundError,
    NotInitializedError,
    OversizedError,
    PeerGoneError,
    PermissionDeniedError,
    QueueClosedError,
    SchemaMismatchError,
    TimedOutError,
    TooSmallError,
    UnsupportedElementError,
    VersionMismatchError,
    ViewOpenError,
)
from ._view import SlotArray

__all__ = [
    "AbiMismatchError",
    "AbortedError",
    "AlreadyExistsError",
    "ChannelError",
    "ChannelIO",
    "ChannelOSError",
    "CorruptedError",
    "ElementMismatchError",
    "EndClosedError",
    "EndTakenError",
    "ForeignOwnerError",
    "ForeignSegmentError",
    "InvalidCapacityError",
    "InvalidNameError",
    "InvalidSchemaError",
    "MembarrierUnavailableError",
    "NoSpaceError",
    "NotFoundError",
    "NotInitializedError",
    "OversizedError",
    "PeerGoneError",
    "PermissionDeniedError",
    "QueueClosedError",
    "Reader",
    "SchemaMismatchError",
    "SlotArray",
    "TimedOutError",
    "TooSmallError",
    "UnsupportedElementError",
    "VersionMismatchError",
    "ViewOpenError",
    "Writer",
]

__version__: str = _shmchan.__version__

A = TypeVar("A", bound="np.ndarray[Any, Any]")


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _readable(fd: int) -> None:
    """Waits until ``fd`` is readable, in the running loop (``add_reader``: no thread)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _wake, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class _Deadline:
    """What is left of a ``timeout=`` across several waits."""

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be a non-negative number of seconds, or None")
        self._end = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())


def _flat(frame: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A writable C-contiguous array as one dimension (a view, sharing its memory)."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"expected a numpy array to fill, got {type(frame).__name__}")
    if not frame.flags.c_contiguous:
        raise ValueError("the array is not C-contiguous (np.ascontiguousarray makes it so)")
    return frame.reshape(-1)


class ChannelIO:
    """A named channel of one dtype, open in this process.

    It hands out the channel's two ends, :meth:`writer` and :meth:`reader`: one of each
    across all processes at a time. A Rust program opens the same channel with
    ``ChannelIo::<T>`` of a ``T`` of the same size and alignment (``#[repr(C)]`` for a
    structured dtype made with ``align=True``) and the same schema tag.

    The channel is removed when the last handle to it (in any process) goes, once its
    reader has closed it, unless it was created with ``persist=True``."""

    def __init__(self, native: _shmchan._Channel) -> None:
        self._native = native

    @classmethod
    def create(
        cls,
        name: str,
        dtype: npt.DTypeLike,
        capacity: int | None = None,
        *,
        schema: str | None = None,
        mode: int | None = None,
        persist: bool = False,
    ) -> ChannelIO:
        """Creates channel ``name`` of ``dtype`` with room for ``capacity`` items (rounded up
        to whole pages; default: 1 MiB of items). Fails with :class:`AlreadyExistsError` if
        it exists."""
        return cls(
            _shmchan._Channel.connect(
                "create", name, np.dtype(dtype), capacity, schema, mode, persist
            )
        )

    @classmethod
    def open(cls, name: str, dtype: npt.DTypeLike, *, schema: str | None = None) -> ChannelIO:
        """Opens existing channel ``name``, which must hold ``dtype`` (size, alignment, and
        for the numeric dtypes the kind) and have ``schema`` as its tag: else
        :class:`ElementMismatchError` or :class:`SchemaMismatchError`."""
        return cls(_shmchan._Channel.connect("open", name, np.dtype(dtype), None, schema))

    @classmethod
    def create_or_open(
        cls,
        name: str,
        dtype: npt.DTypeLike,
        capacity: int | None = None,
        *,
        schema: str | None = None,
        mode: int | None = None,
        persist: bool = False,
    ) -> ChannelIO:
        """Opens channel ``name``, creating it (as :meth:`create`) if it does not exist."""
        return cls(
            _shmchan._Channel.connect(
                "create_or_open", name, np.dtype(dtype), capacity, schema, mode, persist
            )
        )

    def writer(self) -> Writer:
        """Claims the writing end (:class:`EndTakenError` if a live holder has it). A writer
        that replaces a dead one appends after the last item it committed."""
        return Writer(self._native.writer(), self.dtype)

    def reader(self) -> Reader:
        """Claims the reading end (:class:`EndTakenError` if a live holder has it). A reader
        that replaces a dead one resumes at the first item it had not consumed."""
        return Reader(self._native.reader(), self.dtype)

    @property
    def name(self) -> str:
        """The channel's name."""
        return self._native.name

    @property
    def dtype(self) -> np.dtype[Any]:
        """The items' dtype."""
        return self._native.dtype

    @property
    def capacity(self) -> int:
        """How many items the ring holds."""
        return self._native.capacity

    @property
    def schema(self) -> str | None:
        """The channel's schema tag, if it has one."""
        return self._native.schema

    def __len__(self) -> int:
        """Items committed and not yet consumed, now."""
        return len(self._native)

    def __repr__(self) -> str:
        return f"ChannelIO({self.name!r}, dtype={self.dtype}, capacity={self.capacity})"


class _End:
    """What both ends share: the dtype, waiting, closing, the context manager."""

    _native: _shmchan._Reader | _shmchan._Writer

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self._dtype = dtype

    @property
    def dtype(self) -> np.dtype[Any]:
        """The items' dtype."""
        return self._dtype

    @property
    def name(self) -> str:
        """The channel's name."""
        return self._native.name

    @property
    def capacity(self) -> int:
        """How many items the ring holds (0 once closed)."""
        return self._native.capacity

    @property
    def closed(self) -> bool:
        """True once this end was closed (or left)."""
        return self._native.closed

    async def _wait(self, want: int) -> None:
        """One wait in the running loop for ``want`` items (or slots), or the end."""
        native = self._native
        if not native.prepare_wait(want):
            await _readable(native.wait_fd())
            native.finish_wait()

    def leave(self) -> None:
        """Lets go of this end without closing the channel, as a killed process would: the
        other end learns that its peer is gone, and a new holder carries on."""
        self._native.leave()

    def close(self) -> None:
        """Closes this end (see the subclass). Idempotent."""
        self._native.close()

    def end_view(self, finish: bool = True) -> int:
        """Releases a view (or reserved slots) whose ``with`` exit raised ``BufferError``,
        once the references it named are gone: consumes (or commits) it if ``finish``.
        Returns how many items; 0 if no view is open. Until then, the end refuses other
        calls with :class:`ViewOpenError`."""
        return self._native.end_view(finish)

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self: _E) -> _E:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_E = TypeVar("_E", bound=_End)


class _Lent:
    """The context manager of a zero-copy view or of reserved slots: lends them on entry
    (waiting as needed), takes them back on exit, consuming or committing them unless the
    block raised. See :class:`SlotArray` for what happens to the array then."""

    def __init__(self, end: Reader | Writer, n: int | None, timeout: float | None) -> None:
        self._end, self._n, self._timeout = end, n, timeout
        self._lease: _shmchan._Lease | None = None

    def _try(self) -> _shmchan._Lease | None:
        end = self._end
        if isinstance(end, Reader):
            return end._native.try_peek(self._n)
        assert self._n is not None
        return end._native.try_reserve(self._n)

    def _array(self, lease: _shmchan._Lease) -> SlotArray:
        self._lease = lease
        array = lease.array
        assert array is not None
        return array

    async def __aenter__(self) -> SlotArray:
        want = 1 if self._n is None else self._n
        while (lease := self._try()) is None:
            await self._end._wait(want)
        return self._array(lease)

    def __enter__(self) -> SlotArray:
        want = 1 if self._n is None else self._n
        deadline = _Deadline(self._timeout)
        while (lease := self._try()) is None:
            if not self._end._native.wait(want, deadline.left()):
                raise TimedOutError(
                    f"channel '{self._end.name}': timed out waiting for "
                    f"{'items' if isinstance(self._end, Reader) else 'room'}",
                    name=self._end.name,
                )
        return self._array(lease)

    def _exit(self, ok: bool) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release(ok)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc_type is None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc_type is None)


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
            await self._wait(1)

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

    def close(self) -> None:
        """Closes the channel for writing: the reader drains, then gets
        :class:`QueueClosedError`. Idempotent."""
        self._native.close()

    def abort(self, reason: str) -> None:
        """Closes the channel for writing with ``reason``: the reader drains, then gets
        :class:`AbortedError` carrying it (cut to 200 bytes)."""
        self._native.abort(reason)

    @property
    def reader_closed(self) -> bool:
        """True if the reader closed the channel (a put would fail)."""
        return self._native.reader_closed

    def __repr__(self) -> str:
        return f"<shmchan.Writer of {self.name!r}>"


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
                await self._wait(1)
        return frame

    def blocking_get(self, frame: A, timeout: float | None = None) -> A:
        """The blocking twin of :meth:`get` (the GIL is released while it waits). After
        ``timeout`` seconds it raises :class:`TimedOutError`, having removed nothing."""
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
        error (:class:`AbortedError`, :class:`PeerGoneError`)."""
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

    def close(self) -> None:
        """Closes the channel: what remains is discarded, and the writer's waiting or next
        put fails with :class:`QueueClosedError`. An open view is emptied first.
        Idempotent."""
        self._native.close()

    def __len__(self) -> int:
        """Items available now."""
        return len(self._native)

    def __repr__(self) -> str:
        return f"<shmchan.Reader of {self.name!r}>"
