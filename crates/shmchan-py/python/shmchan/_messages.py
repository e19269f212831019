"""Channels of messages: :class:`MessageChannelIO` (bytes of any length) and
:class:`ObjectChannelIO` (Python values of any kind)."""

from __future__ import annotations

from typing import Any, Self

from . import _shmchan
from ._channel import _capacity, _private_name
from ._errors import CapacityMismatchError, InvalidCapacityError
from ._msgreader import MessageReader, ObjectReader
from ._msgwriter import MessageWriter, ObjectWriter
from ._named import _Named
from ._pickling import OBJECT_SCHEMA, Allow, allowing


class _Messages(_Named[_shmchan._MessageChannel]):
    """What both kinds of message channel share: opening by name, the ring in bytes."""

    #: The schema tag every channel of the class has (None: the caller's).
    _schema: str | None = None

    @classmethod
    def _connect(
        cls,
        how: str,
        name: str,
        capacity: int | None,
        schema: str | None = None,
        mode: int | None = None,
        persist: bool = False,
    ) -> Self:
        capacity = _capacity(name, capacity)
        try:
            native = _shmchan._MessageChannel.connect(
                how,  # type: ignore[arg-type]
                name,
                capacity,
                cls._schema if cls._schema is not None else schema,
                mode,
                persist,
            )
        except CapacityMismatchError as e:
            # The library counts a message ring in 8-byte words; the caller asked in bytes.
            raise CapacityMismatchError(
                f"channel '{name}': a capacity of {capacity} bytes makes a ring of "
                f"{8 * e.rounded} bytes (whole pages), but the channel exists with a ring of "
                f"{8 * e.found} bytes; pass no capacity (or open it) to use it as it is, or "
                "remove it first (shmchan.remove)",
                name=name,
                requested=capacity,
                rounded=8 * e.rounded,
                found=8 * e.found,
            ) from None
        except InvalidCapacityError as e:
            raise InvalidCapacityError(
                f"channel '{name}': no ring of {capacity} bytes can be made (in 8-byte words: {e})",
                name=name,
            ) from None
        return cls._from_native(native)

    def _reopen(self) -> _shmchan._MessageChannel:
        return _shmchan._MessageChannel.connect("open", self.name, None, self.schema)

    @property
    def capacity(self) -> int:
        """Bytes of ring: what the messages in the channel take at most (each takes 8
        bytes more than its length, rounded up to 8)."""
        return self._native.capacity

    @property
    def max_message_len(self) -> int:
        """The longest message the channel takes, in bytes: the ring less 8."""
        return self._native.max_message_len

    @property
    def schema(self) -> str | None:
        """The channel's schema tag, if it has one."""
        return self._native.schema

    @property
    def len_bytes(self) -> int:
        """Bytes of ring the messages in the channel take now."""
        return self._native.len_bytes

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"<shmchan.{kind} {self.name!r}, capacity {self.capacity} bytes>"


class MessageChannelIO(_Messages):
    """A named channel of byte messages of any length, open in this process.

    Each message is a ``bytes`` of any length up to :attr:`max_message_len` (the ring less
    8 bytes): a :meth:`MessageWriter.put` of a list of bytes-likes appends each as one
    message, and a :meth:`MessageReader.get` fills a list with exactly as many messages as
    it is long. A Rust program opens the same channel with ``shmchan::MessageChannel``.

    Everything else is as for :class:`ChannelIO`: one writer and one reader across all
    processes, opening by name in either order, close, abort, peer death and restarts
    (a restarted reader resumes at the first message it had not consumed), pickling as
    "open by name", and ``fork``."""

    def __init__(self, *, capacity: int | None = None) -> None:
        """Creates a private message channel (a generated name, as ``ChannelIO()``) with a
        ring of ``capacity`` bytes (default 1 MiB)."""
        name = _private_name()
        self._adopt(_shmchan._MessageChannel.connect("create", name, _capacity(name, capacity)))

    @classmethod
    def create(
        cls,
        name: str,
        capacity: int | None = None,
        *,
        schema: str | None = None,
        mode: int | None = None,
        persist: bool = False,
    ) -> Self:
        """Creates message channel ``name`` with a ring of ``capacity`` bytes (rounded up
        to whole pages; default 1 MiB). :class:`AlreadyExistsError` if it exists."""
        return cls._connect("create", name, capacity, schema, mode, persist)

    @classmethod
    def open(cls, name: str, *, schema: str | None = None) -> Self:
        """Opens existing message channel ``name``, which must have ``schema`` as its tag.
        A channel of array items is :class:`ElementMismatchError`; an object channel is
        :class:`SchemaMismatchError` (its tag is ``"python-pickle-5"``)."""
        return cls._connect("open", name, None, schema)

    @classmethod
    def create_or_open(
        cls,
        name: str,
        capacity: int | None = None,
        *,
        schema: str | None = None,
        mode: int | None = None,
        persist: bool = False,
    ) -> Self:
        """Opens message channel ``name``, creating it (as :meth:`create`) if it does not
        exist; a ``capacity`` is checked as :meth:`ChannelIO.create_or_open` checks it."""
        return cls._connect("create_or_open", name, capacity, schema, mode, persist)

    def __reduce__(self) -> tuple[Any, tuple[str, str | None]]:
        """Pickles as "open message channel ``name``"."""
        return (_open_messages, (self.name, self.schema))

    def writer(self) -> MessageWriter:
        """Claims the writing end (:class:`EndTakenError` if a live holder has it)."""
        return MessageWriter(self._here().writer())

    def reader(self) -> MessageReader:
        """Claims the reading end (:class:`EndTakenError` if a live holder has it)."""
        return MessageReader(self._here().reader())


