"""shmchan: typed channels between processes through shared memory.

A channel is a ring of fixed-size items (one numpy dtype) in a shared-memory segment that two
unrelated processes open by name: one writer, one reader, in either start order, in Python or
in Rust. Items are copied in and out of numpy arrays, or read and written in place.

>>> import numpy as np, shmchan
>>> chan = shmchan.ChannelIO.create("doc-imu", np.float32, capacity=1 << 16)
>>> w, r = chan.writer(), chan.reader()
>>> w.blocking_put(np.arange(5, dtype=np.float32))
>>> r.blocking_get(np.empty(3, np.float32))
array([0., 1., 2.], dtype=float32)
>>> w.close()
>>> r.blocking_get_some(np.empty(8, np.float32))
2
>>> r.close()

The async methods wait on the channel's doorbell with ``loop.add_reader``: no thread per
waiter, no polling, no tokio. The blocking twins sleep without the GIL, and Ctrl-C ends them.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from . import _errors, _shmchan
from ._admin import gc, inspect, remove
from ._admin import list_channels as list
from ._channel import ChannelIO
from ._end import _End, _EndBase, _Lent
from ._errors import *  # noqa: F403  (the exceptions: _errors.__all__ is their one list)
from ._messages import MessageChannelIO, ObjectChannelIO
from ._msgreader import MessageReader, ObjectReader
from ._msgwriter import MessageWriter, ObjectWriter
from ._reader import Reader
from ._view import SlotArray
from ._writer import Writer

if TYPE_CHECKING:
    # mypy does not follow `__all__ += _errors.__all__` (python/mypy#15300); this import
    # gives it the same names (and the list below adds to them).
    from ._errors import __all__ as __all__

__all__ = [
    "ChannelIO",
    "MessageChannelIO",
    "MessageReader",
    "MessageWriter",
    "ObjectChannelIO",
    "ObjectReader",
    "ObjectWriter",
    "Reader",
    "SlotArray",
    "Writer",
    "gc",
    "inspect",
    "list",
    "remove",
]
__all__ += _errors.__all__

__version__: str = _shmchan.__version__

# The classes a user meets keep the module they had when they were defined here: reprs,
# help(), docs and pickling name them shmchan.Reader, not shmchan._reader.Reader.
for _cls in (
    ChannelIO,
    MessageChannelIO,
    MessageReader,
    MessageWriter,
    ObjectChannelIO,
    ObjectReader,
    ObjectWriter,
    Reader,
    Writer,
    _End,
    _EndBase,
    _Lent,
):
    _cls.__module__ = __name__
del _cls


def __dir__() -> builtins.list[str]:
    """The package's public names (its submodules and helpers are not part of its API)."""
    return sorted([*__all__, "__version__"])
