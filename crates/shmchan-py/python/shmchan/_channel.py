"""The channel, open in this process, and the opening of it: :class:`ChannelIO`."""

from __future__ import annotations

import itertools
import operator
import os
import secrets
from typing import Any, SupportsIndex

import numpy as np
import numpy.typing as npt

from . import _shmchan
from ._errors import InvalidCapacityError
from ._named import _Named
from ._reader import Reader
from ._writer import Writer


class ChannelIO(_Named[_shmchan._Channel]):
    """A named channel of one dtype, open in this process.

    It hands out the channel's two ends, :meth:`writer` and :meth:`reader`: one of each
    across all processes at a time. The channel records the dtype's description
    (:attr:`descr`), and an open with a dtype described otherwise is refused. A Rust
    program opens the same channel with ``ChannelIo::<T>`` of a ``T`` of the same size and
    alignment (``#[repr(C)]`` for a structured dtype made with ``align=True``), the same
    schema tag, and, to be checked field by field, the same description
    (``Options::descr``).

    The channel is removed when the last handle to it (in any process) goes, once its
    reader has closed it, unless it was created with ``persist=True``.

    In another process a ``ChannelIO`` is the channel by name: it pickles as its name,
    dtype and schema tag (a multiprocessing worker started with any start method receives
    it), and one inherited through ``fork`` opens the channel again in the child when it
    claims an end there. The ends themselves stay in the process that claimed them.

    ``ChannelIO(maxsize=n, dtype=dt)``, the seed's constructor, creates a *private*
    channel: one of a generated name (``private-PID-N-RANDOM``, which no other program
    guesses), not persistent, for this program and the workers it hands the ``ChannelIO``
    to. Its ring holds ``maxsize`` items (rounded up to whole pages); ``maxsize=0``, the
    default, gives the default capacity (a ring of 1 MiB): a ring has a size, so the
    seed's 0, unbounded, is not possible. ``dtype`` is required (a ``TypeError`` says so
    without it, or with ``None``): a ``ChannelIO`` is typed; :class:`ObjectChannelIO`
    carries Python values of any kind. It is removed as every channel is: when its last
    handle, in any process, goes, once its reader has closed it (or if no end was ever claimed)."""

    def __init__(self, *, maxsize: int = 0, dtype: npt.DTypeLike | None = None) -> None:
        """Creates a private channel of ``dtype`` with room for ``maxsize`` items (0: the
        default capacity); see the class's documentation."""
        if dtype is None:
            raise TypeError(
                "ChannelIO() needs a dtype, as in ChannelIO(maxsize=1000, dtype=np.float64): "
                "a ChannelIO is a ring of items of one numpy dtype; for Python values of any "
                "kind (lists, dicts, DataFrames), as the seed's ChannelIO(maxsize=...) "
                "carries, use ObjectChannelIO(capacity=BYTES)"
            )
        dtype = np.dtype(dtype)
        name = _private_name()
        capacity = _capacity(name, _count(maxsize, "maxsize"), "maxsize") or None
        self._adopt(_shmchan._Channel.connect("create", name, dtype, capacity))

    def __reduce__(self) -> tuple[Any, tuple[str, np.dtype[Any], str | None]]:
        """Pickles as "open channel ``name`` of this dtype and schema tag" (the segment,
        its locks and its ends stay behind)."""
        return (_open, (self.name, self.dtype, self.schema))

    def _reopen(self) -> _shmchan._Channel:
        return _shmchan._Channel.connect("open", self.name, self.dtype, None, self.schema)

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
        return cls._from_native(
            _shmchan._Channel.connect(
                "create", name, np.dtype(dtype), _capacity(name, capacity), schema, mode, persist
            )
        )

    @classmethod
    def open(cls, name: str, dtype: npt.DTypeLike, *, schema: str | None = None) -> ChannelIO:
        """Opens existing channel ``name``, which must hold ``dtype`` (its size, alignment,
        and description: field names and order, kinds, units, byte order, padding) and have
        ``schema`` as its tag: else :class:`ElementMismatchError` (naming both descriptions)
        or :class:`SchemaMismatchError`. A channel that a Rust record type created without a
        description is checked by size and alignment only."""
        return cls._from_native(
            _shmchan._Channel.connect("open", name, np.dtype(dtype), None, schema)
        )

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
        """Opens channel ``name``, creating it (as :meth:`create`) if it does not exist.

        A ``capacity`` is required of a channel that exists: if its capacity is not what
        :meth:`create` with that ``capacity`` makes (capacities are rounded up to whole
        pages, so asking again for what one asked for before opens it), this raises
        :class:`CapacityMismatchError`, naming both. Without a ``capacity``, it opens the
        channel whatever its capacity."""
        return cls._from_native(
            _shmchan._Channel.connect(
                "create_or_open",
                name,
                np.dtype(dtype),
                _capacity(name, capacity),
                schema,
                mode,
                persist,
            )
        )

    def writer(self) -> Writer:
        """Claims the writing end (:class:`EndTakenError` if a live holder has it). A writer
        that replaces a dead one appends after the last item it committed."""
        return Writer(self._here().writer(), self.dtype)

    def reader(self) -> Reader:
        """Claims the reading end (:class:`EndTakenError` if a live holder has it). A reader
        that replaces a dead one resumes at the first item it had not consumed."""
        return Reader(self._here().reader(), self.dtype)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The items' dtype."""
        return self._native.dtype

    @property
    def descr(self) -> str | None:
        """The channel's element description, in the NPY format's ``descr`` notation, as its
        creator recorded it: ``repr(numpy.lib.format.dtype_to_descr(dtype))`` for a dtype
        (a top-level subarray ``(3,)f4`` is ``('<f4', (3,))``), None for a Rust record type
        created without one."""
        return self._native.descr

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
        return f"<shmchan.ChannelIO {self.name!r} of {self.dtype}, capacity {self.capacity}>"


def _open(name: str, dtype: np.dtype[Any], schema: str | None) -> ChannelIO:
    """What a pickled :class:`ChannelIO` is: channel ``name`` opened in this process."""
    return ChannelIO.open(name, dtype, schema=schema)


def _count(value: object, what: str) -> int:
    """``value`` as an int if it is an integer (anything with ``__index__`` but a bool);
    else a ``TypeError`` naming ``what``."""
    if isinstance(value, SupportsIndex) and not isinstance(value, bool):
        return operator.index(value)
    raise TypeError(f"{what} must be an integer (a number of items), not {type(value).__name__}")


_private = itertools.count()


def _private_name() -> str:
    """A name for a private channel: this process's pid and a counter make it unique here
    (and among the live processes), and 64 random bits keep other programs from guessing it
    or colliding with it (a name reused after this process is gone, say)."""
    return f"private-{os.getpid()}-{next(_private)}-{secrets.token_hex(8)}"


def _capacity(name: str, capacity: int | None, what: str = "capacity") -> int | None:
    """``capacity`` if it can be a count of elements: a ``TypeError`` if it is not an
    integer, an :class:`InvalidCapacityError` if it is out of range (the library refuses 0
    and rings too large for its own reasons). ``what``: the parameter's name."""
    if capacity is None:
        return None
    capacity = _count(capacity, what)
    if not 0 <= capacity < 2**64:
        raise InvalidCapacityError(
            f"channel '{name}': invalid {what} {capacity}: not a count of elements",
            name=name,
        )
    return capacity
