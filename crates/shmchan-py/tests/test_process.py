"""Across processes: Python with Python, Python with Rust (crates/peers/src/python_peer.rs), in both
start orders; kill -9 of either end; Ctrl-C; the GIL released while blocked. Every child
has a watchdog (conftest.TIMEOUT)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import numpy as np
import pytest

import shmchan
from conftest import IMU, Child, OnThread, imu_items, python_child

N = 200_000


def rust_child(rust_peer: str, *args: object) -> Child:
    return Child([rust_peer, *map(str, args)])


@pytest.mark.parametrize("mode", ["blocking", "async"])
@pytest.mark.parametrize("first", ["writer", "reader"])
def test_python_to_python(name: str, children: list[Child], mode: str, first: str) -> None:
    roles = {
        "writer": ("write", name, N, "u8"),
        "reader": ("read", name, N, "u8", mode),
    }
    second = "reader" if first == "writer" else "writer"
    a = python_child(*roles[first])
    children.append(a)
    assert a.line() == "ready"
    b = python_child(*roles[second])
    children.append(b)
    reader = a if first == "reader" else b
    code, out, err = reader.finish()
    assert code == 0, err
    assert out.splitlines()[-1] == f"read {N} closed"


@pytest.mark.parametrize("first", ["rust", "python"])
@pytest.mark.parametrize("mode", ["blocking", "async"])
def test_rust_writer_python_reader(
    name: str, children: list[Child], rust_peer: str, first: str, mode: str
) -> None:
    start_rust = lambda: rust_child(rust_peer, "write", name, N, "imu")  # noqa: E731
    start_python = lambda: python_child("read", name, N, "imu", mode)  # noqa: E731
    if first == "rust":
        w = start_rust()
        children.append(w)
        assert w.line() == "ready"
        r = start_python()
        children.append(r)
    else:
        r = start_python()
        children.append(r)
        assert r.line() == "ready"
        w = start_rust()
        children.append(w)
    code, out, err = r.finish()
    assert code == 0, err
    assert out.splitlines()[-1] == f"read {N} closed"
    assert w.finish()[0] == 0


@pytest.mark.parametrize("first", ["rust", "python"])
def test_python_writer_rust_reader(
    name: str, children: list[Child], rust_peer: str, first: str
) -> None:
    if first == "rust":
        r = rust_child(rust_peer, "read", name, N, "imu")
        children.append(r)
        assert r.line() == "ready"
        w = python_child("write", name, N, "imu")
        children.append(w)
    else:
        w = python_child("write", name, N, "imu")
        children.append(w)
        assert w.line() == "ready"
        r = rust_child(rust_peer, "read", name, N, "imu")
        children.append(r)
    code, out, err = r.finish()
    assert code == 0, err
    assert out.splitlines()[-1] == f"read {N} closed"


@pytest.mark.parametrize("mode", ["blocking", "async"])
def test_abort_crosses_processes_after_the_rest(
    name: str, children: list[Child], mode: str
) -> None:
    w = python_child("write", name, 5000, "u8", "abort:sensor lost")
    children.append(w)
    assert w.line() == "ready"
    r = python_child("read", name, 5000, "u8", mode)
    children.append(r)
    code, out, err = r.finish()
    assert code == 0, err
    assert out.splitlines()[-1] == "read 5000 aborted:sensor lost"


def test_a_restarted_reader_resumes_where_the_killed_one_stopped(
    name: str, children: list[Child], rust_peer: str
) -> None:
    # A Rust writer streams; a Python reader reads part of it and is killed; a second one
    # starts at the first item the first had not consumed, and reads every item after it,
    # in order, to the end.
    total = 3_000_000
    w = rust_child(rust_peer, "write", name, total, "u64")
    children.append(w)
    assert w.line() == "ready"
    first = python_child("read", name, total, "u8", env={"PROGRESS": "100000"})  # uint64
    children.append(first)
    assert first.line() == "ready"
    assert first.line().startswith("got ")  # mid-stream: some consumed, most not
    first.kill()
    second = python_child("read", name, total, "u8", env={"FROM_ANY": "1"})
    children.append(second)
    assert second.line() == "ready"
    start = int(second.line().split()[1])
    code, out, err = second.finish()
    assert code == 0, err
    assert out.splitlines()[-1] == f"read {total} closed"  # checked item by item to the end
    assert 0 < start < total, start
    assert w.finish()[0] == 0


def test_python_dtype_without_align_is_refused_by_rust_records(
    name: str, children: list[Child], rust_peer: str
) -> None:
    w = rust_child(rust_peer, "write", name, 10, "imu")
    children.append(w)
    assert w.line() == "ready"
    packed = np.dtype([(f, IMU.fields[f][0]) for f in IMU.names])  # alignment 1
    with pytest.raises(shmchan.ElementMismatchError, match="aligned to 8"):
        shmchan.ChannelIO.open(name, packed, schema="imu/v1")
    with pytest.raises(shmchan.SchemaMismatchError):
        shmchan.ChannelIO.open(name, IMU)
    r = shmchan.ChannelIO.open(name, IMU, schema="imu/v1").reader()
    assert (r.blocking_get(np.empty(10, IMU), timeout=TIMEOUT_S) == imu_items(0, 10)).all()


TIMEOUT_S = 60.0


@pytest.mark.parametrize("mode", ["blocking", "async"])
@pytest.mark.parametrize("peer", ["python", "rust"])
def test_kill_9_of_the_writer_while_the_reader_waits(
    name: str, children: list[Child], rust_peer: str, mode: str, peer: str
) -> None:
    if peer == "python":
        holder = python_child("hold-writer", name, 100, "u8")  # puts 100, then holds
    else:
        holder = rust_child(rust_peer, "write", name, 10**12, "u64")  # streams on and on
    children.append(holder)
    assert holder.line() == "ready"
    chan = shmchan.ChannelIO.open(name, np.uint64)
    r = chan.reader()
    if peer == "rust":
        r.blocking_get(np.empty(1000, np.uint64), timeout=TIMEOUT_S)

    def drain_then_wait() -> None:
        # Read everything the writer sent, then wait for more: the kill ends that wait.
        frame = np.empty(64, np.uint64)
        if mode == "async":

            async def run() -> None:
                while True:
                    await r.get_some(frame)

            asyncio.run(run())
        else:
            while True:
                r.blocking_get_some(frame, timeout=TIMEOUT_S)

    waiting = OnThread(drain_then_wait)
    if peer == "python":
        # The holder wrote 100 and holds: the reader drains them, then sleeps.
        waiting.asleep()
    killed = time.monotonic()
    holder.kill()
    err = waiting.join(TIMEOUT_S, "the reader never learned of the writer's death")
    assert isinstance(err, shmchan.PeerGoneError), repr(err)
    print(f"PeerGoneError {waiting.at - killed:.4f} s after kill -9")
    # A restarted writer appends after the last committed item; the same reader goes on.
    w = chan.writer()
    w.blocking_put(np.array([7, 8], np.uint64))
    assert list(r.blocking_get(np.empty(2, np.uint64), timeout=TIMEOUT_S)) == [7, 8]


def test_kill_9_of_the_reader_while_the_writer_waits(
    name: str, children: list[Child], rust_peer: str
) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 4096)
    w = chan.writer()
    r = rust_child(rust_peer, "read", name, 10**12, "u64")
    children.append(r)
    assert r.line() == "ready"
    # Fill the ring while the Rust reader reads, then stop it dead: SIGSTOP first so that
    # the ring fills and our put sleeps, then kill -9.
    r.proc.send_signal(signal.SIGSTOP)

    def put_forever() -> None:
        i = 0
        while True:
            w.blocking_put(np.arange(i, i + 1000, dtype=np.uint64), timeout=TIMEOUT_S)
            i += 1000

    putting = OnThread(put_forever)
    putting.asleep()  # the ring is full: the put sleeps
    r.kill()
    err = putting.join(TIMEOUT_S, "the writer never learned of the reader's death")
    assert isinstance(err, shmchan.PeerGoneError), repr(err)


def test_ctrl_c_interrupts_a_blocking_get(name: str, children: list[Child]) -> None:
    c = python_child("block-get", name)
    children.append(c)
    assert c.line() == "ready"
    c.asleep()
    sent = time.monotonic()
    c.proc.send_signal(signal.SIGINT)
    code, out, err = c.finish()
    took = time.monotonic() - sent
    print(f"KeyboardInterrupt {took:.4f} s after SIGINT")
    assert "interrupted" in out, (out, err)
    assert "KeyboardInterrupt" in err
    assert code != 0


def test_the_gil_is_released_while_blocked(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint32)
    w, r = chan.writer(), chan.reader()
    counted = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counted
        while not stop.is_set():
            counted += 1

    t = threading.Thread(target=count)
    t.start()
    before = counted
    with pytest.raises(shmchan.TimedOutError):
        r.blocking_get(np.empty(1, np.uint32), timeout=0.3)
    during = counted - before
    stop.set()
    t.join()
    w.close()
    # With the GIL held for 0.3 s the counter would stand still (at most one switch
    # interval, 5 ms, of counting).
    assert during > 10_000, f"the other thread counted only {during} while we waited"


def test_a_second_thread_gets_an_error_not_a_torn_state(name: str) -> None:
    # An end is for one thread at a time: a call from another thread while a blocking call
    # sleeps is refused (pyo3's borrow check), and the sleeping call goes on unharmed.
    chan = shmchan.ChannelIO.create(name, np.uint64)
    w, r = chan.writer(), chan.reader()
    got: dict[str, object] = {}

    def blocked() -> None:
        got["frame"] = r.blocking_get(np.empty(2, np.uint64), timeout=TIMEOUT_S)

    t = OnThread(blocked)
    t.asleep()
    with pytest.raises(RuntimeError, match=r"[Bb]orrow"):
        r.try_get_some(np.empty(1, np.uint64))
    w.blocking_put(np.array([5, 6], np.uint64))
    assert t.join(TIMEOUT_S, "the blocking get never returned") is None
    assert list(got["frame"]) == [5, 6]  # type: ignore[call-overload]


@pytest.mark.parametrize("call", ["get", "put"])
def test_another_thread_closes_an_end_that_a_blocking_call_holds(name: str, call: str) -> None:
    # Stopping a blocked worker: another thread may read the end's state and close it; the
    # blocking call then ends with EndClosedError instead of sleeping on.
    chan = shmchan.ChannelIO.create(name, np.uint64, 4096)
    w, r = chan.writer(), chan.reader()
    end: shmchan.Reader | shmchan.Writer = r if call == "get" else w

    def blocked() -> None:
        if call == "get":
            r.blocking_get(np.empty(2, np.uint64), timeout=TIMEOUT_S)
        else:
            w.blocking_put(np.arange(5000, dtype=np.uint64), timeout=TIMEOUT_S)

    t = OnThread(blocked)
    t.asleep()
    assert not end.closed
    assert name in repr(end)
    assert len(chan) == (0 if call == "get" else 4096)
    end.close()
    err = t.join(TIMEOUT_S, "the blocking call slept on after its end was closed")
    assert isinstance(err, shmchan.EndClosedError), repr(err)
    if call == "put":
        assert err.accepted == 4096
