"""Channels of Python values (ObjectChannelIO): values of any kind arrive equal, in order, as
many as asked; DataFrames of every column type; buffers copied once; what cannot be pickled
is refused whole, and what cannot be unpickled stays; garbled frames are errors."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import signal
import struct
import threading
import tracemalloc
from typing import Any, NamedTuple

import numpy as np
import pytest

import peer
import shmchan
from conftest import TIMEOUT, Child, OnThread, python_child


class Reading(NamedTuple):
    sensor: str
    value: float


def values() -> list[Any]:
    """What the seed's nodes pass: lists of strings, dicts of an image and its metadata,
    arrays whose shape changes, scalars, None, nested containers."""
    image = np.arange(480 * 640 * 3, dtype=np.uint8).reshape(480, 640, 3)
    return [
        ["alpha", "beta", "\N{GREEK SMALL LETTER GAMMA}"],
        {"image": image, "t": 1.5, "camera": "left", "tags": {"a", "b"}},
        np.arange(7, dtype=np.float64).reshape(7, 1),
        np.zeros((2, 3, 4), dtype=np.int16),
        np.array([], dtype=np.complex128),
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        np.arange(20)[::3],  # not contiguous: pickled in band
        42,
        None,
        "",
        b"\x00raw",
        (1, [2, (3, {"four": 4})]),
        datetime.datetime(2026, 12, 5, 12, 0, tzinfo=datetime.UTC),
    ]


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b)
        )
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(equal, a, b))
    return bool(a == b)


def test_values_of_any_kind_arrive_equal_in_order(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name, capacity=8 << 20)
    w, r = chan.writer(), chan.reader()
    sent = values()
    w.blocking_put(sent)
    assert len(r) == len(sent)
    to: list[Any] = [None] * len(sent)
    assert r.blocking_get(to) is to
    for a, b in zip(sent, to, strict=True):
        assert equal(a, b), (a, b)
    image = to[1]["image"]
    assert image.flags.writeable, "arrays arrive over buffers of their own"
    image[0, 0, 0] = 7  # and writing them touches nothing else


def test_one_value_that_is_not_a_list_or_tuple_is_one_value(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    w.blocking_put({"a": 1})
    w.blocking_put(np.arange(3))
    w.blocking_put("text")
    got = r.blocking_get([None] * 3)
    assert got[0] == {"a": 1}
    assert equal(got[1], np.arange(3))
    assert got[2] == "text"


def test_dataframes_of_every_column_type_arrive_equal(name: str) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {
            "text": ["a", "bb", None],
            "category": pd.Categorical(["x", "y", "x"]),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "when": pd.to_datetime(["2026-01-01", "2026-06-01", None]).tz_localize(
                "Europe/Amsterdam"
            ),
            "x": [1.5, np.nan, 3.0],
            "string": pd.array(["s", None, "u"], dtype="string"),
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )
    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(df)
    w.blocking_put([df.iloc[:1], df["x"]])
    got = r.blocking_get([None] * 3)
    pd.testing.assert_frame_equal(got[0], df)
    pd.testing.assert_frame_equal(got[1], df.iloc[:1])
    pd.testing.assert_series_equal(got[2], df["x"])


def test_what_cannot_be_pickled_is_refused_whole(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    for bad in (lambda: 1, threading.Lock(), (x for x in [])):
        with pytest.raises(shmchan.PicklingError, match="value 1 of the put") as e:
            w.blocking_put([1, bad, 3])
        assert e.value.index == 1
        assert len(r) == 0, "nothing of the put went in"
    w.blocking_put([1])
    assert r.blocking_get([None]) == [1]


def test_a_value_larger_than_the_ring_is_refused_after_those_before(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name, capacity=65536)
    w, r = chan.writer(), chan.reader()
    with pytest.raises(shmchan.OversizedError) as e:
        w.blocking_put([1, np.zeros(70_000, np.uint8)])
    assert e.value.accepted == 1
    assert r.blocking_get([None]) == [1]
    assert len(r) == 0


def test_buffers_are_copied_once_straight_into_the_ring(name: str) -> None:
    """A put of 32 MiB of array allocates next to nothing in Python: the array's memory goes
    from the array into the ring, not through a bytes of the pickle."""
    chan = shmchan.ObjectChannelIO.create(name, capacity=64 << 20)
    w, r = chan.writer(), chan.reader()
    big = np.random.default_rng(1).integers(0, 255, 32 << 20, dtype=np.uint8)
    w.blocking_put([{"warm": np.arange(3)}])  # imports and caches out of the measure
    r.blocking_get([None])
    tracemalloc.start()
    try:
        w.blocking_put([{"frame": big}])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"a put of 32 MiB allocated {peak} bytes"
    assert equal(r.blocking_get([None])[0]["frame"], big)


def test_what_cannot_be_unpickled_stays_until_skipped(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name)
    w = chan.writer()
    r = chan.reader(allow=["datetime.date"])
    w.blocking_put([[1, 2], datetime.date(2026, 1, 1), datetime.time(1), "after"])
    to: list[Any] = [None] * 4
    with pytest.raises(shmchan.UnpicklingError, match=r"datetime\.time") as e:
        r.blocking_get(to)
    assert e.value.filled == 2
    assert to[:2] == [[1, 2], datetime.date(2026, 1, 1)]
    with pytest.raises(shmchan.UnpicklingError):
        r.blocking_get([None])  # still there: nothing is lost
    assert r.skip() == 1
    assert r.blocking_get([None]) == ["after"]
    r.close()
    with pytest.raises(TypeError, match="not one string"):
        chan.reader(allow="datetime.date")  # refused before the end is claimed
    with pytest.raises(shmchan.QueueClosedError):
        w.blocking_put([1])  # the reader's close, not the refused claim, closed it


def test_garbled_frames_are_errors(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name)
    raw = shmchan.MessageChannelIO.open(name, schema="python-pickle-5").writer()
    r = chan.reader()
    table = struct.pack("=4sIQ", b"PKL5", 1, 0)
    garbled = [
        b"not a frame at all",
        b"PKL5",
        struct.pack("=4sIQ", b"PKL5", 2**31, 0),  # a table far past the message
        struct.pack("=4sIQ", b"PKL5", 0, 2**62),  # a pickle far past it
        table + struct.pack("=QQ", 32, 2**64 - 1),  # a buffer whose end wraps
        table + struct.pack("=QQ", 0, 4),  # a buffer over the frame's table
        # Buffers that overlap, each the whole rest: their copies would be far more than
        # the message holds.
        struct.pack("=4sIQ", b"PKL5", 64, 1)
        + struct.pack("=QQ", 16 + 16 * 64, 4096) * 64
        + bytes(4097),
    ]
    for g in garbled:
        raw.blocking_put([g])
        with pytest.raises(shmchan.CorruptedError):
            r.blocking_get([None])
        assert r.skip() == 1
    raw.blocking_put([struct.pack("=4sIQ", b"PKL5", 0, 3) + b"abc"])
    with pytest.raises(shmchan.UnpicklingError):
        r.blocking_get([None])


def test_async_values_flow_with_cancellations_and_frames(name: str) -> None:
    async def main() -> None:
        chan = shmchan.ObjectChannelIO.create(name, capacity=1 << 16)
        w, r = chan.writer(), chan.reader()
        sent = [{"i": i, "a": np.full(i % 50, i)} for i in range(400)]

        async def write() -> None:
            await w.put(sent)
            w.close()

        task = asyncio.create_task(write())
        got: list[Any] = []
        for _ in range(20):
            to: list[Any] = [None] * 30
            try:
                await asyncio.wait_for(r.get(to), 0.0005)
                got += to
            except TimeoutError:
                pass  # what it took comes first in the next read
            except shmchan.QueueClosedError as e:
                got += to[: e.filled]
                break
        got += [v async for batch in r.frames(17) for v in batch]
        await task
        assert len(got) == len(sent)
        assert all(equal(a, b) for a, b in zip(sent, got, strict=True))

    asyncio.run(main())


def test_the_channel_pickles_as_its_name(name: str) -> None:
    import pickle

    chan = shmchan.ObjectChannelIO.create(name)
    again = pickle.loads(pickle.dumps(chan))
    assert isinstance(again, shmchan.ObjectChannelIO)
    assert again.name == name
    w, r = again.writer(), chan.reader()
    w.blocking_put([{"hello": "world"}])
    assert r.blocking_get([None]) == [{"hello": "world"}]
    private = shmchan.ObjectChannelIO(capacity=8192)
    assert private.name.startswith("private-")
    assert private.capacity == 8192


def test_writers_killed_and_restarted_lose_and_repeat_nothing(
    name: str, children: list[Child]
) -> None:
    """A writer process killed with kill -9 while it waits for room in a full ring leaves
    whole values only: the reader drains them, in order, then learns that the writer is
    gone; a new writer carries on where the values end. Three kills, then a writer that
    closes."""
    chan = shmchan.ObjectChannelIO.create(name, capacity=1 << 16)
    r = chan.reader()
    got = 0

    def check(vs: list[Any]) -> None:
        nonlocal got
        for v in vs:
            assert v["i"] == got, (v["i"], got)
            assert np.array_equal(v["a"], peer.obj_value(got)["a"])
            got += 1

    for _ in range(3):
        w = python_child("obj-write", name, got, 100_000)
        children.append(w)
        assert w.line() == "ready"
        target = got + 2000
        while got < target:
            check(r.blocking_get([None] * 25, timeout=TIMEOUT))
        w.asleep()  # in its put, waiting for room
        w.kill()
        while True:
            to: list[Any] = [None] * 25
            try:
                r.blocking_get(to, timeout=TIMEOUT)
            except shmchan.PeerGoneError as e:
                check(to[: e.filled])
                break
            check(to)
    last = python_child("obj-write", name, got, 500)
    children.append(last)
    end = got + 500
    for batch in r.blocking_frames(25, timeout=TIMEOUT):
        check(batch)
    assert got == end
    assert last.finish()[0] == 0


def test_a_reader_killed_and_restarted_resumes_at_a_whole_value(
    name: str, children: list[Child]
) -> None:
    """A reader process killed with kill -9 after it consumed some values, with a backlog
    in the ring: a new reader starts at the first value the killed one had not consumed,
    and every value comes once, whole. The writer (a thread here) learns of the death, and
    puts the rest once the new reader is there."""
    chan = shmchan.ObjectChannelIO.create(name, capacity=1 << 16)
    w = chan.writer()
    first = python_child("obj-read", name, 1000)
    children.append(first)
    assert first.line() == "ready"
    sent = [peer.obj_value(i) for i in range(5000)]
    deaths = []

    def write() -> None:
        at = 0
        while at < len(sent):
            try:
                w.blocking_put(sent[at:], timeout=TIMEOUT)
                at = len(sent)
            except shmchan.PeerGoneError as e:
                deaths.append(e)
                at += e.accepted  # the next put waits for a new reader
        w.close()

    writer = OnThread(write)
    lines = []
    while (line := first.line()) != "stopped":
        lines.append(line)
    seen = int(lines[-1].split()[2])  # it consumed values 0..=seen and stopped reading
    first.kill()
    second = python_child("obj-read", name)
    children.append(second)
    code, out, err = second.finish()
    assert code == 0, err
    assert writer.join(TIMEOUT, "the writer hung") is None
    assert len(deaths) == 1
    spans = [tuple(map(int, line.split()[1:])) for line in out.splitlines()[1:]]
    assert spans[0][0] == seen + 1, "the new reader starts where the killed one stopped"
    assert spans[-1][1] == len(sent) - 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(spans))


def test_a_leased_get_lends_values_in_place_and_empties_them(name: str) -> None:
    pd = pytest.importorskip("pandas")
    chan = shmchan.ObjectChannelIO.create(name, capacity=8 << 20)
    w, r = chan.writer(), chan.reader()
    image = np.arange(480 * 640, dtype=np.uint16).reshape(480, 640)
    df = pd.DataFrame({"x": np.arange(1000.0), "n": np.arange(1000)})
    w.blocking_put([{"image": image, "t": 1}, df, "text", np.asfortranarray(image[:4, :6])])
    # A peek shows the first value, and those after it within 64 KiB: the image alone.
    with r.blocking_peek(max=2) as values:
        assert len(values) == 1
        lent = values[0]["image"]
        assert isinstance(lent, shmchan.SlotArray), "an array of the value is a view"
        assert not lent.flags.writeable
        assert not lent.flags.owndata
        assert np.array_equal(lent, image)
        kept = lent[10:20]
    assert values == [], "the list is emptied when the block ends"
    assert len(lent) == 0, "and so is every view of the ring"
    assert len(kept) == 0
    with r.blocking_peek(max=1) as values:
        # Its blocks are views of the ring; its copy (what one keeps) is an ordinary frame.
        pd.testing.assert_frame_equal(values[0].copy(), df)
    assert len(r) == 2
    with pytest.raises(KeyError), r.blocking_peek() as values:
        raise KeyError("a block that raises consumes nothing")
    assert len(r) == 2
    with r.blocking_peek() as values:
        assert values[0] == "text"
        assert np.array_equal(values[1], image[:4, :6])
        assert values[1].flags.f_contiguous
    assert len(r) == 0


def test_a_leased_get_copies_buffers_that_numpy_does_not_take(name: str) -> None:
    pa = pytest.importorskip("pyarrow")
    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    table = pa.table({"a": [1, 2, 3], "s": ["x", None, "z"]})
    w.blocking_put([table, np.arange(4)])
    with r.blocking_peek() as values:
        got, arr = values
    assert len(arr) == 0, "a numpy one was a view, and is emptied"
    for _ in range(3):  # the ring's bytes are written over, around its whole length
        w.blocking_put([np.full(chan.capacity // 2, 0xEE, np.uint8)])
        r.blocking_get([None])
    assert got.equals(table), "an Arrow value is whole after the block: made over copies"


class _Unloadable:
    """A value that pickles, but whose unpickling fails (int("x"))."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (int, ("x",))


