"""Channels of byte messages (MessageChannelIO): whole messages of any length, in order, in
any batch sizes, copied or in place; the stream's end and cancellation counted in messages;
bad input refused with typed errors; each kind of channel opens only as itself."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import shmchan
from conftest import TIMEOUT, Child


def message(i: int) -> bytes:
    """Message ``i``: 0 to 2999 bytes that say ``i``."""
    return bytes((i * 31 + k) % 256 for k in range(i * 7919 % 3000))


def test_messages_of_every_length_arrive_whole_in_order(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name, capacity=32768)
    w, r = chan.writer(), chan.reader()
    assert chan.capacity == 32768
    assert chan.max_message_len == 32768 - 8
    sent = [message(i) for i in range(600)]
    got: list[object] = []
    at = 0
    # Batches of every kind of bytes-like, across many wraps of a small ring.
    kinds = [bytes, bytearray, memoryview, lambda b: np.frombuffer(b, np.uint8)]
    while at < len(sent):
        batch = [kinds[i % 4](m) for i, m in enumerate(sent[at : at + 5])]
        w.blocking_put(batch)
        at += len(batch)
        to: list[object] = [None] * 3
        got += r.blocking_get(to)
        some: list[object] = [None] * 2
        got += some[: r.try_get_some(some)]
    w.close()
    for batch in r.blocking_frames(1000):
        got += batch
    assert got == sent
    assert all(type(m) is bytes for m in got)
    with pytest.raises(shmchan.QueueClosedError):
        r.blocking_get_some([None])


def test_the_longest_message_fits_and_a_longer_one_is_refused(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name, capacity=4096)
    w, r = chan.writer(), chan.reader()
    longest = b"x" * chan.max_message_len
    with pytest.raises(shmchan.OversizedError, match="4088") as e:
        w.blocking_put([b"a", longest + b"y"])
    assert e.value.accepted == 1, "the messages before the one that never fits go in"
    assert r.blocking_get([None]) == [b"a"]
    w.blocking_put([longest])
    assert r.blocking_get([None]) == [longest]
    w.blocking_put([b""])
    assert r.blocking_get([None]) == [b""]


def test_bad_input_is_a_typed_error(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    with pytest.raises(TypeError, match=r"put\(\[value\]\)"):
        w.blocking_put(b"abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not a str"):
        w.blocking_put("abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        w.blocking_put(["text is not bytes"])
    with pytest.raises(BufferError, match="not contiguous"):
        w.blocking_put([np.arange(10, dtype=np.uint8)[::2]])
    with pytest.raises(TypeError, match="fills a list"):
        r.blocking_get((None, None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        next(r.blocking_frames(0))
    assert len(r) == 0


def test_a_get_past_the_end_counts_what_it_filled(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    w.blocking_put([b"a", b"b", b"c"])
    w.abort("sensor lost")
    to: list[object] = [None] * 5
    with pytest.raises(shmchan.AbortedError) as e:
        r.blocking_get(to)
    assert (e.value.filled, e.value.reason) == (3, "sensor lost")
    assert to[:3] == [b"a", b"b", b"c"]


def test_frames_end_with_the_rest(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    w.blocking_put([b"%d" % i for i in range(7)])
    w.close()
    assert [len(f) for f in r.blocking_frames(3)] == [3, 3, 1]


def test_peek_and_reserve_lend_a_message_in_place(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    with w.blocking_reserve(5) as room:
        assert room.dtype == np.uint8
        assert len(room) == 5
        room[:] = np.frombuffer(b"hello", np.uint8)
    w.blocking_put([b"next"])
    with r.blocking_peek() as m:
        assert bytes(m) == b"hello"
        kept = m[1:3]
    assert len(kept) == 0, "a view of the message is emptied when the block ends"
    assert len(r) == 1

    def peek_and_raise() -> None:
        with r.blocking_peek() as m:
            assert bytes(m) == b"next"
            raise KeyError("a block that raises consumes nothing")

    with pytest.raises(KeyError):
        peek_and_raise()
    assert len(r) == 1
    assert r.blocking_get([None]) == [b"next"]


def test_cancelled_gets_lose_nothing_and_duplicate_nothing(name: str) -> None:
    async def main() -> list[object]:
        chan = shmchan.MessageChannelIO.create(name)
        w, r = chan.writer(), chan.reader()
        got: list[object] = []
        for i in range(50):
            await w.put([b"%d" % (2 * i)])
            to: list[object] = [None] * 2
            # Only one of the two is there: the get takes it, waits, and is cancelled.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.get(to), 0.01)
            await w.put([b"%d" % (2 * i + 1)])
            got += await r.get([None, None])
        return got

    assert asyncio.run(main()) == [b"%d" % i for i in range(100)]


def test_async_put_waits_for_room_and_get_for_messages(name: str) -> None:
    async def main() -> None:
        chan = shmchan.MessageChannelIO.create(name, capacity=4096)
        w, r = chan.writer(), chan.reader()
        sent = [message(i) for i in range(300)]

        async def write() -> None:
            await w.put(sent)
            w.close()

        task = asyncio.create_task(write())
        got = [m async for batch in r.frames(7) for m in batch]
        await task
        assert got == sent

    asyncio.run(main())


def test_each_kind_of_channel_opens_only_as_itself(name: str) -> None:
    # Held: a channel whose last handle goes before any end was claimed is removed.
    held = [
        shmchan.MessageChannelIO.create(name + "-m"),
        shmchan.ObjectChannelIO.create(name + "-o"),
        shmchan.ChannelIO.create(name + "-a", np.uint64),
    ]
    with pytest.raises(shmchan.ElementMismatchError, match="holds messages"):
        shmchan.ChannelIO.open(name + "-m", np.uint64)
    with pytest.raises(shmchan.ElementMismatchError):
        shmchan.MessageChannelIO.open(name + "-a")
    with pytest.raises(shmchan.ElementMismatchError):
        shmchan.ObjectChannelIO.open(name + "-a")
    with pytest.raises(shmchan.SchemaMismatchError, match="python-pickle-5"):
        shmchan.MessageChannelIO.open(name + "-o")
    with pytest.raises(shmchan.SchemaMismatchError):
        shmchan.ObjectChannelIO.open(name + "-m")
    # Naming the tag opens an object channel's raw frames.
    assert shmchan.MessageChannelIO.open(name + "-o", schema="python-pickle-5").capacity > 0
    del held


@pytest.mark.parametrize("mode", ["blocking", "async"])
def test_messages_cross_between_rust_and_python(
    name: str, children: list[Child], rust_peer: str, mode: str
) -> None:
    """A Rust MessageChannel writer to a Python reader, and a Python writer to a Rust
    reader, over the same framing: every message whole, in order, once."""
    n = 5000
    w = Child([rust_peer, "write", name + "-rp", str(n), "msg"])
    children.append(w)
    assert w.line() == "ready"
    r = shmchan.MessageChannelIO.open(name + "-rp").reader()
    if mode == "blocking":
        got = [m for batch in r.blocking_frames(11, timeout=TIMEOUT) for m in batch]
    else:

        async def read() -> list[object]:
            return [m async for batch in r.frames(11) for m in batch]

        got = asyncio.run(asyncio.wait_for(read(), TIMEOUT))
    assert got == [message(i) for i in range(n)]
    assert w.finish()[0] == 0

    rr = Child([rust_peer, "read", name + "-pr", str(n), "msg"])
    children.append(rr)
    assert rr.line() == "ready"
    writer = shmchan.MessageChannelIO.open(name + "-pr").writer()
    for at in range(0, n, 9):
        writer.blocking_put([message(i) for i in range(at, min(at + 9, n))], timeout=TIMEOUT)
    writer.close()
    code, out, err = rr.finish()
    assert code == 0, err
    assert out.splitlines()[-1] == f"read {n} closed"


def test_len_sees_what_was_put_since_the_last_look(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    for i in range(1, 5):
        w.blocking_put([b"m%d" % i])
        assert len(r) == i
    with pytest.raises(shmchan.TimedOutError) as e:
        w.blocking_wait_room(chan.max_message_len, timeout=0.01)
    assert e.value.name == name


def test_a_long_put_into_a_small_ring_counts_what_went_in(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name, capacity=4096)
    w, r = chan.writer(), chan.reader()
    with pytest.raises(shmchan.OversizedError) as e:
        w.blocking_put([b"a", b"b", b"x" * 5000])
    assert e.value.accepted == 2, "the messages before the one that never fits went in"
    assert r.blocking_get([None, None]) == [b"a", b"b"]
    with pytest.raises(shmchan.TimedOutError) as t:
        w.blocking_put([b"y" * 2000] * 3, timeout=0.05)
    assert t.value.accepted == 2


def test_capacity_errors_count_bytes(name: str) -> None:
    chan = shmchan.MessageChannelIO.create(name, capacity=131072)
    with pytest.raises(shmchan.CapacityMismatchError, match="131072 bytes") as e:
        shmchan.MessageChannelIO.create_or_open(name, capacity=65536)
    assert (e.value.requested, e.value.rounded, e.value.found) == (65536, 65536, 131072)
    assert shmchan.MessageChannelIO.create_or_open(name, capacity=131072).capacity == 131072
    with pytest.raises(shmchan.InvalidCapacityError, match=f"{2**63} bytes"):
        shmchan.MessageChannelIO.create(name + "-huge", capacity=2**63)
    del chan
