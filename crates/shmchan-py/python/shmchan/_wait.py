"""How the ends wait: in the running asyncio loop on the channel's doorbell (``add_reader``:
no thread, no polling), and, for the blocking calls, within what is left of a ``timeout=``."""

from __future__ import annotations

import asyncio
import time

# The tasks waiting on each descriptor, per loop. `add_reader` keeps one callback per
# descriptor (a second call replaces the first), so all the tasks that wait on one end's
# descriptor share one callback, which wakes them all.
_waiting: dict[tuple[asyncio.AbstractEventLoop, int], set[asyncio.Future[None]]] = {}


def _wake_all(key: tuple[asyncio.AbstractEventLoop, int]) -> None:
    loop, fd = key
    loop.remove_reader(fd)
    for ready in _waiting.pop(key, set()):
        if not ready.done():
            ready.set_result(None)


async def _readable(fd: int) -> None:
    """Waits until ``fd`` is readable, in the running loop (``add_reader``: no thread).
    Any number of tasks may wait on one descriptor: each is woken."""
    loop = asyncio.get_running_loop()
    key = (loop, fd)
    ready: asyncio.Future[None] = loop.create_future()
    waiting = _waiting.get(key)
    if waiting is None:
        waiting = _waiting[key] = set()
        loop.add_reader(fd, _wake_all, key)
    waiting.add(ready)
    try:
        await ready
    finally:
        waiting.discard(ready)
        # The last task to stop waiting (cancelled, say) before a wake takes the callback.
        if not waiting and _waiting.get(key) is waiting:
            del _waiting[key]
            loop.remove_reader(fd)


class _Deadline:
    """What is left of a ``timeout=`` across several waits."""

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be a non-negative number of seconds, or None")
        self._end = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())
