"""Ends and channels across fork and multiprocessing: an end inherited through fork raises
ForkedError in the child and stays the parent's; a ChannelIO passed to a worker (pickled,
or inherited through fork) opens the channel by name there, and the worker claims an end
of its own; an end does not pickle. Every wait for a child is bounded (conftest.TIMEOUT)."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
from typing import Any

import numpy as np
import pytest

import shmchan
from conftest import TIMEOUT, worker_result
from workers import end_lent, read_all, use_inherited

U64 = np.dtype(np.uint64)


@pytest.mark.parametrize("end", ["reader", "writer"])
def test_an_inherited_end_raises_forked_error_and_stays_the_parents(name: str, end: str) -> None:
    chan = shmchan.ChannelIO.create(name, U64, capacity=512)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(1, 7, dtype=U64))
    assert list(r.blocking_get(np.empty(2, U64))) == [1, 2]
    ctx = mp.get_context("fork")
    theirs, ours = ctx.Pipe(duplex=False)
    child = ctx.Process(target=use_inherited, args=(r if end == "reader" else w, ours))
    child.start()
    results = worker_result(theirs, child)
    assert results, "no call was tried"
    for what, raised, pid, _ in results:
        assert (what, raised, pid) == (what, "ForkedError", os.getpid())
    message = results[0][3]
    assert name in message
    assert "fork" in message
    assert "ChannelIO" in message
    # Nothing of the parent's moved: the ends are held, open, at their positions.
    info = shmchan.inspect(name)
    assert info["writer"]["held"]
    assert info["reader"]["held"]
    assert info["writer_state"] == "open"
    assert not info["reader_closed"]
    assert info["len"] == 4
    # The stream goes on, nothing lost, nothing twice.
    w.blocking_put(np.array([7, 8], U64))
    assert list(r.blocking_get(np.empty(6, U64))) == [3, 4, 5, 6, 7, 8]
    w.close()
    with pytest.raises(shmchan.QueueClosedError):
        r.blocking_get_some(np.empty(1, U64), timeout=TIMEOUT)
    r.close()


@pytest.mark.parametrize("end", ["reader", "writer"])
def test_a_view_open_across_a_fork_is_the_parents(name: str, end: str) -> None:
    """The child leaving the block of a view (or of reserved slots) lent before the fork
    consumes (commits) nothing; the parent's block then does, once."""
    chan = shmchan.ChannelIO.create(name, U64, capacity=512)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(4, dtype=U64))
    lent = r.blocking_peek(2, timeout=TIMEOUT) if end == "reader" else w.blocking_reserve(2)
    ctx = mp.get_context("fork")
    theirs, ours = ctx.Pipe(duplex=False)
    with lent as slots:
        if end == "writer":
            slots[:] = [4, 5]
        child = ctx.Process(target=end_lent, args=(lent, ours))
        child.start()
        assert worker_result(theirs, child) == ("ForkedError", os.getpid())
        assert len(chan) == 4
    assert len(chan) == (2 if end == "reader" else 6)
    first = 2 if end == "reader" else 0
    got = r.blocking_get(np.empty(len(chan), U64))
    assert list(got) == list(range(first, 6 if end == "writer" else 4))
    w.close()
    r.close()


@pytest.mark.parametrize(
    ("method", "via"),
    [("spawn", "argument"), ("fork", "queue"), ("fork", "argument")],
)
def test_a_worker_given_the_channel_claims_its_own_end(name: str, method: str, via: str) -> None:
    """spawn pickles the argument; a queue pickles under fork too; a fork's argument is
    inherited, and opens the channel again by name when the worker claims its reader."""
    n = 20_000
    chan = shmchan.ChannelIO.create(name, U64, capacity=512)
    ctx = mp.get_context(method)
    theirs, ours = ctx.Pipe(duplex=False)
    queue: Any = ctx.Queue() if via == "queue" else None
    source = queue if via == "queue" else chan
    worker = ctx.Process(target=read_all, args=(source, ours, TIMEOUT))
    worker.start()
    if queue is not None:
        queue.put(chan)
    with chan.writer() as w:
        for start in range(0, n, 1500):
            w.blocking_put(np.arange(start, min(start + 1500, n), dtype=U64), timeout=TIMEOUT)
    got = worker_result(theirs, worker)
    assert got.dtype == U64
    assert np.array_equal(got, np.arange(n, dtype=U64))


def test_a_channel_pickles_as_its_name_and_an_end_does_not(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, U64, capacity=512, schema="ticks/v1")
    again = pickle.loads(pickle.dumps(chan))
    assert isinstance(again, shmchan.ChannelIO)
    assert (again.name, again.dtype, again.capacity, again.schema) == (
        name,
        U64,
        chan.capacity,
        "ticks/v1",
    )
    w = chan.writer()
    w.blocking_put(np.array([5], U64))
    # The copy is a handle of the same channel.
    assert len(again) == 1
    r = again.reader()
    assert list(r.blocking_get(np.empty(1, U64))) == [5]
    for end in (w, r):
        with pytest.raises(TypeError, match=r"pass the ChannelIO"):
            pickle.dumps(end)
    w.close()
    r.close()
