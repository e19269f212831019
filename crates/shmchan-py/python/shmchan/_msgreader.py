"""The reading ends of message channels: :class:`MessageReader` (bytes) and
:class:`ObjectReader` (values)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from . import _shmchan
from ._end import _Done, _EndBase, _Lent
from ._errors import ChannelError, PeerGoneError, QueueClosedError, TimedOutError, _Counted
from ._pickling import load
from ._reader import _frame_size
from ._wait import _Deadline


def _slots(to: list[Any]) -> int:
    """How many values ``to`` takes; a ``TypeError`` unless it is a list."""
    if not isinstance(to, list):
        raise TypeError(
            f"get fills a list (as many values as it is long), not a {type(to).__name__}: "
            "r.get([None] * n)"
        )
    return len(to)


class _MessageReaderBase(_EndBase):
    """Gets of whole messages, in order, in any batch sizes: what both readers share. A
    subclass says how messages become values (:meth:`_take`)."""

    _native: _shmchan._MessageReader

    def __init__(self, native: _shmchan._MessageReader) -> None:
        self._native = native
        # What a cancelled get had taken: the next read returns it first (see `get`).
        self._carry: list[Any] = []

    def _take(self, most: int) -> list[Any]:
        """Up to ``most`` of the values there now, removed from the channel; an empty list
        if none is there yet."""
        raise NotImplementedError

    def _from_carry(self, to: list[Any], at: int) -> int:
        """Moves what a cancelled get had taken (as much as fits) into ``to[at:]``."""
        k = min(len(self._carry), len(to) - at)
        if k:
            to[at : at + k] = self._carry[:k]
            del self._carry[:k]
        return k

    async def get(self, to: list[Any]) -> list[Any]:
        """Fills the list ``to`` with exactly ``len(to)`` values (replacing what it holds),
        however they were put; returns it.

        Values are taken as they come: if the stream ends first (:class:`QueueClosedError`,
        :class:`AbortedError`, :class:`PeerGoneError`), the error's ``filled`` says how
        many of ``to`` were filled, and they are out of the channel.

        Cancelled (``asyncio.wait_for``'s timeout, say), what it had taken stays with the
        reader, and the next read (any ``get``, ``get_some``, ``frames``) returns it first,
        so nothing is lost and nothing comes twice."""
        n = _slots(to)
        filled = self._from_carry(to, 0)
        try:
            while filled < n:
                got = self._take(n - filled)
                if got:
                    to[filled : filled + len(got)] = got
                    filled += len(got)
                else:
                    await self._wait(1)
        except BaseException as e:
            self._taken(e, to, filled)
            raise
        return to

    def _taken(self, e: BaseException, to: list[Any], filled: int) -> None:
        """What a get that ends with ``e`` does with the ``filled`` values it took into
        ``to``: a channel error counts them (``filled``: they are the caller's); any other
        exception (a cancellation, Ctrl-C) cannot, so the reader keeps them for the next
        read."""
        if isinstance(e, ChannelError):
            e.filled = getattr(e, "filled", 0) + filled  # type: ignore[attr-defined]
        elif filled:
            self._carry[:0] = to[:filled]

    def blocking_get(self, to: list[Any], timeout: float | None = None) -> list[Any]:
        """The blocking twin of :meth:`get` (the GIL is released while it waits). After
        ``timeout`` seconds it raises :class:`TimedOutError`, whose ``filled`` values of
        ``to`` are out of the channel."""
        n = _slots(to)
        filled = self._from_carry(to, 0)
        deadline = _Deadline(timeout)
        try:
            while filled < n:
                got = self._take(n - filled)
                if got:
                    to[filled : filled + len(got)] = got
                    filled += len(got)
                elif not self._native.wait(1, deadline.left()):
                    raise TimedOutError(
                        f"channel '{self.name}': timed out after {filled} of {n} values",
                        name=self.name,
                    )
        except BaseException as e:
            self._taken(e, to, filled)
            raise
        return to

    async def get_some(self, to: list[Any]) -> int:
        """Fills ``to[:k]`` with between 1 and ``len(to)`` values, whatever is there,
        waiting only while nothing is; returns ``k``. Raises :class:`QueueClosedError` once
        the stream ended and everything was read. Cancelled, it removed nothing."""
        n = _slots(to)
        if n == 0:
            return 0
        if k := self._from_carry(to, 0):
            return k
        while not (got := self._take(n)):
            await self._wait(1)
        to[: len(got)] = got
        return len(got)

    def blocking_get_some(self, to: list[Any], timeout: float | None = None) -> int:
        """The blocking twin of :meth:`get_some`."""
        n = _slots(to)
        if n == 0:
            return 0
        if k := self._from_carry(to, 0):
            return k
        deadline = _Deadline(timeout)
        while not (got := self._take(n)):
            if not self._native.wait(1, deadline.left()):
                raise TimedOutError(f"channel '{self.name}': timed out", name=self.name)
        to[: len(got)] = got
        return len(got)

    def try_get_some(self, to: list[Any]) -> int:
        """Fills ``to[:k]`` with what is there now (up to ``len(to)``) without waiting;
        returns ``k`` (0 if nothing)."""
        n = _slots(to)
        if k := self._from_carry(to, 0):
            return k
        got = self._take(n) if n else []
        to[: len(got)] = got
        return len(got)

    async def frames(self, n: int) -> AsyncIterator[list[Any]]:
        """New lists of ``n`` values each until the writer closes; then the rest, shorter
        (if any). After an abort or the writer's death, the rest comes first, then the
        error. ``n`` is at least 1."""
        _frame_size(n)
        while True:
            batch: list[Any] = [None] * n
            try:
                await self.get(batch)
            except ChannelError as e:
                if (rest := self._rest(e, batch)) is not None:
                    yield rest
                if type(e) is QueueClosedError:
                    return
                raise
            yield batch

    def blocking_frames(self, n: int, timeout: float | None = None) -> Iterator[list[Any]]:
        """The blocking twin of :meth:`frames` (``timeout`` bounds each get)."""
        _frame_size(n)
        while True:
            batch: list[Any] = [None] * n
            try:
                self.blocking_get(batch, timeout)
            except ChannelError as e:
                if (rest := self._rest(e, batch)) is not None:
                    yield rest
                if type(e) is QueueClosedError:
                    return
                raise
            yield batch

    def _rest(self, e: ChannelError, batch: list[Any]) -> list[Any] | None:
        """What a frame that ``e`` cut short took: the last frame, after the stream's end
        (a close, an abort, the writer's death); after any other error (a timeout, a value
        that cannot be unpickled), nothing now, and the values come first in the next
        read, so that none is lost."""
        filled = getattr(e, "filled", 0)
        if not filled:
            return None
        if isinstance(e, QueueClosedError | PeerGoneError):
            return batch[:filled]
        self._carry[:0] = batch[:filled]
        e.filled = 0  # type: ignore[attr-defined]
        return None

    def close(self) -> _Done:
        """Closes the channel: what remains is discarded, and the writer's waiting or next
        put fails with :class:`QueueClosedError`. Idempotent; the result may be awaited."""
        return super().close()

    def _no_carry(self) -> None:
        """Refuses a view while a cancelled get's values wait to be read: they are no
        longer in the ring, so a view would show what comes after them."""
        if self._carry:
            raise ChannelError(
                f"channel '{self.name}': a cancelled get took {len(self._carry)} messages "
                "that were not read yet; read them with get or get_some before peeking",
                name=self.name,
            )

    def __len__(self) -> int:
        """Messages available now."""
        return len(self._carry) + self._native.count()

    def __repr__(self) -> str:
        return f"<shmchan.{type(self).__name__} of {self.name!r}>"


class MessageReader(_MessageReaderBase):
    """The reading end of a :class:`MessageChannelIO`: takes byte messages out, whole and in
    order, in any batch sizes. One per channel across all processes."""

    def _take(self, most: int) -> list[Any]:
        return self._native.try_get_some(most)

    def peek(self) -> _Lent:
        """Shows the next message in place, without copying, once it is there:
        ``async with r.peek() as m:``. ``m`` is a read-only uint8 :class:`SlotArray` of its
        bytes; leaving the block consumes the message (nothing if the block raised) and
        empties ``m``, as :meth:`Reader.peek` does."""
        self._no_carry()
        return _Lent(self, None, None)

    def blocking_peek(self, timeout: float | None = None) -> _Lent:
        """The blocking twin of :meth:`peek`: ``with r.blocking_peek() as m:``."""
        self._no_carry()
        return _Lent(self, None, timeout)


class ObjectReader(_MessageReaderBase):
    """The reading end of an :class:`ObjectChannelIO`: takes Python values out, in order,
    in any batch sizes. One per channel across all processes.

    Each value is unpickled as it is taken, its arrays over buffers of their own (copied
    once out of the ring, writable). A value that cannot be unpickled here raises
    :class:`UnpicklingError` and stays in the channel: the values before it are delivered
    first, and :meth:`skip` removes it."""

    def __init__(
        self, native: _shmchan._MessageReader, allowed: Callable[[str, str], bool] | None
    ) -> None:
        super().__init__(native)
        self._allowed = allowed

    def _take(self, most: int) -> list[Any]:
        values: list[Any] = []
        try:
            for data, buffers in self._native.try_take_objects(most):
                values.append(load(data, buffers, self._allowed, self.name, 0))
        except ChannelError:
            if not values:
                raise
        self._native.consume(len(values))
        return values

    def peek(self, max: int | None = None) -> _LentValues:
        """Lends the values there (the first, and those after it within 64 KiB; at most ``max``) in
        place, once one is there: ``async with r.peek() as values:``. ``values`` is a list whose
        numpy arrays (and the pandas blocks made of them) are read-only views into the ring: nothing
        is copied. Leaving the block consumes them (nothing if the block raised), empties the list,
        and empties every array view, as :meth:`Reader.peek` empties its views; keep copies
        (``a.copy()``, ``df.copy()``) of what must outlive the block. A value whose buffers
        something other than numpy takes (an Arrow array, say) is made from copies of them
        instead."""
        self._no_carry()
        return _LentValues(self, max, None)

    def blocking_peek(self, max: int | None = None, timeout: float | None = None) -> _LentValues:
        """The blocking twin of :meth:`peek`: ``with r.blocking_peek() as values:``."""
        self._no_carry()
        return _LentValues(self, max, timeout)

    def skip(self, n: int = 1) -> int:
        """Removes the next ``n`` values without unpickling them (those there now, at
        most); returns how many."""
        done = 0
        try:
            while done < n and (k := self._native.consume(n - done)):
                done += k
        except (QueueClosedError, PeerGoneError):
            pass  # the stream ended: nothing more to skip
        return done


class _LentValues:
    """The context manager of :meth:`ObjectReader.peek`: lends values made over the ring on
    entry (waiting as needed), consumes them on exit unless the block raised."""

    def __init__(self, reader: ObjectReader, most: int | None, timeout: float | None) -> None:
        if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
            raise ValueError(f"peek shows at least one value: max={most!r}")
        self._reader, self._most, self._timeout = reader, most or 1 << 30, timeout
        self._lease: _shmchan._Lease | None = None
        self._values: list[Any] = []

    def _try(self) -> list[Any] | None:
        reader = self._reader
        got = reader._native.try_peek_objects(self._most)
        if got is None:
            return None
        lease, parts = got
        self._lease, values = lease, self._values
        array = lease.array
        assert array is not None
        try:
            for start, end, buffers in parts:
                data = array[start:end].tobytes()
                pieces = [array[b0:b1] for b0, b1 in buffers]
                value = load(data, pieces, reader._allowed, reader.name, 0, in_place=True)
                if _held_elsewhere(pieces):
                    # Something other than numpy kept a buffer, which the lease could not
                    # empty: made again, over copies.
                    value = load(data, [bytearray(p) for p in pieces], reader._allowed, "", 0)
                values.append(value)
        except _Counted:
            if not values:
                self._end(False)
                raise
        return values

    def _end(self, ok: bool) -> None:
        lease, self._lease = self._lease, None
        n = len(self._values)
        self._values.clear()
        if lease is not None:
            lease.release(ok, n)

    async def __aenter__(self) -> list[Any]:
        while (values := self._try()) is None:
            await self._reader._wait(1)
        return values

    def __enter__(self) -> list[Any]:
        deadline = _Deadline(self._timeout)
        while (values := self._try()) is None:
            if not self._reader._native.wait(1, deadline.left()):
                raise TimedOutError(
                    f"channel '{self._reader.name}': timed out waiting for values",
                    name=self._reader.name,
                )
        return values

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._end(exc_type is None)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._end(exc_type is None)


def _held_elsewhere(pieces: list[Any]) -> bool:
    """True if something besides the list holds one of ``pieces`` (numpy's arrays made by
    the in-place load hold the lease's array, not the piece)."""
    return any(sys.getrefcount(pieces[i]) > 2 for i in range(len(pieces)))
