"""What every channel open in this process shares, of arrays, messages or objects: its
native handle, which a process that inherited it through ``fork`` opens again by name."""

from __future__ import annotations

import os
from typing import Generic, Protocol, Self, TypeVar


class _Handle(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Handle)


class _Named(Generic[N]):
    """A channel open in this process, through its native handle ``N``."""

    _native: N
    _pid: int

    @classmethod
    def _from_native(cls, native: N) -> Self:
        """The channel object of a native handle (how ``create``, ``open`` and
        ``create_or_open`` make one)."""
        chan = cls.__new__(cls)
        chan._adopt(native)
        return chan

    def _adopt(self, native: N) -> None:
        self._native = native
        # The process the native handle was opened in: a handle inherited through fork
        # cannot claim (its locks are the parent's open file description's).
        self._pid = os.getpid()

    def _reopen(self) -> N:
        """The channel opened again by name, as this object pickles."""
        raise NotImplementedError

    def _here(self) -> N:
        """The native handle, opened again by name if this process inherited it through
        fork."""
        if self._pid != os.getpid():
            self._native = self._reopen()
            self._pid = os.getpid()
        return self._native

    @property
    def name(self) -> str:
        """The channel's name."""
        return self._native.name

    def __bool__(self) -> bool:
        """True: a channel is something, even when it holds nothing (``len`` says that)."""
        return True