def test_frames_keep_what_an_error_cut_short(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    w.blocking_put([0, 1, 2, _Unloadable(), 4, 5])
    w.close()
    got: list[Any] = []
    while True:
        try:
            for batch in r.blocking_frames(4):
                got += batch
            break
        except shmchan.UnpicklingError:
            assert r.skip() == 1
    assert got == [0, 1, 2, 4, 5], "the values before the bad one are not lost"


def test_a_blocking_get_interrupted_keeps_what_it_took(name: str) -> None:
    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(["v0", "v1"])
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            r.blocking_get([None] * 3, timeout=TIMEOUT)  # takes 2, waits for the third
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(r) == 2
    assert r.blocking_get([None] * 2) == ["v0", "v1"]


def test_a_get_cut_by_a_garbled_frame_counts_what_it_filled(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    w.blocking_put([0, 1])
    w.leave()  # lets the writer end go without closing the stream
    raw = shmchan.MessageChannelIO.open(name, schema="python-pickle-5").writer()
    raw.blocking_put([b"not a frame"])
    to: list[Any] = [None] * 3
    with pytest.raises(shmchan.CorruptedError) as e:
        r.blocking_get(to)
    assert e.value.filled == 2
    assert to[:2] == [0, 1]


def test_a_namedtuple_is_one_value_and_skip_stops_at_the_end(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(Reading("t1", 21.5))
    w.blocking_put([1, 2])
    w.close()
    assert len(r) == 3
    assert r.blocking_get([None]) == [Reading("t1", 21.5)]
    assert r.skip(5) == 2, "skip says how many it removed, also at the stream's end"
