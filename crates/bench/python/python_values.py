"""Python values between processes, in one run: shmchan's object channel (copied, and in
place) against multiprocessing's Queue and against pickles framed by hand into byte
messages, the ways Python programs move values of any kind between processes.

    python python_values.py [--rounds N] [--images N] [--small N]

Two loads: N dicts each carrying a 1 MiB uint8 image and its metadata (the seed's "a dict
holding an image and its metadata"), and N small values (a list of three strings). A
producer process puts them; the consumer process checks each value's counter. Rounds
alternate the cases; the figures are medians. Run by scripts/bench-python.sh --values.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import statistics
import time
from typing import Any

import numpy as np

import shmchan

IMAGE = 1 << 20


def value(kind: str, i: int, image: np.ndarray[Any, Any]) -> Any:
    if kind == "image":
        image[0] = i % 256
        return {"image": image, "t": i, "camera": "left", "exposure": 0.01}
    return ["alpha", "beta", str(i)]


def counter(kind: str, v: Any) -> int:
    return int(v["t"]) if kind == "image" else int(v[2])


def producer(how: str, target: Any, kind: str, n: int) -> None:
    image = np.zeros(IMAGE, np.uint8)
    if how == "queue":
        for i in range(n):
            target.put(value(kind, i, image))
        return
    if how == "framed":
        w = shmchan.MessageChannelIO.open(target).writer()
        for i in range(n):
            w.blocking_put([pickle.dumps(value(kind, i, image), protocol=5)])
    else:
        w = shmchan.ObjectChannelIO.open(target).writer()
        for i in range(n):
            w.blocking_put([value(kind, i, image)])
    w.close()


def consume(how: str, source: Any, kind: str, n: int) -> None:
    if how == "queue":
        for i in range(n):
            assert counter(kind, source.get()) == i
        return
    if how == "framed":
        r = shmchan.MessageChannelIO.open(source).reader()
        one: list[Any] = [None]
        for i in range(n):
            assert counter(kind, pickle.loads(r.blocking_get(one)[0])) == i
    elif how == "peek":
        r = shmchan.ObjectChannelIO.open(source).reader()
        i = 0
        while i < n:
            with r.blocking_peek() as values:
                for v in values:
                    assert counter(kind, v) == i
                    i += 1
    else:
        r = shmchan.ObjectChannelIO.open(source).reader()
        one = [None]
        for i in range(n):
            assert counter(kind, r.blocking_get(one)[0]) == i
    r.close()


def case(how: str, kind: str, n: int) -> float:
    """Seconds to move ``n`` values of ``kind`` ``how``."""
    if how == "queue":
        q: Any = mp.Queue(maxsize=64)
        p = mp.Process(target=producer, args=(how, q, kind, n))
        t0 = time.perf_counter()
        p.start()
        consume(how, q, kind, n)
        elapsed = time.perf_counter() - t0
        p.join()
        return elapsed
    name = f"bench-values-{os.getpid()}-{how}-{kind}"
    capacity = 64 << 20 if kind == "image" else 1 << 20
    if how == "framed":
        chan: Any = shmchan.MessageChannelIO.create(name, capacity)
    else:
        chan = shmchan.ObjectChannelIO.create(name, capacity)
    p = mp.Process(target=producer, args=(how, name, kind, n))
    t0 = time.perf_counter()
    p.start()
    consume(how, name, kind, n)
    elapsed = time.perf_counter() - t0
    p.join()
    del chan
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--small", type=int, default=100_000)
    a = ap.parse_args()
    cases = {
        (how, kind): (a.images if kind == "image" else a.small)
        for kind in ("image", "small")
        for how in ("objects", "peek", "framed", "queue")
    }
    results: dict[tuple[str, str], list[float]] = {k: [] for k in cases}
    for rnd in range(a.rounds):
        order = list(cases) if rnd % 2 == 0 else list(reversed(cases))
        for k in order:
            results[k].append(case(*k, cases[k]))
    names = {
        "objects": "ObjectChannelIO get (copied)",
        "peek": "ObjectChannelIO peek (in place)",
        "framed": "pickle.dumps into MessageChannelIO",
        "queue": "multiprocessing.Queue",
    }
    print(f"# {a.rounds} rounds; medians; values/s (and x Queue's)")
    for kind, what in (("image", "dict with a 1 MiB image"), ("small", "list of 3 strings")):
        queue = cases[("queue", kind)] / statistics.median(results[("queue", kind)])
        for how in ("objects", "peek", "framed", "queue"):
            times = results[(how, kind)]
            rate = cases[(how, kind)] / statistics.median(times)
            print(f"{what:24} {names[how]:36} {rate:10.0f}/s  {rate / queue:5.1f}x")


if __name__ == "__main__":
    main()
