"""Cross-process rates from Python, in one run: shmchan (blocking, asyncio, and zero-copy
reserve/peek) against
multiprocessing's Pipe (bytes into a preallocated buffer) and Queue (pickled arrays), the
ways Python programs usually move numpy data between processes.

    python python_rates.py [--rounds N] [--mib M]

Each case moves M MiB (default 1024) of float32 in frames of 64 KiB, and 200 000 single
uint64 items, from a producer process to a consumer process that checks the first and last
value of every frame. Rounds alternate the cases; the figures are medians. Run by
scripts/bench-python.sh, with the package installed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import time

import numpy as np

import shmchan

FRAME = 16384  # float32: 64 KiB


def frames(total: int) -> int:
    return total // (FRAME * 4)


def shm_producer(name: str, n: int, mode: str, single: bool) -> None:
    chan = shmchan.ChannelIO.open(name, np.uint64 if single else np.float32)
    w = chan.writer()
    if single:
        one = np.zeros(1, np.uint64)
        for i in range(n):
            one[0] = i
            w.blocking_put(one)
    else:
        buf = np.arange(FRAME, dtype=np.float32)
        if mode == "async":

            async def run() -> None:
                for i in range(n):
                    buf[0] = i
                    await w.put(buf)

            asyncio.run(run())
        elif mode == "zero-copy":
            for i in range(n):
                with w.blocking_reserve(FRAME) as slots:
                    slots[:] = buf  # the one copy: into the ring
                    slots[0] = i
        else:
            for i in range(n):
                buf[0] = i
                w.blocking_put(buf)
    w.close()


def shm_case(n: int, mode: str, single: bool) -> float:
    name = f"pyrates-{os.getpid()}-{time.monotonic_ns()}"
    chan = shmchan.ChannelIO.create(
        name, np.uint64 if single else np.float32, 1 << 20 if not single else 1 << 16
    )
    r = chan.reader()
    p = mp.get_context("spawn").Process(
        target=shm_producer, args=(name, n, mode, single), daemon=True
    )
    p.start()
    start = None
    if single:
        one = np.empty(1, np.uint64)
        for i in range(n):
            r.blocking_get(one)
            start = start or time.perf_counter()
            assert one[0] == i
    else:
        frame = np.empty(FRAME, np.float32)
        if mode == "async":

            async def run() -> float:
                t = None
                for i in range(n):
                    await r.get(frame)
                    t = t or time.perf_counter()
                    assert frame[0] == i
                    assert frame[-1] == FRAME - 1
                return t

            start = asyncio.run(run())
        elif mode == "zero-copy":
            for i in range(n):
                with r.blocking_peek(FRAME) as view:  # no copy: read in place
                    start = start or time.perf_counter()
                    assert view[0] == i
                    assert view[-1] == FRAME - 1
        else:
            for i in range(n):
                r.blocking_get(frame)
                start = start or time.perf_counter()
                assert frame[0] == i
                assert frame[-1] == FRAME - 1
    elapsed = time.perf_counter() - start
    p.join()
    r.close()
    return elapsed


def pipe_producer(conn: object, n: int, single: bool) -> None:
    if single:
        one = np.zeros(1, np.uint64)
        for i in range(n):
            one[0] = i
            conn.send_bytes(one)  # type: ignore[attr-defined]
    else:
        buf = np.arange(FRAME, dtype=np.float32)
        for i in range(n):
            buf[0] = i
            conn.send_bytes(buf)  # type: ignore[attr-defined]


def pipe_case(n: int, single: bool) -> float:
    a, b = mp.get_context("spawn").Pipe(duplex=False)
    p = mp.get_context("spawn").Process(target=pipe_producer, args=(b, n, single), daemon=True)
    p.start()
    frame = np.empty(1 if single else FRAME, np.uint64 if single else np.float32)
    start = None
    for i in range(n):
        a.recv_bytes_into(frame)
        start = start or time.perf_counter()
        assert frame[0] == i
    elapsed = time.perf_counter() - start
    p.join()
    return elapsed


def queue_producer(q: object, n: int) -> None:
    buf = np.arange(FRAME, dtype=np.float32)
    for i in range(n):
        buf[0] = i
        # A copy: the queue pickles in a feeder thread, after put returns.
        q.put(buf.copy())  # type: ignore[attr-defined]


def queue_case(n: int) -> float:
    q = mp.get_context("spawn").Queue(maxsize=64)
    p = mp.get_context("spawn").Process(target=queue_producer, args=(q, n), daemon=True)
    p.start()
    start = None
    for i in range(n):
        frame = q.get()
        start = start or time.perf_counter()
        assert frame[0] == i
    elapsed = time.perf_counter() - start
    p.join()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--singles", type=int, default=200_000)
    a = ap.parse_args()
    n = frames(a.mib << 20)
    cases = {
        "shmchan blocking, 64 KiB frames": lambda: shm_case(n, "blocking", False),
        "shmchan asyncio, 64 KiB frames": lambda: shm_case(n, "async", False),
        "shmchan reserve/peek (one copy), 64 KiB": lambda: shm_case(n, "zero-copy", False),
        "Pipe send_bytes/recv_bytes_into, 64 KiB": lambda: pipe_case(n, False),
        "Queue of arrays (pickled), 64 KiB": lambda: queue_case(n),
        "shmchan blocking, single u64": lambda: shm_case(a.singles, "blocking", True),
        "Pipe, single u64": lambda: pipe_case(a.singles, True),
    }
    results: dict[str, list[float]] = {k: [] for k in cases}
    for rnd in range(a.rounds):
        order = list(cases) if rnd % 2 == 0 else list(reversed(cases))
        for k in order:
            results[k].append(cases[k]())
    print(
        f"# {a.rounds} rounds, {n} frames of 64 KiB ({a.mib} MiB), "
        f"{a.singles} single items; medians"
    )
    for k, times in results.items():
        t = statistics.median(times)
        if "single" in k:
            print(
                f"{k:45} {a.singles / t / 1e6:8.3f} M items/s   "
                f"({min(times):.3f}..{max(times):.3f} s)"
            )
        else:
            print(f"{k:45} {n * FRAME * 4 / t / 1e9:8.2f} GB/s  {n / t:10.0f} frames/s")


if __name__ == "__main__":
    main()
