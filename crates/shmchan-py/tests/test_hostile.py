"""Whatever a segment holds, no Python call crashes the interpreter: garbage in the header
of a channel under live ends, and garbage segments at open, give typed errors (or garbled
values). Each case runs in a child process, so that a crash fails the test instead of
killing pytest."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import TIMEOUT

CHILD = textwrap.dedent(
    """
    import os, random, sys
    import numpy as np
    import shmchan

    rng = random.Random(int(sys.argv[1]))
    base = os.environ["SHMCHAN_DIR"]
    outcomes = {}

    def attempt(what, f):
        try:
            f()
            key = "ok"
        except shmchan.ChannelError as e:
            key = type(e).__name__
        except (BufferError, ValueError) as e:
            key = type(e).__name__
        outcomes[key] = outcomes.get(key, 0) + 1

    for case in range(int(sys.argv[2])):
        name = f"hostile-{os.getpid()}-{case}"
        chan = shmchan.ChannelIO.create(name, np.uint64, 512)
        w, r = chan.writer(), chan.reader()
        w.blocking_put(np.arange(100, dtype=np.uint64))
        ring = os.path.join(base, "shmchan." + name, "ring")
        with open(ring, "r+b") as f:
            header = bytearray(f.read(4096))
            # Scribble a few random words of the header, as a hostile peer could.
            for _ in range(rng.randint(1, 8)):
                at = rng.randrange(0, 4096 - 8) & ~7
                header[at : at + 8] = rng.getrandbits(64).to_bytes(8, "little")
            f.seek(0)
            f.write(header)
        frame = np.empty(rng.choice([1, 7, 64, 600]), np.uint64)
        attempt("get", lambda: r.blocking_get(frame, timeout=0.01))
        attempt("get_some", lambda: r.try_get_some(frame))
        attempt("put", lambda: w.blocking_put(np.arange(300, dtype=np.uint64), timeout=0.01))
        def peek():
            with r.blocking_peek(None, timeout=0.01) as v:
                v.sum()
        attempt("peek", peek)
        def reserve():
            with w.blocking_reserve(8, timeout=0.01) as s:
                s[:] = 1
        attempt("reserve", reserve)
        attempt("open", lambda: shmchan.ChannelIO.open(name, np.uint64).reader())
        attempt("len", lambda: len(r) + len(chan))
        w.close(); r.close()
        # A whole segment of garbage at open.
        garbage = f"garbage-{os.getpid()}-{case}"
        shmchan.ChannelIO.create(garbage, np.uint8, persist=True)
        path = os.path.join(base, "shmchan." + garbage, "ring")
        with open(path, "r+b") as f:
            size = f.seek(0, 2)
            f.seek(0)
            f.write(rng.randbytes(min(size, 8192)))
        attempt("open garbage", lambda: shmchan.ChannelIO.open(garbage, np.uint8))
    print(sorted(outcomes.items()))
    """
)


def test_garbage_headers_never_crash_the_interpreter() -> None:
    for seed in range(3):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(seed), "60"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, f"seed {seed}: exit {done.returncode}\n{done.stderr}"
        print(done.stdout.strip())
