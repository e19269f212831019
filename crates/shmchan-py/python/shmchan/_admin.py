"""Channels from outside, without opening them for use (the CLI's ``ls``, ``inspect`` and
``rm``)."""

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
