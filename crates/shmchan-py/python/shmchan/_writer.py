"""The writing end: :class:`Writer`."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _shmchan
from ._end import _Done, _End, _Lent
from ._errors import ChannelError, ElementMismatchError, _Counted


class Writer(_End):
    """The writing end: appends items in order. One per channel across all processes.

    Closing it (``close()``, or leaving its ``with`` block) ends the stream: the reader
    drains what was sent, then gets :class:`QueueClosedError`. ``abort(reason)`` ends it
    with :class:`AbortedError` instead."""

    _native: _shmchan._Writer

    def __init__(self, native: _shmchan._Writer, dtype: np.dtype[Any]) -> None:
        super().__init__(dtype)
        self._native = native
        self._unfinished: _Unfinished | None = None

    def _items(self, items: npt.ArrayLike) -> np.ndarray[Any, Any]:
        """``items`` as a flat C-contiguous array of the channel's dtype, or an error: no
        conversion that loses or invents information is made (see :func:`_as_items`)."""
        return _as_items(items, self._dtype, self.name)

    async def put(self, items: npt.ArrayLike) -> None:
        """Appends all of ``items`` (a C-contiguous array is taken flat), in order, waiting
        for room as needed: what fits goes in at once, the rest as the reader makes room.

        Raises :class:`QueueClosedError` if the reader closed, :class:`PeerGoneError` if
        its process died while this waited; both say how many items were ``accepted``.

        Cancelled (``asyncio.wait_for``'s timeout, say), it may have put a prefix of
        ``items``. The writer keeps count: calling ``put`` again with the same ``items``
        object, before any other put, puts only the rest, so the obvious retry neither
        loses nor duplicates."""
        array = self._items(items)
        native, n = self._native, len(array)
        unfinished, self._unfinished = self._unfinished, None
        done = unfinished.rest(items, n) if unfinished else 0
        try:
            while True:
                done += native.try_put(array, done)
                if done >= n:
                    return
                await self._wait(1, done)
        except BaseException as e:
            # A channel error counts what went in (`accepted`); a cancellation cannot, so
            # the writer keeps the count for the retry.
            if done and not isinstance(e, ChannelError):
                self._unfinished = _Unfinished(items, n, done)
            raise

    def blocking_put(self, items: npt.ArrayLike, timeout: float | None = None) -> None:
        """The blocking twin of :meth:`put` (the GIL is released while it waits). After
        ``timeout`` seconds it raises :class:`TimedOutError` with the count ``accepted``.
        After a cancelled :meth:`put`, a blocking put of the same object puts the rest."""
        array = self._items(items)
        unfinished, self._unfinished = self._unfinished, None
        done = unfinished.rest(items, len(array)) if unfinished else 0
        if not done:
            self._native.blocking_put(array, timeout)
            return
        try:
            self._native.blocking_put(array[done:], timeout)
        except _Counted as e:
            e.accepted += done
            raise

    async def wait_room(self, n: int = 1) -> int:
        """Waits until at least ``n`` slots are free (``n`` at most the capacity), putting
        nothing; returns how many are free. A base for puts of one's own; cancelling it
        changes nothing."""
        native = self._native
        while (free := native.room_now(n)) is None:
            await self._wait(n)
        return free

    def blocking_wait_room(self, n: int = 1, timeout: float | None = None) -> int:
        """The blocking twin of :meth:`wait_room`."""
        return self._native.blocking_wait_room(n, timeout)

    def try_put(self, items: npt.ArrayLike) -> int:
        """Puts as many of ``items`` as fit now, without waiting; returns how many."""
        self._unfinished = None
        return self._native.try_put(self._items(items))

    def reserve(self, n: int) -> _Lent:
        """Lends ``n`` free slots in place, as a writable :class:`SlotArray`, once they are
        free: ``async with w.reserve(n) as slots: slots[:] = ...``. Leaving the block
        commits all ``n`` (nothing if the block raised). The slots hold old data until
        written."""
        self._unfinished = None
        return _Lent(self, n, None)

    def blocking_reserve(self, n: int, timeout: float | None = None) -> _Lent:
        """The blocking twin of :meth:`reserve`: ``with w.blocking_reserve(n) as slots:``."""
        self._unfinished = None
        return _Lent(self, n, timeout)

    def close(self) -> _Done:
        """Closes the channel for writing: the reader drains, then gets
        :class:`QueueClosedError`. Idempotent; the result may be awaited
        (``await w.close()``)."""
        return super().close()

    def abort(self, reason: str) -> None:
        """Closes the channel for writing with ``reason``: the reader drains, then gets
        :class:`AbortedError` carrying it (cut to 256 bytes of UTF-8, at a character
        boundary). :class:`ForkedError`, aborting nothing, in a process that inherited the
        writer through fork."""
        self._native.abort(reason)

    @property
    def reader_closed(self) -> bool:
        """True if the reader closed the channel (a put would fail)."""
        return self._native.reader_closed

    def __repr__(self) -> str:
        return f"<shmchan.Writer of {self.name!r}>"


class _Unfinished:
    """A cancelled put: its ``items`` object, their count, and how many
    went in. A retry with the same object (compared by identity: the end holds it, so its
    ``id`` cannot be reused) puts only the rest."""

    __slots__ = ("done", "items", "n")

    def __init__(self, items: object, n: int, done: int) -> None:
        self.items, self.n, self.done = items, n, done

    def rest(self, items: object, n: int) -> int:
        """Where a put of ``items`` (``n`` of them) starts: after what went in, if it is the
        retry; else at 0."""
        return self.done if items is self.items and n == self.n else 0


def _mismatch(name: str, dtype: np.dtype[Any], what: str) -> ElementMismatchError:
    return ElementMismatchError(f"channel '{name}' holds {dtype}, but {what}", name=name)


def _as_items(items: object, dtype: np.dtype[Any], name: str) -> np.ndarray[Any, Any]:
    """``items`` as a flat C-contiguous array of ``dtype``, converting only what converts
    without loss:

    - ``bytes`` and ``bytearray`` (and a memoryview of bytes) are raw items;
    - an ndarray (or a numpy scalar, a pandas Series, or a memoryview of another format)
      must have the channel's dtype already; a masked array with masked values is refused;
    - a pandas DataFrame fills a records channel by column name, each column of its
      field's dtype, and no other column;
    - any other sequence is converted when every value survives the conversion (no
      truncated floats, no wrapped integers, no parsed strings); for a records channel, a
      sequence of tuples, one per record.
    """
    if isinstance(items, bytes | bytearray):
        return np.frombuffer(items, dtype=dtype)
    if isinstance(items, memoryview):
        if items.format in ("B", "b", "c"):
            return np.frombuffer(items, dtype=dtype)
        items = np.asarray(items)
    if isinstance(items, np.generic):
        items = np.asarray(items)  # a numpy scalar (a record, say): one item of its dtype
    if hasattr(items, "columns") and hasattr(items, "to_numpy"):
        return _from_frame(items, dtype, name)
    if not isinstance(items, np.ndarray) and hasattr(items, "to_numpy") and hasattr(items, "dtype"):
        items = items.to_numpy()  # a pandas Series: its values, with its own dtype
    if isinstance(items, np.ndarray):
        if np.ma.is_masked(items):
            raise _mismatch(name, dtype, "the masked array has masked values (they would be lost)")
        if items.dtype != dtype:
            raise _mismatch(name, dtype, f"the array holds {items.dtype}")
        return np.ascontiguousarray(np.asarray(items)).reshape(-1)
    return _from_sequence(items, dtype, name)


def _from_frame(df: Any, dtype: np.dtype[Any], name: str) -> np.ndarray[Any, Any]:
    """A DataFrame's rows as records of ``dtype``, by column name."""
    fields = dtype.names
    if not fields:
        raise _mismatch(name, dtype, "a DataFrame fills only a records channel")
    columns = [str(c) for c in df.columns]
    if sorted(columns) != sorted(fields):
        raise _mismatch(name, dtype, f"the DataFrame's columns are {columns}, not {list(fields)}")
    out = np.empty(len(df), dtype)
    for field in fields:
        column = df[field].to_numpy()
        want = dtype.fields[field][0]  # type: ignore[index]
        if column.dtype != want:
            raise _mismatch(name, dtype, f"column {field!r} holds {column.dtype}, not {want}")
        out[field] = column
    return out


def _from_sequence(items: object, dtype: np.dtype[Any], name: str) -> np.ndarray[Any, Any]:
    """A sequence's values as ``dtype``, if every one survives the conversion."""
    if dtype.names:
        rows = list(items)  # type: ignore[call-overload]
        if not all(isinstance(row, tuple) and len(row) == len(dtype.names) for row in rows):
            raise _mismatch(name, dtype, "records come as tuples of one value per field")
        try:
            out = np.array(rows, dtype=dtype)
        except (ValueError, TypeError) as e:
            raise _mismatch(name, dtype, f"the records do not convert: {e}") from e
        for i, field in enumerate(dtype.names):
            _check_lossless(np.asarray([row[i] for row in rows]), out[field], name, dtype)
        return out
    given = np.asarray(items)
    if given.dtype == dtype:
        return np.ascontiguousarray(given).reshape(-1)
    try:
        out = np.ascontiguousarray(given.astype(dtype)).reshape(-1)
    except (ValueError, TypeError) as e:
        raise _mismatch(name, dtype, f"the values ({given.dtype}) do not convert: {e}") from e
    _check_lossless(given.reshape(-1), out, name, dtype)
    return out


def _check_lossless(
    given: np.ndarray[Any, Any], out: np.ndarray[Any, Any], name: str, dtype: np.dtype[Any]
) -> None:
    """Refuses ``out`` unless it holds the values ``given`` held: a float may round to the
    channel's float precision, nothing else may change (a float to an integer, a wrapped
    integer, a string parsed or cut, a NaN turned into a number)."""
    gk, ok = given.dtype.kind, out.dtype.kind
    numbers = "biufc"
    if (gk in numbers) != (ok in numbers):
        raise _mismatch(name, dtype, f"the values are {given.dtype}")
    with np.errstate(invalid="ignore", over="ignore"):
        if gk in "fc" and ok in "fc":
            same = not np.any(np.isinf(out) & ~np.isinf(given))
        else:
            same = np.array_equal(out.astype(given.dtype), given, equal_nan=gk in "fc")
    if not same:
        raise _mismatch(name, dtype, f"the values ({given.dtype}) do not all fit unchanged")
