"""Zero-copy views and reserved slots: in place, and never readable after their slots are
given back."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

import shmchan
from conftest import IMU, Child, imu_items, python_child


def test_peek_shows_in_place_and_consumes_on_exit(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.float32)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(10, dtype=np.float32))
    with r.blocking_peek(4) as view:
        assert isinstance(view, shmchan.SlotArray)
        assert list(view) == [0, 1, 2, 3]
        assert not view.flags.writeable
        total = float(view.sum())  # arithmetic gives an ordinary array / scalar
        kept = view.copy()
    assert total == 6
    assert len(view) == 0, "the view is emptied when its slots go back"
    assert list(kept) == [0, 1, 2, 3]
    assert len(r) == 6


def test_derived_views_are_emptied_too(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, IMU)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(imu_items(0, 100))
    with r.blocking_peek(100) as view:
        part = view[10:20]
        reshaped = view.reshape(10, 10)[2:]
        field = view["x"]
        assert part["t"][0] == 10
        assert field[3] == 1.5
    for v in (view, part, reshaped, field):
        assert v.size == 0
    assert len(r) == 0


def test_a_view_kept_another_way_refuses_the_consume(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint8)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(b"abcd")
    with pytest.raises(BufferError, match="nothing was consumed"):  # noqa: SIM117
        with r.blocking_peek(4) as view:
            mv = memoryview(view)  # shares the slots and cannot be emptied
    assert len(r) == 4, "nothing consumed: the items are still there"
    with pytest.raises(shmchan.ViewOpenError):
        r.blocking_get(np.empty(1, np.uint8))  # the view stays open until released
    assert mv.tobytes() == b"abcd"
    mv.release()
    assert r.end_view() == 4
    assert len(r) == 0
    assert r.end_view() == 0


def test_a_kept_memoryview_outlives_the_close_safely(name: str) -> None:
    # The lease keeps the mapping: a reference that outlives everything reads mapped memory
    # (in a child, so that a crash would fail the test rather than kill pytest).
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import numpy as np, shmchan
        chan = shmchan.ChannelIO.create({name!r}, np.uint8)
        w = chan.writer()
        w.blocking_put(b"abcd")
        r = chan.reader()
        del chan
        try:
            with r.blocking_peek(4) as view:
                mv = memoryview(view)
        except BufferError:
            pass
        r.close(); w.close()
        del r, w, view
        import gc; gc.collect()
        print(bytes(mv))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "b'abcd'"


def test_register_takes_only_views_of_the_lease(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint8)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(b"ab")
    with r.blocking_peek(2) as view:
        lease = view.base
        with pytest.raises(TypeError):
            lease.register(42)
        lease.register(np.zeros(3, np.uint8))  # not ours: ignored
    assert len(r) == 0


def test_an_exception_holding_the_view_is_not_masked(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.int16)
    w, r = chan.writer(), chan.reader()
    w.blocking_put([1, 2, 3])

    def process(v: np.ndarray) -> None:
        keep = memoryview(v)  # noqa: F841 - held by the traceback's frame
        raise KeyError("processing failed")

    with pytest.raises(KeyError), r.blocking_peek(2) as view:
        process(view)
    assert len(r) == 3, "nothing consumed"
    r.blocking_get(np.empty(3, np.int16))  # and the end is usable


def test_an_exception_in_the_block_consumes_nothing(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.int16)
    w, r = chan.writer(), chan.reader()
    w.blocking_put([1, 2, 3])
    with pytest.raises(KeyError), r.blocking_peek(2):
        raise KeyError("processing failed")
    assert len(r) == 3


def test_calls_during_a_view_are_refused_and_close_empties_it(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.int16)
    w, r = chan.writer(), chan.reader()
    w.blocking_put([1, 2, 3])
    with r.blocking_peek(1) as view:
        with pytest.raises(shmchan.ViewOpenError):
            r.blocking_get(np.empty(1, np.int16))
        r.close()
        assert view.size == 0
    with pytest.raises(shmchan.EndClosedError):
        r.blocking_get(np.empty(1, np.int16))


def test_reserve_writes_in_place_and_commits_on_exit(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, IMU)
    w, r = chan.writer(), chan.reader()
    with w.blocking_reserve(5) as slots:
        assert slots.flags.writeable
        slots[:] = imu_items(0, 5)
        slots["flags"] = 9
    assert slots.size == 0
    got = r.blocking_get(np.empty(5, IMU))
    assert list(got["t"]) == [0, 1, 2, 3, 4]
    assert (got["flags"] == 9).all()
    with pytest.raises(ZeroDivisionError), w.blocking_reserve(3):
        1 / 0  # noqa: B018
    assert len(r) == 0, "a block that raised commits nothing"


def test_async_peek_and_reserve_wait(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint32, 1024)
    w, r = chan.writer(), chan.reader()

    async def main() -> list[int]:
        async def produce() -> None:
            for i in range(0, 4000, 100):
                async with w.reserve(100) as slots:
                    slots[:] = np.arange(i, i + 100, dtype=np.uint32)
            w.close()

        task = asyncio.create_task(produce())
        got: list[int] = []
        while len(got) < 4000:
            async with r.peek(250) as view:
                got.extend(int(x) for x in view)
        await task
        return got

    assert asyncio.run(main()) == list(range(4000))


def test_peek_without_a_count_shows_what_is_there(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint8)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(b"hello")
    with r.blocking_peek() as view:
        assert view.tobytes() == b"hello"
    with pytest.raises(shmchan.TimedOutError), r.blocking_peek(1, timeout=0.05):
        pass


@pytest.mark.parametrize(
    ("how", "keep"),
    [
        ("blocking_peek", "memoryview"),
        ("blocking_peek", "asarray"),
        ("peek", "memoryview"),
        ("blocking_reserve", "memoryview"),
        ("reserve", "asarray"),
    ],
)
@pytest.mark.parametrize("then", ["close", "drop", "exit"])
def test_a_view_left_open_does_not_keep_the_channel(
    name: str, children: list[Child], how: str, keep: str, then: str
) -> None:
    """A process leaves a view's block with the view still exported (BufferError: the view
    stays open), then closes its ends, or drops them, or just exits. The channel goes as it
    would without the view: at once when the process lets go of its handles, the kept
    buffer still readable there (the mapping stays, the files go), or at the exit."""
    child = python_child("leave-view", name, how, keep, then)
    children.append(child)
    code, out, err = child.finish()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "BufferError"
    if then != "exit":
        assert lines[1] == "listed no", "the handles are gone: the channel should be too"
        assert lines[2] == f"kept {'abcd' if how.endswith('peek') else 'wxyz'}"
    assert name not in shmchan.list()
    assert not os.path.exists(os.path.join(os.environ["SHMCHAN_DIR"], f"shmchan.{name}"))
