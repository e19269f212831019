"""The exceptions of shmchan: one hierarchy, rooted at :class:`ChannelError`.

Each class is one of the Rust library's error kinds (`shmchan::ErrorKind`), but for the
pickling errors of object channels. Counts are in items: elements of the channel's dtype,
or messages of a message or object channel."""

from __future__ import annotations

import pickle

# The one list of the exceptions: shmchan re-exports these names (its __init__ takes this
# list), and the native module looks its classes up here by name (src/errors.rs).
__all__ = [
    "AbiMismatchError",
    "AbortedError",
    "AlreadyExistsError",
    "CapacityMismatchError",
    "ChannelError",
    "ChannelOSError",
    "CorruptedError",
    "ElementMismatchError",
    "EndClosedError",
    "EndTakenError",
    "ForeignOwnerError",
    "ForeignSegmentError",
    "ForkedError",
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
    "PicklingError",
    "QueueClosedError",
    "SchemaMismatchError",
    "TimedOutError",
    "TooSmallError",
    "UnpicklingError",
    "UnsupportedElementError",
    "VersionMismatchError",
    "ViewOpenError",
]


class ChannelError(Exception):
    """The root of every error shmchan raises. ``name`` is the channel's, when known."""

    name: str | None

    def __init__(self, message: str, *, name: str | None = None, **attrs: object) -> None:
        super().__init__(message)
        self.name = name
        for key, value in attrs.items():
            setattr(self, key, value)


class _Counted(ChannelError):
    """An error that counts items: ``remaining`` (still readable), ``filled`` (already in
    the caller's array), ``accepted`` (of a put). Each is 0 unless the error says otherwise
    (the native module passes them as keywords)."""

    remaining: int = 0
    filled: int = 0
    accepted: int = 0


class QueueClosedError(_Counted, RuntimeError):
    """The stream is over (the seed's name).

    On a get: the writer closed and fewer items than asked remain; nothing was removed
    (``remaining`` items are still readable, ``filled`` were already copied into an array
    larger than the ring). On a put: the reader closed the channel; ``accepted`` items of
    the put went in before."""


class AbortedError(QueueClosedError):
    """The writer aborted the stream with ``reason``; the reader drained what was sent."""

    reason: str = ""


class PeerGoneError(_Counted):
    """The other end's process died (or left without closing).

    On a get, reported once ``remaining`` is 0 (the items it sent are read first); a later
    get waits for a restarted writer. On a put, ``accepted`` items went in; a later put
    waits for a restarted reader, which resumes where the dead one stopped."""


class TimedOutError(_Counted, TimeoutError):
    """A blocking call's ``timeout=`` passed. An array get removed nothing (``filled`` is
    non-zero only for an array larger than the ring); a message or object get took
    ``filled`` values into its list; a put accepted ``accepted`` items."""


class EndTakenError(ChannelError):
    """The end is held by a live holder, in another process (``pid``) or in this one."""

    pid: int | None = None


class ElementMismatchError(ChannelError, TypeError):
    """The channel's element type and this side's differ (the message names both): their
    sizes, alignments, or descriptions (``expected_descr`` is this side's, ``found_descr``
    the channel's, in the NPY format's ``descr`` notation; None for a side without one)."""

    expected_size: int
    expected_align: int
    found_size: int
    found_align: int
    expected_descr: str | None = None
    found_descr: str | None = None


class CorruptedError(ChannelError):
    """The segment holds values no correct peer writes: it was damaged or forged."""


class EndClosedError(ChannelError):
    """This end was closed (or left) already."""


class ForkedError(ChannelError):
    """This end was claimed by another process (``pid``), and this one inherited it through
    ``fork`` (multiprocessing's fork start method, ``os.fork``): it cannot be used, closed
    or left here. Pass the :class:`ChannelIO` to the process instead (pickled or inherited,
    it opens the channel by name there) and claim an end from it. The claimant's end is
    untouched."""

    pid: int | None = None


class ViewOpenError(ChannelError):
    """A zero-copy view (or reserved slots) of this end is open: leave its ``with`` block
    before the next call."""


class OversizedError(ChannelError, ValueError):
    """More items were asked for at once than the ring holds, or a message (a pickled
    value with its buffers) is longer than the ring takes; ``accepted`` messages of the put
    went in before it."""

    accepted: int = 0


class PicklingError(ChannelError, pickle.PicklingError):
    """Value ``index`` of a put to an object channel cannot be pickled: nothing of the put
    went in (every value is pickled before any is put)."""

    index: int = 0


class UnpicklingError(_Counted, pickle.UnpicklingError):
    """The next value of an object channel cannot be unpickled in this process (a module it
    lacks, a global its ``allow=`` refuses, a garbled pickle). It stays in the channel, so
    nothing is lost: make it loadable and read again, or ``skip()`` it. ``filled`` values
    of the get came before it."""

    filled: int = 0


class InvalidNameError(ChannelError, ValueError):
    """The channel name is not valid."""


class InvalidCapacityError(ChannelError, ValueError):
    """The capacity is zero or too large."""


class InvalidSchemaError(ChannelError, ValueError):
    """The schema tag is too long or holds a NUL byte."""


class UnsupportedElementError(ChannelError, TypeError):
    """The dtype cannot be a channel's element (objects, a foreign byte order, …)."""


class AlreadyExistsError(ChannelError, FileExistsError):
    """``create`` found a channel of that name."""


class NotFoundError(ChannelError, FileNotFoundError):
    """``open`` found no channel of that name."""


class PermissionDeniedError(ChannelError, PermissionError):
    """The channel's files may not be opened by this user."""


class ForeignOwnerError(ChannelError, PermissionError):
    """The channel belongs to another user (see the Rust ``accept_other_owner``)."""


class SchemaMismatchError(ChannelError, TypeError):
    """The channel's schema tag differs from this side's."""


class CapacityMismatchError(ChannelError, ValueError):
    """``create_or_open`` was given a capacity, and the channel that exists has another:
    ``requested`` is the capacity asked for, ``rounded`` what a create with it makes (whole
    pages), ``found`` the channel's. Pass no capacity (or use ``open``) to use the channel
    as it is, or remove it to create it anew."""

    requested: int
    rounded: int
    found: int


class TooSmallError(ChannelError):
    """The segment is smaller than its header says."""


class ForeignSegmentError(ChannelError):
    """The segment is not a shmchan channel."""


class VersionMismatchError(ChannelError):
    """The segment has another layout version."""


class AbiMismatchError(ChannelError):
    """The segment was made for another pointer width or byte order."""


class NotInitializedError(ChannelError):
    """The creator has not finished making the channel (it may have died)."""


class NoSpaceError(ChannelError, OSError):
    """The shared-memory file system has no room for the ring."""


class MembarrierUnavailableError(ChannelError, OSError):
    """``membarrier(2)`` was required but is not available."""


class ChannelOSError(ChannelError, OSError):
    """Any other system error."""
