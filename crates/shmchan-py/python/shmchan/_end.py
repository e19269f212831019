"""What the reading and the writing end share: the dtype, waiting, closing, the context
managers, and the lending of a zero-copy view (``peek``) or of reserved slots (``reserve``)."""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import numpy as np

from . import _shmchan
from ._errors import TimedOutError
from ._view import SlotArray
from ._wait import _Deadline, _readable


class _Done:
    """What :meth:`_EndBase.close` returns: nothing is left to wait for, but it may be awaited."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


_DONE = _Done()


_Native = _shmchan._Reader | _shmchan._Writer | _shmchan._MessageReader | _shmchan._MessageWriter


class _EndBase:
    """What every end shares (of an array channel, and of a message or object channel):
    waiting, closing, the context manager."""

    _native: _Native

    @property
    def name(self) -> str:
        """The channel's name."""
        return self._native.name

    @property
    def capacity(self) -> int:
        """How many items the ring holds (bytes, for a message or object channel); 0 once
        closed."""
        return self._native.capacity

    @property
    def closed(self) -> bool:
        """True once this end was closed (or left)."""
        return self._native.closed

    async def _wait(self, want: int, progress: int = 0) -> None:
        """One wait in the running loop for ``want`` items (or slots), or the end.
        ``progress``: the items the caller's call already moved, which an error counts."""
        native = self._native
        if not native.prepare_wait(want, progress):
            await _readable(native.wait_fd())
            native.finish_wait()

    def leave(self) -> None:
        """Lets go of this end without closing the channel, as a killed process would: the
        other end learns that its peer is gone, and a new holder carries on.
        :class:`ForkedError` in a process that inherited the end."""
        self._native.leave()

    def close(self) -> _Done:
        """Closes this end (see the subclass). Idempotent. Returns at once; the result may
        be awaited (``await w.close()``), as the seed's API has it. :class:`ForkedError`,
        closing nothing, in a process that inherited the end through fork."""
        self._native.close()
        return _DONE

    def __reduce__(self) -> NoReturn:
        """An end does not pickle: it is this process's claim, which no other process can
        use. Pass the :class:`ChannelIO` and claim the end where it arrives."""
        kind = type(self).__name__
        end = kind.lower()
        raise TypeError(
            f"a {kind} cannot be pickled: it is this process's claim of the {end} end of "
            f"channel '{self.name}', which no other process can use; pass the ChannelIO "
            f"instead (it pickles as the channel's name and dtype) and call its {end}() in "
            "the worker"
        )

    def __bool__(self) -> bool:
        """True: an end is something, even when its channel is empty (``len`` says that)."""
        return True

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


_E = TypeVar("_E", bound=_EndBase)
_WRITERS = (_shmchan._Writer, _shmchan._MessageWriter)


class _End(_EndBase):
    """What both ends of an array channel share: the dtype, and the rest of
    :class:`_EndBase`."""

    _native: _shmchan._Reader | _shmchan._Writer

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self._dtype = dtype

    @property
    def dtype(self) -> np.dtype[Any]:
        """The items' dtype."""
        return self._dtype


class _Lent:
    """The context manager of a zero-copy view or of reserved slots: lends them on entry
    (waiting as needed), takes them back on exit, consuming or committing them unless the
    block raised. See :class:`SlotArray` for what happens to the array then.

    ``n``: items of an array channel (None: all there, at least one), or bytes of room for
    a message; a message reader lends one message (``n`` is None)."""

    def __init__(self, end: _EndBase, n: int | None, timeout: float | None) -> None:
        self._end, self._n, self._timeout = end, n, timeout
        self._want = 1 if n is None else n
        self._lease: _shmchan._Lease | None = None

    def _try(self) -> _shmchan._Lease | None:
        native = self._end._native
        if isinstance(native, _shmchan._Reader):
            return native.try_peek(self._n)
        if isinstance(native, _shmchan._MessageReader):
            return native.try_peek()
        assert self._n is not None
        return native.try_reserve(self._n)

    def _array(self, lease: _shmchan._Lease) -> SlotArray:
        self._lease = lease
        array = lease.array
        assert array is not None
        return array

    async def __aenter__(self) -> SlotArray:
        while (lease := self._try()) is None:
            await self._end._wait(self._want)
        return self._array(lease)

    def __enter__(self) -> SlotArray:
        deadline = _Deadline(self._timeout)
        while (lease := self._try()) is None:
            if not self._end._native.wait(self._want, deadline.left()):
                raise TimedOutError(
                    f"channel '{self._end.name}': timed out waiting for "
                    f"{'room' if isinstance(self._end._native, _WRITERS) else 'items'}",
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
