"""Functions that multiprocessing workers run (test_fork.py): a module of their own, light to
import, so that a worker started with the spawn method finds them by name."""

from __future__ import annotations

import asyncio
import multiprocessing.queues
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

import shmchan


def read_all(
    source: shmchan.ChannelIO | multiprocessing.queues.Queue[shmchan.ChannelIO],
    out: Connection,
    timeout: float,
) -> None:
    """Receives a channel (as the process's argument, or through a queue), claims its
    reader, reads until the writer closes, and sends back every item it read."""
    chan = source if isinstance(source, shmchan.ChannelIO) else source.get(timeout=timeout)
    parts = []
    with chan.reader() as r:
        buf = np.empty(1000, chan.dtype)
        while True:
            try:
                n = r.blocking_get_some(buf, timeout=timeout)
            except shmchan.QueueClosedError:
                break
            parts.append(buf[:n].copy())
    out.send(np.concatenate(parts) if parts else np.empty(0, chan.dtype))


def use_inherited(end: shmchan.Reader | shmchan.Writer, out: Connection) -> None:
    """In a child forked from the end's claimant: makes every kind of call of the end and
    sends back, for each, the exception class it raised (or "returned"), the exception's
    ``pid`` and its message."""
    one = np.zeros(1, end.dtype)
    calls: list[tuple[str, Callable[[], object]]]
    if isinstance(end, shmchan.Reader):
        r = end

        def peek() -> None:
            with r.blocking_peek(1, timeout=5):
                pass

        calls = [
            ("blocking_get", lambda: r.blocking_get(one, timeout=5)),
            ("blocking_get_some", lambda: r.blocking_get_some(one, timeout=5)),
            ("try_get_some", lambda: r.try_get_some(one)),
            ("get", lambda: asyncio.run(r.get(one))),
            ("get_some", lambda: asyncio.run(r.get_some(one))),
            ("blocking_peek", peek),
            ("close", r.close),
            ("leave", r.leave),
        ]
    else:
        w = end

        def reserve() -> None:
            with w.blocking_reserve(1, timeout=5) as slots:
                slots[:] = 100

        calls = [
            ("blocking_put", lambda: w.blocking_put(one + 100, timeout=5)),
            ("try_put", lambda: w.try_put(one + 100)),
            ("put", lambda: asyncio.run(w.put(one + 100))),
            ("blocking_reserve", reserve),
            ("abort", lambda: w.abort("from the child")),
            ("close", w.close),
            ("leave", w.leave),
        ]
    results: list[tuple[str, str, Any, str]] = []
    for what, call in calls:
        try:
            call()
            results.append((what, "returned", None, ""))
        except Exception as e:
            results.append((what, type(e).__name__, getattr(e, "pid", None), str(e)))
    out.send(results)


def end_lent(lent: Any, out: Connection) -> None:
    """In a child forked while the parent's view (or reserved slots) was open: leaves its
    ``with`` block, and sends back what that raised."""
    try:
        lent.__exit__(None, None, None)
        out.send(("returned", None))
    except Exception as e:
        out.send((type(e).__name__, getattr(e, "pid", None)))
