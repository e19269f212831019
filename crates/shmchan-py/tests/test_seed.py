"""Code written against the seed's API (flow's ``ChannelIO``) runs: ``ChannelIO(maxsize=n,
dtype=dt)`` makes a private channel, which goes when its handles go, and reaches a worker
process like any ChannelIO. Every wait for a worker is bounded (conftest.TIMEOUT)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import pickle

import numpy as np
import pytest

import shmchan
from conftest import TIMEOUT, worker_result
from workers import read_all


def test_the_seeds_code_runs_on_a_private_channel() -> None:
    async def pipeline() -> tuple[str, list[float]]:
        chan = shmchan.ChannelIO(maxsize=100, dtype=np.float64)
        writer, reader = chan.writer(), chan.reader()

        async def produce() -> None:
            for start in range(0, 1000, 250):
                await writer.put(np.arange(start, start + 250, dtype=np.float64))
            await writer.close()

        async def consume() -> list[float]:
            got: list[float] = []
            frame = np.empty(100, np.float64)
            while True:
                try:
                    got.extend(await reader.get(frame))
                except shmchan.QueueClosedError:
                    break
            await reader.close()
            return got

        name = chan.name
        assert name in shmchan.list()
        assert chan.capacity >= 100
        _, got = await asyncio.gather(produce(), consume())
        return name, got

    name, got = asyncio.run(pipeline())
    assert got == list(range(1000))
    # The reader closed, and the program let go of its handles: the channel is gone.
    assert name not in shmchan.list()


def test_a_private_channel_goes_with_its_handles() -> None:
    chan = shmchan.ChannelIO(maxsize=10, dtype=np.uint32)
    name = chan.name
    assert name.startswith("private-")
    assert not shmchan.inspect(name)["persist"]
    copy = pickle.loads(pickle.dumps(chan))  # a second handle, by name
    del chan
    assert name in shmchan.list(), "a handle is left"
    del copy
    assert name not in shmchan.list()


def test_private_channels_have_names_of_their_own() -> None:
    chans = [shmchan.ChannelIO(dtype=np.uint8) for _ in range(20)]
    assert len({c.name for c in chans}) == 20
    # The pid, a counter, and a random part that no other program guesses.
    pid, _, random = chans[0].name.removeprefix("private-").split("-")
    assert pid == str(os.getpid())
    assert len(random) == 16


def test_maxsize_0_is_the_default_capacity(name: str) -> None:
    default = shmchan.ChannelIO.create(name, np.float32).capacity
    assert shmchan.ChannelIO(dtype=np.float32).capacity == default
    assert shmchan.ChannelIO(maxsize=0, dtype=np.float32).capacity == default
    assert shmchan.ChannelIO(maxsize=5000, dtype="f4").capacity == 5120  # whole pages


def test_without_a_dtype_the_constructor_says_why() -> None:
    before = shmchan.list()
    for call in (lambda: shmchan.ChannelIO(maxsize=1000), lambda: shmchan.ChannelIO()):
        with pytest.raises(TypeError, match=r"needs a dtype.*ObjectChannelIO"):
            call()
    with pytest.raises(TypeError, match="needs a dtype"):
        shmchan.ChannelIO(maxsize=1000, dtype=None)  # not numpy's float64
    assert not set(shmchan.list()) - set(before), "nothing was created"


def test_a_bad_maxsize_is_refused_as_create_refuses_a_capacity(name: str) -> None:
    before = shmchan.list()
    with pytest.raises(shmchan.InvalidCapacityError, match="maxsize -1"):
        shmchan.ChannelIO(maxsize=-1, dtype=np.uint8)
    with pytest.raises(shmchan.InvalidCapacityError):
        shmchan.ChannelIO(maxsize=2**64, dtype=np.uint8)
    for bad in (1.5, "10", True, None):
        with pytest.raises(TypeError, match="maxsize must be"):
            shmchan.ChannelIO(maxsize=bad, dtype=np.uint8)  # type: ignore[arg-type]
        if bad is not None:  # create's capacity=None is the default
            with pytest.raises(TypeError, match="capacity must be"):
                shmchan.ChannelIO.create(name, np.uint8, bad)  # type: ignore[arg-type]
    assert not set(shmchan.list()) - set(before), "nothing was created"
    # Anything that is an integer is one.
    big = np.int64(4096)
    assert shmchan.ChannelIO(maxsize=big, dtype=np.uint8).capacity == 4096  # type: ignore[arg-type]


def test_the_constructor_takes_keywords_only() -> None:
    with pytest.raises(TypeError):
        shmchan.ChannelIO(100, np.uint8)  # type: ignore[call-arg]


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_worker_given_a_private_channel_reads_what_the_parent_wrote(method: str) -> None:
    """spawn pickles the channel (by name); fork inherits it, and the worker opens it again
    when it claims the reader. The channel is gone once the worker and the parent let go."""
    n = 10_000
    chan = shmchan.ChannelIO(maxsize=1000, dtype=np.int64)
    name = chan.name
    ctx = mp.get_context(method)
    theirs, ours = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=read_all, args=(chan, ours, TIMEOUT))
    worker.start()
    with chan.writer() as w:
        for start in range(0, n, 700):
            w.blocking_put(np.arange(start, min(start + 700, n)), timeout=TIMEOUT)
    got = worker_result(theirs, worker)
    assert got.dtype == np.int64
    assert np.array_equal(got, np.arange(n))
    del chan, w
    assert name not in shmchan.list()