class ObjectChannelIO(_Messages):
    """A named channel of Python values of any kind, open in this process: the seed's
    channel of lists, dicts, arrays of changing shapes and DataFrames of any column types.

    Each value is one message: its pickle (protocol 5), with its out-of-band buffers (the
    memory of numpy arrays, pandas blocks, Arrow buffers) copied once, straight from the
    value into the ring. :meth:`ObjectWriter.put` takes a sequence of values;
    :meth:`ObjectReader.get` fills a list with exactly as many values as it is long.

    Unpickling runs the code that the pickle names, as ``multiprocessing.Queue`` does: read
    an object channel only from writers you trust (its files are the creator's, mode
    0o600 unless given), or pass ``allow=`` to :meth:`reader`, which loads only the globals
    it names.

    The channel's schema tag is ``"python-pickle-5"``. Everything else is as for
    :class:`MessageChannelIO`; ``capacity`` counts bytes of ring, and the largest value
    (its pickle and buffers) is a little under :attr:`max_message_len`."""

    _schema = OBJECT_SCHEMA

    def __init__(self, *, capacity: int | None = None) -> None:
        """Creates a private object channel (a generated name, as ``ChannelIO()``) with a
        ring of ``capacity`` bytes (default 1 MiB)."""
        name = _private_name()
        self._adopt(
            _shmchan._MessageChannel.connect(
                "create", name, _capacity(name, capacity), OBJECT_SCHEMA
            )
        )

    @classmethod
    def create(
        cls,
        name: str,
        capacity: int | None = None,
        *,
        mode: int | None = None,
        persist: bool = False,
    ) -> Self:
        """Creates object channel ``name`` with a ring of ``capacity`` bytes (rounded up to
        whole pages; default 1 MiB). :class:`AlreadyExistsError` if it exists."""
        return cls._connect("create", name, capacity, None, mode, persist)

    @classmethod
    def open(cls, name: str) -> Self:
        """Opens existing object channel ``name``: :class:`SchemaMismatchError` for a bytes
        channel, :class:`ElementMismatchError` for a channel of array items."""
        return cls._connect("open", name, None)

    @classmethod
    def create_or_open(
        cls,
        name: str,
        capacity: int | None = None,
        *,
        mode: int | None = None,
        persist: bool = False,
    ) -> Self:
        """Opens object channel ``name``, creating it (as :meth:`create`) if it does not
        exist; a ``capacity`` is checked as :meth:`ChannelIO.create_or_open` checks it."""
        return cls._connect("create_or_open", name, capacity, None, mode, persist)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        """Pickles as "open object channel ``name``"."""
        return (_open_objects, (self.name,))

    def writer(self) -> ObjectWriter:
        """Claims the writing end (:class:`EndTakenError` if a live holder has it)."""
        return ObjectWriter(self._here().writer())

    def reader(self, *, allow: Allow | None = None) -> ObjectReader:
        """Claims the reading end (:class:`EndTakenError` if a live holder has it).

        ``allow``: the globals (classes and functions) unpickling may load, as names
        ``"module.qualname"`` or a function of (module, qualname) that says yes or no; any
        other raises :class:`UnpicklingError` and leaves the value in the channel. None
        (the default) loads any, as ``pickle.loads`` does."""
        allowed = allowing(allow)  # refused before the end is claimed
        return ObjectReader(self._here().reader(), allowed)


def _open_messages(name: str, schema: str | None) -> MessageChannelIO:
    """What a pickled :class:`MessageChannelIO` is: channel ``name`` opened here."""
    return MessageChannelIO.open(name, schema=schema)


def _open_objects(name: str) -> ObjectChannelIO:
    """What a pickled :class:`ObjectChannelIO` is: channel ``name`` opened here."""
    return ObjectChannelIO.open(name)
