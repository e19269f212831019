"""Edges of the API: arguments that cannot work are refused with a clear error, and the
seed's `await w.close()` works. One process, but for a channel another process made."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import shmchan
from conftest import Child, python_child


def test_frames_need_a_positive_size(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 512)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(3, dtype=np.uint64))
    for bad in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            next(r.blocking_frames(bad))

        async def first(n: int) -> None:
            async for _ in r.frames(n):
                return

        with pytest.raises(ValueError, match="positive"):
            asyncio.run(first(bad))
    # Nothing was consumed by the refused calls.
    assert len(r) == 3


def test_a_negative_capacity_is_a_channel_error(name: str) -> None:
    for bad in (-1, 2**64):
        with pytest.raises(shmchan.InvalidCapacityError) as e:
            shmchan.ChannelIO.create(name, np.uint64, bad)
        assert e.value.name == name
        with pytest.raises(shmchan.InvalidCapacityError):
            shmchan.ChannelIO.create_or_open(name, np.uint64, bad)


def test_an_empty_channel_and_its_ends_are_true(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 512)
    w, r = chan.writer(), chan.reader()
    assert len(chan) == 0
    assert len(r) == 0
    assert chan
    assert w
    assert r


def test_close_may_be_awaited_as_in_the_seed(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 512)
    w, r = chan.writer(), chan.reader()

    async def run() -> None:
        await w.put(np.arange(2, dtype=np.uint64))
        await w.close()
        got = await r.get(np.empty(2, np.uint64))
        assert list(got) == [0, 1]
        with pytest.raises(shmchan.QueueClosedError):
            await r.get(np.empty(1, np.uint64))
        await r.close()

    asyncio.run(run())
    assert w.closed
    assert r.closed
    w.close()  # idempotent, and fine without await


def test_an_abort_reason_is_cut_to_256_bytes(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 512)
    w, r = chan.writer(), chan.reader()
    w.abort("x" * 300)
    with pytest.raises(shmchan.AbortedError) as e:
        r.blocking_get(np.empty(1, np.uint64))
    assert e.value.reason == "x" * 256


def test_two_tasks_waiting_on_one_reader_are_both_served(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 512)
    w, r = chan.writer(), chan.reader()

    async def run() -> list[int]:
        async def one() -> int:
            frame = await r.get(np.empty(1, np.uint64))
            return int(frame[0])

        tasks = [asyncio.create_task(one()) for _ in range(2)]
        await asyncio.sleep(0)  # both tasks start, find nothing, and wait on the doorbell
        await asyncio.sleep(0)
        w.blocking_put(np.array([1], np.uint64))
        await asyncio.sleep(0)
        w.blocking_put(np.array([2], np.uint64))
        done, _ = await asyncio.wait(tasks, timeout=10)
        assert len(done) == 2, "a task waiting on the same reader was never woken"
        return sorted(t.result() for t in tasks)

    assert asyncio.run(run()) == [1, 2]


@pytest.mark.parametrize("closer", ["task", "thread"])
def test_closing_an_end_wakes_its_waiting_tasks(name: str, closer: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 512)
    r = chan.reader()
    w = chan.writer()

    async def run() -> None:
        get = asyncio.create_task(r.get(np.empty(1, np.uint64)))
        put = asyncio.create_task(w.put(np.arange(600, dtype=np.uint64)))  # more than fits
        await asyncio.sleep(0)  # both wait now: no item for the get, no room for the put
        await asyncio.sleep(0)
        if closer == "task":
            r.close()
            w.close()
        else:
            t = threading.Thread(target=lambda: (r.close(), w.close()))
            t.start()
            await asyncio.to_thread(t.join)
        done, _ = await asyncio.wait([get, put], timeout=10)
        assert len(done) == 2, "a task waiting on a closed end was never woken"
        for task in (get, put):
            assert isinstance(task.exception(), shmchan.EndClosedError), task.exception()

    asyncio.run(run())


def test_dir_shows_the_public_names_only() -> None:
    names = set(dir(shmchan))
    assert names == {*shmchan.__all__, "__version__"}
    assert not names & {"np", "time", "asyncio", "A", "Any", "TYPE_CHECKING", "annotations"}


def test_what_a_view_computes_is_an_ordinary_array(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.float64, 512)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(4, dtype=np.float64))
    with r.peek(4) as view:
        total = view.sum()
        doubled = view * 2
        copied = view.copy()
    assert not isinstance(total, shmchan.SlotArray)
    assert float(total) == 6.0
    assert type(doubled) is np.ndarray
    assert list(doubled) == [0.0, 2.0, 4.0, 6.0]
    assert type(copied) is np.ndarray
    assert list(copied) == [0.0, 1.0, 2.0, 3.0]


def test_list_inspect_and_remove_channels(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.float32, 1024, schema="imu/v1", persist=True)
    w = chan.writer()
    w.blocking_put(np.arange(3, dtype=np.float32))
    assert name in shmchan.list()
    info = shmchan.inspect(name)
    assert info["capacity"] == 1024
    assert info["len"] == 3
    assert info["element_type"] == "f32"
    assert info["schema"] == "imu/v1"
    assert info["writer"]["held"]
    assert not info["reader"]["held"]
    assert info["writer_state"] == "open"
    w.abort("done here")
    assert shmchan.inspect(name)["abort_reason"] == "done here"
    del w, chan
    shmchan.remove(name)
    assert name not in shmchan.list()
    with pytest.raises(shmchan.NotFoundError):
        shmchan.inspect(name)
    with pytest.raises(shmchan.NotFoundError):
        shmchan.remove(name)


def test_create_or_open_refuses_another_capacity(name: str, children: list[Child]) -> None:
    # Another process made it: 4096 uint64 items (8 pages).
    creator = python_child("hold-writer", name, 0, "u8")
    children.append(creator)
    assert creator.line() == "ready"
    with pytest.raises(shmchan.CapacityMismatchError) as e:
        shmchan.ChannelIO.create_or_open(name, np.uint64, 100_000)
    assert isinstance(e.value, ValueError)
    assert (e.value.requested, e.value.rounded, e.value.found) == (100_000, 100_352, 4096)
    assert e.value.name == name
    message = str(e.value)
    assert "exists with capacity 4096" in message
    assert "asks for 100000" in message
    assert "pass no capacity" in message
    # Smaller is another capacity too; what rounds to 4096 (a restarted peer asking for what
    # it asked before) opens it, and so does asking for none.
    with pytest.raises(shmchan.CapacityMismatchError):
        shmchan.ChannelIO.create_or_open(name, np.uint64, 512)
    for same in (4096, 4000):
        assert shmchan.ChannelIO.create_or_open(name, np.uint64, same).capacity == 4096
    assert shmchan.ChannelIO.create_or_open(name, np.uint64).capacity == 4096
    # The refusals took nothing: the creator still holds its writer, alone.
    info = shmchan.inspect(name)
    assert info["writer"]["held"]
    assert info["writer"]["claims"] == 1
