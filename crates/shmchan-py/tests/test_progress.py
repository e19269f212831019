"""What a call did before its peer died: a put's `accepted` and a get's `filled` count the
items the call moved, however it waited (blocking or asyncio), so that resending
`items[e.accepted:]` neither loses nor repeats an item, and the filled prefix of a frame is
known. Across real processes, the peer killed with SIGKILL while the call sleeps. Every
child has a watchdog (conftest.TIMEOUT)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import shmchan
from conftest import Child, OnThread, python_child

TIMEOUT_S = 60.0
CAPACITY = 4096


@pytest.mark.parametrize("mode", ["blocking", "async"])
def test_a_put_counts_what_went_in_before_the_reader_died(
    name: str, children: list[Child], mode: str
) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, CAPACITY)
    assert chan.capacity == CAPACITY
    w = chan.writer()
    holder = python_child("hold-reader", name)  # claims the reader, reads nothing
    children.append(holder)
    assert holder.line() == "ready"
    items = np.arange(3 * CAPACITY, dtype=np.uint64)

    def put() -> None:
        if mode == "async":
            asyncio.run(w.put(items))
        else:
            w.blocking_put(items, timeout=TIMEOUT_S)

    blocked = OnThread(put)
    blocked.asleep()  # the ring is full: the put sleeps
    holder.kill()
    err = blocked.join(TIMEOUT_S, "the writer never learned of the reader's death")
    assert isinstance(err, shmchan.PeerGoneError), repr(err)
    # The ring took the first CAPACITY items, and the put says so: resending
    # items[e.accepted:] to a new reader repeats nothing and loses nothing.
    assert len(chan) == CAPACITY
    assert err.accepted == CAPACITY
    r = chan.reader()
    first = r.blocking_get(np.empty(CAPACITY, np.uint64), timeout=TIMEOUT_S)
    assert np.array_equal(first, items[:CAPACITY])
    w.blocking_put(items[err.accepted : err.accepted + CAPACITY], timeout=TIMEOUT_S)
    rest = r.blocking_get(np.empty(CAPACITY, np.uint64), timeout=TIMEOUT_S)
    assert np.array_equal(rest, items[CAPACITY : 2 * CAPACITY])


@pytest.mark.parametrize("mode", ["blocking", "async"])
def test_a_get_counts_what_it_filled_before_the_writer_died(
    name: str, children: list[Child], mode: str
) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, CAPACITY)
    r = chan.reader()
    # Larger than the ring, so the get fills it in pieces while the writer puts.
    frame = np.full(10_000, np.iinfo(np.uint64).max, np.uint64)

    def get() -> None:
        if mode == "async":
            asyncio.run(r.get(frame))
        else:
            r.blocking_get(frame, timeout=TIMEOUT_S)

    blocked = OnThread(get)
    holder = python_child("hold-writer", name, 6000, "u8")  # puts 0..6000, then holds
    children.append(holder)
    assert holder.line() == "ready"
    blocked.asleep()  # 6000 in the frame, waiting for the rest
    holder.kill()
    err = blocked.join(TIMEOUT_S, "the reader never learned of the writer's death")
    assert isinstance(err, shmchan.PeerGoneError), repr(err)
    assert err.filled == 6000
    assert err.remaining == 0
    assert np.array_equal(frame[:6000], np.arange(6000, dtype=np.uint64))
