"""Cancellation (``asyncio.wait_for``'s timeout, a task's ``cancel()``) loses nothing and
duplicates nothing, when the obvious retry follows: the same call again. A ``get`` that
fits in the ring removes nothing until it completes; a larger one keeps what it took for
the next read; a ``put`` keeps its count for a retry with the same items. The storm test
runs the writer in another process, both sides cancelled at random."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import shmchan
from conftest import Child, python_child
from storm import batch_size, timeout_for

CAPACITY = 1024


async def cancelled(call: object) -> None:
    """Runs ``call`` (a coroutine) until it waits, then cancels it, as ``wait_for`` does."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call, 0.05)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [100, 3 * CAPACITY])
def test_a_retried_put_puts_each_item_once(name: str, size: int) -> None:
    async def run() -> None:
        chan = shmchan.ChannelIO.create(name, np.int64, CAPACITY)
        w, r = chan.writer(), chan.reader()
        await w.put(np.arange(-(CAPACITY - 24), 0))  # 24 slots left
        items = np.arange(size)
        await cancelled(w.put(items))  # 24 went in; the put was cancelled waiting
        assert len(r) == CAPACITY
        got = np.empty(CAPACITY - 24 + size, np.int64)
        reading = asyncio.ensure_future(r.get(got))
        await w.put(items)  # the retry: only the rest
        w.close()
        await reading
        assert np.array_equal(got, np.arange(-(CAPACITY - 24), size))
        with pytest.raises(shmchan.QueueClosedError) as e:
            await r.get(np.empty(1, np.int64))
        assert e.value.remaining == 0, "nothing was put twice"

    asyncio.run(run())


def test_a_put_after_a_cancelled_one_starts_anew(name: str) -> None:
    """Only the same object resumes: other items are put whole."""

    async def run() -> None:
        chan = shmchan.ChannelIO.create(name, np.int64, CAPACITY)
        w, r = chan.writer(), chan.reader()
        await w.put(np.zeros(CAPACITY - 10, np.int64))
        await cancelled(w.put(np.arange(100)))  # 10 of them went in
        r.blocking_get(np.empty(CAPACITY, np.int64))
        other = np.arange(100)  # equal, but another object: a new put
        await w.put(other)
        assert len(r) == 100

    asyncio.run(run())


@pytest.mark.parametrize("then", ["same", "smaller", "get_some", "frames", "blocking"])
def test_a_cancelled_get_larger_than_the_ring_loses_nothing(name: str, then: str) -> None:
    async def run() -> None:
        chan = shmchan.ChannelIO.create(name, np.int64, CAPACITY)
        w, r = chan.writer(), chan.reader()
        n = 3 * CAPACITY
        frame = np.full(n, -1, np.int64)
        await w.put(np.arange(CAPACITY))
        await cancelled(r.get(frame))  # took the ring's 1024, then waited
        assert len(r) == CAPACITY, "what it took waits for the next read"

        async def write() -> None:
            await w.put(np.arange(CAPACITY, 5 * CAPACITY))
            w.close()

        writing = asyncio.ensure_future(write())
        got: list[np.ndarray] = []
        if then == "same":
            got.append((await r.get(frame)).copy())
        elif then == "smaller":
            got.append((await r.get(np.empty(100, np.int64))).copy())
        elif then == "get_some":
            some = np.empty(5000, np.int64)
            got.append(some[: await r.get_some(some)].copy())
        elif then == "frames":
            async for f in r.frames(2000):
                got.append(f)
                break
        else:  # what it took is there without waiting
            got.append(r.blocking_get(np.empty(1000, np.int64), timeout=30).copy())
        async for f in r.frames(777):
            got.append(f)
        await writing
        assert np.array_equal(np.concatenate(got), np.arange(5 * CAPACITY))

    asyncio.run(run())


