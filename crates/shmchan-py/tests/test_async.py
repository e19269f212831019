"""asyncio: waits on the doorbell with add_reader (no thread, no polling), other tasks run
meanwhile, and cancellation leaves the channel consistent."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import shmchan


def test_a_waiting_get_lets_other_tasks_run_and_burns_no_cpu(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64)
    w, r = chan.writer(), chan.reader()

    async def main() -> tuple[int, float, np.ndarray]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        getting = asyncio.create_task(r.get(np.empty(3, np.uint64)))
        cpu = time.process_time()
        await asyncio.sleep(0.5)  # the get waits all this time
        cpu = time.process_time() - cpu
        assert not getting.done()
        await w.put(np.array([1, 2, 3], np.uint64))
        frame = await asyncio.wait_for(getting, 10)
        t.cancel()
        return ticks, cpu, frame

    ticks, cpu, frame = asyncio.run(main())
    assert list(frame) == [1, 2, 3]
    assert ticks >= 10, "the loop was blocked while the get waited"
    # A get that polled would burn the half second; a sleeping one costs a few ms.
    assert cpu < 0.25, f"{cpu:.3f} s of CPU while waiting"


def test_a_cancelled_get_removes_nothing(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.int32)
    w, r = chan.writer(), chan.reader()

    async def main() -> np.ndarray:
        w.blocking_put(np.array([1, 2], np.int32))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(r.get(np.empty(3, np.int32)), 0.05)
        assert len(r) == 2
        await w.put([3])
        return await asyncio.wait_for(r.get(np.empty(3, np.int32)), 10)

    assert list(asyncio.run(main())) == [1, 2, 3]


def test_a_cancelled_put_leaves_a_prefix(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 512)
    w, r = chan.writer(), chan.reader()
    cap = chan.capacity

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(w.put(np.arange(cap + 100, dtype=np.uint64)), 0.05)

        # What went in is a prefix of the cancelled put (the whole ring: the reader was not
        # reading), in order; the next put follows it.
        async def collect() -> np.ndarray:
            return np.concatenate([f async for f in r.frames(100)])

        reading = asyncio.create_task(collect())
        await w.put(np.array([10**9], np.uint64))
        w.close()
        got = await asyncio.wait_for(reading, 10)
        assert list(got[:cap]) == list(range(cap))
        assert got[-1] == 10**9
        assert len(got) == cap + 1

    asyncio.run(main())


def test_put_streams_more_than_the_ring_to_a_reader_task(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.float64, 512)
    w, r = chan.writer(), chan.reader()
    n = 200_000

    async def main() -> np.ndarray:
        async def writer() -> None:
            await w.put(np.arange(n, dtype=np.float64))
            w.close()

        task = asyncio.create_task(writer())
        parts = [f async for f in r.frames(1000)]
        await task
        return np.concatenate(parts)

    assert (asyncio.run(main()) == np.arange(n)).all()


def test_a_writer_leaving_wakes_a_waiting_get(name: str) -> None:
    # The writer leaves (as a killed process would) from another thread while the get
    # waits in the loop: leave() rings the doorbell, and the get ends with PeerGoneError.
    chan = shmchan.ChannelIO.create(name, np.uint8)
    w, r = chan.writer(), chan.reader()

    async def main() -> None:
        w.blocking_put(b"xy")
        assert (await r.get(np.empty(2, np.uint8))).tobytes() == b"xy"
        threading.Timer(0.05, w.leave).start()
        with pytest.raises(shmchan.PeerGoneError):
            await asyncio.wait_for(r.get(np.empty(1, np.uint8)), 10)

    asyncio.run(main())
