"""The writing ends of message channels: :class:`MessageWriter` (bytes) and
:class:`ObjectWriter` (values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _shmchan
from ._end import _Done, _EndBase, _Lent
from ._errors import ChannelError, TimedOutError
from ._pickling import Frame, frames
from ._wait import _Deadline
from ._writer import _Unfinished


class _MessageWriterBase(_EndBase):
    """A put of whole messages, in order, waiting for room: what both writers share. A
    subclass says how its values become messages (:meth:`_prepare`) and how they go in
    (:meth:`_try`)."""

    _native: _shmchan._MessageWriter

    def __init__(self, native: _shmchan._MessageWriter) -> None:
        self._native = native
        self._unfinished: _Unfinished | None = None

    def _prepare(self, values: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _try(self, prepared: list[Any], start: int) -> tuple[int, int]:
        """Puts what fits now of ``prepared[start:]``: how many went in, and the bytes of
        room the next needs (0 if none is left)."""
        raise NotImplementedError

    def _sequence(self, values: Sequence[Any]) -> list[Any]:
        """``values`` as a list, refusing one value given where a sequence of them is due
        (a ``bytes`` would put one message per byte; a ``str`` one per character)."""
        if isinstance(values, bytes | bytearray | memoryview | str):
            raise TypeError(
                f"put takes a sequence of values, not a {type(values).__name__}: "
                "put([value]) puts one"
            )
        if not isinstance(values, Sequence):
            # A DataFrame is one value, not the sequence of its column names.
            raise TypeError(
                f"put takes a sequence (a list, a tuple) of values, not a "
                f"{type(values).__name__}: put([value]) puts one"
            )
        return values if type(values) is list else list(values)

    async def put(self, values: Sequence[Any]) -> None:
        """Appends every one of ``values`` (a list, a tuple), in order, each one message,
        waiting for room as needed.

        Raises :class:`QueueClosedError` if the reader closed, :class:`PeerGoneError` if
        its process died while this waited; both say how many values were ``accepted``
        (a prefix: put the rest again). A value longer than the ring takes is
        :class:`OversizedError` once the values before it went in.

        Cancelled (``asyncio.wait_for``'s timeout, say), it may have put a prefix of
        ``values``; calling ``put`` again with the same ``values`` object, before any other
        put, puts only the rest."""
        prepared, n, done = self._begin(values)
        try:
            while True:
                k, need = self._try(prepared, done)
                done += k
                if done >= n:
                    return
                await self._wait(need, done)
        except BaseException as e:
            self._ended(e, values, n, done)
            raise

    def _begin(self, values: Sequence[Any]) -> tuple[list[Any], int, int]:
        """A put's messages, their count, and where it starts: after what a cancelled put
        of the same ``values`` object put, if this is its retry; else at 0."""
        prepared = self._prepare(values)
        n = len(prepared)
        unfinished, self._unfinished = self._unfinished, None
        return prepared, n, (unfinished.rest(values, n) if unfinished else 0)

    def _ended(self, e: BaseException, values: Sequence[Any], n: int, done: int) -> None:
        """What a put that ends with ``e`` after ``done`` of its ``n`` values does: a
        channel error counts them (``accepted``; a native call counts only what went in
        before it); any other exception (a cancellation, Ctrl-C) cannot, so the writer
        keeps the count for the retry."""
        if isinstance(e, ChannelError):
            if getattr(e, "accepted", 0) < done:
                e.accepted = done  # type: ignore[attr-defined]
        elif done:
            self._unfinished = _Unfinished(values, n, done)

    def blocking_put(self, values: Sequence[Any], timeout: float | None = None) -> None:
        """The blocking twin of :meth:`put` (the GIL is released while it waits). After
        ``timeout`` seconds it raises :class:`TimedOutError` with the count ``accepted``."""
        prepared, n, done = self._begin(values)
        deadline = _Deadline(timeout)
        try:
            while True:
                k, need = self._try(prepared, done)
                done += k
                if done >= n:
                    return
                if not self._native.wait(need, deadline.left()):
                    raise TimedOutError(
                        f"channel '{self.name}': timed out waiting for room after {done} of "
                        f"{n} values",
                        name=self.name,
                    )
        except BaseException as e:
            self._ended(e, values, n, done)
            raise

    def try_put(self, values: Sequence[Any]) -> int:
        """Puts as many of ``values`` as fit now, in order, without waiting; returns how
        many."""
        self._unfinished = None
        return self._try(self._prepare(values), 0)[0]

    def close(self) -> _Done:
        """Closes the channel for writing: the reader drains, then gets
        :class:`QueueClosedError`. Idempotent; the result may be awaited."""
        return super().close()

    def abort(self, reason: str) -> None:
        """Closes the channel for writing with ``reason``: the reader drains, then gets
        :class:`AbortedError` carrying it."""
        self._native.abort(reason)

    @property
    def reader_closed(self) -> bool:
        """True if the reader closed the channel (a put would fail)."""
        return self._native.reader_closed

    @property
    def max_message_len(self) -> int:
        """The longest message the channel takes, in bytes."""
        return self._native.max_message_len

    def __repr__(self) -> str:
        return f"<shmchan.{type(self).__name__} of {self.name!r}>"


class MessageWriter(_MessageWriterBase):
    """The writing end of a :class:`MessageChannelIO`: appends byte messages, whole and in
    order. One per channel across all processes."""

    def _prepare(self, values: Sequence[Any]) -> list[Any]:
        return self._sequence(values)

    def _try(self, prepared: list[Any], start: int) -> tuple[int, int]:
        k = self._native.try_put(prepared, start)
        rest = start + k
        return k, (memoryview(prepared[rest]).nbytes if rest < len(prepared) else 0)

    async def wait_room(self, length: int) -> None:
        """Waits until a message of ``length`` bytes fits, putting nothing."""
        while not self._native.room_now(length):
            await self._wait(length)

    def blocking_wait_room(self, length: int, timeout: float | None = None) -> None:
        """The blocking twin of :meth:`wait_room`."""
        deadline = _Deadline(timeout)
        while not self._native.room_now(length):
            if not self._native.wait(length, deadline.left()):
                raise TimedOutError(
                    f"channel '{self.name}': timed out waiting for room", name=self.name
                )

    def reserve(self, length: int) -> _Lent:
        """Lends room for a message of ``length`` bytes in place, as a writable uint8
        :class:`SlotArray`, once there is room: ``async with w.reserve(n) as buf:``.
        Leaving the block puts the message (nothing if the block raised)."""
        self._unfinished = None
        return _Lent(self, length, None)

    def blocking_reserve(self, length: int, timeout: float | None = None) -> _Lent:
        """The blocking twin of :meth:`reserve`."""
        self._unfinished = None
        return _Lent(self, length, timeout)


class ObjectWriter(_MessageWriterBase):
    """The writing end of an :class:`ObjectChannelIO`: appends Python values, each pickled
    into one message. One per channel across all processes.

    ``put(values)`` takes a list or a tuple of values; anything else is one value:
    ``put(df)`` carries a whole DataFrame, ``put([df1, df2])`` two of them.

    A put pickles every value first, so a value that cannot be pickled
    (:class:`PicklingError`, naming it) leaves the channel as it was. The buffers of numpy
    arrays, pandas blocks and Arrow arrays are copied once, from the value straight into
    the ring; the values themselves are not kept, and may change once ``put`` returns."""

    def _prepare(self, values: Any) -> list[Frame]:
        # A list or a tuple is a sequence of values; anything else (a DataFrame, an array,
        # a dict, a namedtuple or another subclass of them) is one value.
        return frames(values if type(values) in (list, tuple) else [values], self.name)

    async def put(self, values: Any) -> None:
        """Appends ``values`` (a list or a tuple of values; anything else is one value), as
        :meth:`MessageWriter.put` appends messages."""
        await super().put(values)

    def blocking_put(self, values: Any, timeout: float | None = None) -> None:
        """The blocking twin of :meth:`put`."""
        super().blocking_put(values, timeout)

    def try_put(self, values: Any) -> int:
        """Puts as many of ``values`` as fit now, without waiting; returns how many."""
        return super().try_put(values)

    def _try(self, prepared: list[Frame], start: int) -> tuple[int, int]:
        return self._native.try_put_objects(prepared, start)
