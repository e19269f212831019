"""How the ends wait: in the running asyncio loop on the channel's doorbell (``add_reader``:
no thread, no polling), and, for the blocking calls, within what is left of a ``timeout=``."""

from __future__ import annotations

import asyncio
import time


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _readable(fd: int) -> None:
    """Waits until ``fd`` is readable, in the running loop (``add_reader``: no thread)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _wake, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class _Deadline:
    """What is left of a ``timeout=`` across several waits."""

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be a non-negative number of seconds, or None")
        self._end = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())
