"""Channels from outside, without opening them for use (the CLI's ``ls``, ``inspect``,
``rm`` and ``gc``)."""

from __future__ import annotations

from typing import Any

from . import _shmchan


def list_channels() -> list[str]:
    """The names of the channels on this machine (in the shared-memory directory, or
    ``$SHMCHAN_DIR``), sorted."""
    return _shmchan.list()


def inspect(name: str) -> dict[str, Any]:
    """What channel ``name``'s header says, without opening it for use: ``capacity``,
    ``len``, the element's ``element_size``, ``element_align``, ``element_type`` (a
    primitive's name, or None) and ``descr`` (its description, see
    :attr:`ChannelIO.descr`), ``schema``, ``writer_state`` (``"open"``, ``"closed"`` or
    ``"aborted"``, with ``abort_reason``), ``reader_closed``, ``in_use``, ``persist``,
    ``owner_uid``, ``mode``, and for ``writer`` and ``reader``: ``held`` (a live process
    has the end), ``pid`` and ``claims``. :class:`NotFoundError` if there is no such
    channel; a file that is no readable channel raises its error."""
    return _shmchan.inspect(name)


def remove(name: str) -> None:
    """Removes channel ``name`` and its files, in use or not: processes that have it open
    keep working on it, and new opens no longer find it. :class:`NotFoundError` if there is
    none."""
    _shmchan.remove(name)


def gc(*, all: bool = False, dry_run: bool = False) -> list[dict[str, Any]]:
    """Removes every channel that no live process has open, except another user's, a
    persistent one, one whose items or end of stream still wait for a reader (even of a
    writer that died), and files under a channel's name that are not a readable channel;
    ``all=True`` removes those too, other users' channels excepted. Also removes the
    temporary directories of creators killed midway (ours, older than a minute, whose
    process is gone). Each channel is judged under its own lock: a process that opens it
    at that moment either keeps it or finds it gone. ``dry_run=True`` removes nothing and
    says what would go.

    Returns one dict per channel, then per leftover directory: ``name``, ``path``,
    ``leftover`` (a temporary directory, not a channel), ``action`` (``"removed"``,
    ``"would_remove"``, ``"kept"`` or ``"failed"``) and ``reason``: ``"not_in_use"``
    (with its ``state``: ``"stale"``, ``"unused"``, ``"finished"``...), ``"leftover"``,
    ``"unreadable"`` (with the ``error`` reading it raised), or why it is kept:
    ``"in_use"``, ``"other_user"`` (``owner_uid``), ``"persistent"``, ``"undelivered"``
    (``items``, and ``end_of_stream``: the writer closed or aborted). A ``"failed"`` entry
    has the ``error`` its removal raised, and the other channels are collected all the
    same. Keys that do not apply are None. :class:`OSError` if the shared-memory
    directory cannot be read."""
    return _shmchan.gc(all, dry_run)