def test_a_view_waits_for_a_cancelled_gets_items_to_be_read(name: str) -> None:
    async def run() -> None:
        chan = shmchan.ChannelIO.create(name, np.int64, CAPACITY)
        w, r = chan.writer(), chan.reader()
        await w.put(np.arange(CAPACITY))
        await cancelled(r.get(np.empty(2 * CAPACITY, np.int64)))
        with pytest.raises(shmchan.ChannelError, match="cancelled get took 1024 items"):
            r.peek(1)
        assert np.array_equal(await r.get(np.empty(CAPACITY, np.int64)), np.arange(CAPACITY))
        await w.put(np.arange(5))
        async with r.peek(5) as view:
            assert list(view) == [0, 1, 2, 3, 4]

    asyncio.run(run())


def test_waits_for_items_and_room_change_nothing(name: str) -> None:
    async def run() -> None:
        chan = shmchan.ChannelIO.create(name, np.int64, CAPACITY)
        w, r = chan.writer(), chan.reader()
        await cancelled(r.wait_items(1))
        await w.put(np.arange(CAPACITY - 12))
        await cancelled(w.wait_room(100))
        assert await w.wait_room(12) == 12
        assert w.blocking_wait_room(12, timeout=1) == 12
        assert await r.wait_items(CAPACITY - 12) == CAPACITY - 12
        assert r.blocking_wait_items(5, timeout=1) == CAPACITY - 12
        assert len(r) == CAPACITY - 12, "nothing was removed"
        with pytest.raises(shmchan.TimedOutError):
            w.blocking_wait_room(100, timeout=0.02)
        with pytest.raises(shmchan.OversizedError):
            await w.wait_room(CAPACITY + 1)
        with pytest.raises(shmchan.OversizedError):
            await r.wait_items(CAPACITY + 1)
        w.close()
        with pytest.raises(shmchan.QueueClosedError) as e:
            await r.wait_items(CAPACITY)
        assert e.value.remaining == CAPACITY - 12

    asyncio.run(run())


def test_cancel_storm(name: str, children: list[Child]) -> None:
    """At least 10^6 items through a ring of 4096, the writer in another process; puts and
    gets of random sizes (mostly small, some up to the ring's size, some larger), each
    under ``wait_for`` with a random short timeout and retried until it completes (the
    writer goes on until 1,000 of its puts were cancelled). Every item arrives once, in
    order."""
    count, seed = 1_000_000, 7
    chan = shmchan.ChannelIO.create(name, np.int64, 4096)
    r = chan.reader()
    writer = python_child("storm-write", name, count, seed)
    children.append(writer)
    assert writer.line() == "ready"
    rng = np.random.default_rng(seed + 1)

    def check(frame: np.ndarray, got: int) -> int:
        want = np.arange(got, got + len(frame))
        if not np.array_equal(frame, want):
            bad = int(np.flatnonzero(frame != want)[0])
            pytest.fail(f"item {got + bad} is {frame[bad]}")
        return got + len(frame)

    async def read() -> tuple[int, int]:
        got, cancels = 0, 0
        while True:
            frame = np.empty(batch_size(rng, r.capacity), np.int64)
            attempt, last = 0, None
            while True:
                try:
                    await asyncio.wait_for(r.get(frame), timeout_for(rng, attempt))
                    break
                except TimeoutError:
                    cancels += 1
                    attempt += 1
                except shmchan.QueueClosedError as e:
                    last = (e.filled, e.remaining)
                    break
            if last is None:
                got = check(frame, got)
                continue
            filled, remaining = last
            got = check(frame[:filled], got)
            return check(await r.get(np.empty(remaining, np.int64)), got), cancels

    got, read_cancels = asyncio.run(read())
    code, out, err = writer.finish()
    assert code == 0, err
    _, put, _, write_cancels = out.split()
    print(f"{got} items; cancels: {read_cancels} gets, {write_cancels} puts")
    assert got == int(put) >= count
    assert int(write_cancels) >= 1000
