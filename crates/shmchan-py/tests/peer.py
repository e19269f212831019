"""The Python end of the cross-process tests: `python peer.py ROLE ARGS…`.

Prints `ready` once it holds its end. Roles:

- `write NAME COUNT DTYPE [abort:REASON]`: puts items 0..COUNT (batches of 1..100), then
  closes (or aborts with REASON).
- `read NAME COUNT DTYPE [async]`: gets them in frames of 333, checks each, prints
  `read N END`; with FROM_ANY set, the first item may be any (a resumed reader) and
  `first F` is printed before; with PROGRESS=K, `got N` once N ≥ K items were read.
- `hold-writer NAME PUT DTYPE`: puts PUT items, then holds the end until killed.
- `hold-reader NAME`: claims the reader of a u64 channel and holds it, reading nothing,
  until killed.
- `block-get NAME`: a blocking get of one u64 on an empty channel (for the Ctrl-C test).
- `storm-write NAME COUNT SEED`: puts int64 items 0, 1, 2… with asyncio, in batches of
  random sizes (smaller and larger than the ring), each put under `asyncio.wait_for` with a
  random short timeout and retried with the same batch until it completes; stops once it
  put COUNT items or more and 1,000 puts were cancelled (or at 20 times COUNT), closes, and
  prints `put N cancels C`.
- `obj-write NAME START COUNT`: puts values START.. (`obj_value`) to object channel NAME
  in batches of 1 to 9, then closes.
- `obj-read NAME [STOP]`: gets values from object channel NAME in frames of 7, checks each,
  and prints `got FIRST LAST` for each frame, until the stream ends; with STOP, it prints
  `stopped` once a frame reaches value STOP and holds the reader, reading nothing.
- `hold-frame NAME`: creates a channel of `conftest.ticks_frame()`'s records (pandas
  writes its times as `M8[us]`), puts the frame, then holds the writer until killed.
- `leave-view NAME HOW KEEP THEN`: creates a `uint8` channel and claims both ends; lends
  4 items or slots (HOW: `blocking_peek`, `peek`, `blocking_reserve`, `reserve`), keeps
  them as KEEP (`memoryview` or `asarray`) past the block, whose exit must raise
  BufferError (it prints `BufferError`). THEN: `close` closes both ends, `drop` lets go of
  them without closing, and both delete the channel handle, collect, and print `listed yes|no`
  (whether the channel's directory is still there) and `kept BYTES` (the kept buffer,
  still readable); `exit` exits at once, everything still open.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from typing import Any

import numpy as np

import shmchan
from conftest import IMU, imu_items, ticks_frame


def dtype_of(key: str) -> np.dtype:
    return IMU if key == "imu" else np.dtype(key)


def items(key: str, start: int, count: int) -> np.ndarray:
    if key == "imu":
        return imu_items(start, count)
    return np.arange(start, start + count, dtype=np.uint64).astype(dtype_of(key))


def schema(key: str) -> str | None:
    return "imu/v1" if key == "imu" else None


def write(name: str, count: int, key: str, end: str = "close") -> None:
    chan = shmchan.ChannelIO.create_or_open(name, dtype_of(key), 4096, schema=schema(key))
    w = chan.writer()
    print("ready", flush=True)
    done = 0
    while done < count:
        b = min(done % 100 + 1, count - done)
        w.blocking_put(items(key, done, b))
        done += b
    if end.startswith("abort:"):
        w.abort(end.removeprefix("abort:"))
    else:
        w.close()


def check(frame: np.ndarray, start: int, key: str) -> None:
    want = items(key, start, len(frame))
    if not np.array_equal(frame, want):
        bad = int(np.flatnonzero(frame != want)[0])
        raise SystemExit(f"item {start + bad}: {frame[bad]!r}, not {want[bad]!r}")


def read(name: str, count: int, key: str, mode: str = "blocking") -> None:
    chan = shmchan.ChannelIO.create_or_open(name, dtype_of(key), 4096, schema=schema(key))
    r = chan.reader()
    print("ready", flush=True)
    got = 0
    end = "none"
    progress = int(os.environ.get("PROGRESS", "0"))
    if os.environ.get("FROM_ANY"):
        first = r.blocking_get(np.empty(1, dtype_of(key)))
        got = int(first[0]) + 1
        print(f"first {got - 1}", flush=True)

    async def run_async() -> str:
        nonlocal got
        try:
            async for frame in r.frames(333):
                check(frame, got, key)
                got += len(frame)
        except shmchan.AbortedError as e:
            return f"aborted:{e.reason}"
        except shmchan.PeerGoneError:
            return "gone"
        return "closed"

    if mode == "async":
        end = asyncio.run(run_async())
    else:
        try:
            for frame in r.blocking_frames(333):
                check(frame, got, key)
                got += len(frame)
                if progress and got >= progress:
                    print(f"got {got}", flush=True)
                    progress = 0
            end = "closed"
        except shmchan.AbortedError as e:
            end = f"aborted:{e.reason}"
        except shmchan.PeerGoneError:
            end = "gone"
    print(f"read {got} {end}", flush=True)
    r.close()


def hold_writer(name: str, put: int, key: str) -> None:
    chan = shmchan.ChannelIO.create_or_open(name, dtype_of(key), 4096, schema=schema(key))
    w = chan.writer()
    w.blocking_put(items(key, 0, put))
    print("ready", flush=True)
    sys.stdin.read()  # until killed (or stdin closes)


def hold_reader(name: str) -> None:
    chan = shmchan.ChannelIO.create_or_open(name, np.uint64, 4096)
    r = chan.reader()
    print("ready", flush=True)
    sys.stdin.read()  # until killed (or stdin closes)
    r.close()


def hold_frame(name: str) -> None:
    df = ticks_frame()
    chan = shmchan.ChannelIO.create(name, df.to_records(index=False).dtype, 4096)
    w = chan.writer()
    w.blocking_put(df)
    print("ready", flush=True)
    sys.stdin.read()  # until killed (or stdin closes)


def block_get(name: str) -> None:
    chan = shmchan.ChannelIO.create_or_open(name, np.uint64, 4096)
    r = chan.reader()
    print("ready", flush=True)
    try:
        r.blocking_get(np.empty(1, np.uint64))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        raise


def storm_write(name: str, count: int, seed: int) -> None:
    from storm import batch_size, timeout_for

    rng = np.random.default_rng(seed)
    chan = shmchan.ChannelIO.create_or_open(name, np.int64, 4096)
    w = chan.writer()
    print("ready", flush=True)
    cancels = 0

    async def run() -> None:
        nonlocal cancels
        done = 0
        while done < count or (cancels < 1000 and done < 20 * count):
            batch = np.arange(done, done + batch_size(rng, w.capacity))
            attempt = 0
            while True:
                try:
                    await asyncio.wait_for(w.put(batch), timeout_for(rng, attempt))
                    break
                except TimeoutError:
                    cancels += 1
                    attempt += 1
            done += len(batch)
        w.close()
        print(f"put {done} cancels {cancels}", flush=True)

    asyncio.run(run())


def leave_view(name: str, how: str, keep: str, then: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint8, 4096)
    w, r = chan.writer(), chan.reader()
    if how.endswith("peek"):
        w.blocking_put(b"abcd")
    kept: Any = None

    def hold(view: np.ndarray) -> None:
        nonlocal kept
        if how.endswith("reserve"):
            view[:] = np.frombuffer(b"wxyz", np.uint8)
        kept = memoryview(view) if keep == "memoryview" else np.asarray(view)

    async def lend_async(r: shmchan.Reader, w: shmchan.Writer) -> None:
        lent = r.peek(4) if how == "peek" else w.reserve(4)
        async with lent as view:
            hold(view)

    try:
        if how.startswith("blocking"):
            with r.blocking_peek(4) if how == "blocking_peek" else w.blocking_reserve(4) as view:
                hold(view)
        else:
            asyncio.run(lend_async(r, w))
    except BufferError:
        print("BufferError", flush=True)
    if then == "exit":
        return
    if then == "close":
        r.close()
        w.close()
    del chan, r, w
    # What asyncio leaves behind (its task, the exception, their frames) holds the ends in
    # cycles, which only the collector frees.
    gc.collect()
    path = os.path.join(shmchan_dir(), f"shmchan.{name}")
    listed = name in shmchan.list() or os.path.exists(path)
    print(f"listed {'yes' if listed else 'no'}", flush=True)
    print(f"kept {bytes(kept).decode()}", flush=True)


def obj_value(i: int) -> dict[str, Any]:
    """Value ``i`` of the object-channel tests: a dict of its number and an array of a
    length that changes, which say ``i`` throughout."""
    return {"i": i, "a": np.full(i % 300, i, dtype=np.int64), "s": str(i) * (i % 5)}


def obj_write(name: str, start: int, count: int) -> None:
    """Puts values start..start+count (obj_value) to object channel NAME in batches of 1 to
    9, then closes."""
    chan = shmchan.ObjectChannelIO.create_or_open(name, 1 << 16)
    w = chan.writer()
    print("ready", flush=True)
    i = start
    while i < start + count:
        batch = [obj_value(k) for k in range(i, min(i + 1 + i % 9, start + count))]
        w.blocking_put(batch)
        i += len(batch)
    w.close()


def obj_read(name: str, stop: str = "") -> None:
    """Gets values from object channel NAME in batches of 7, checks each is whole, and
    prints the number of each batch's first and last (`got FIRST LAST`) until the end; with
    STOP, once a batch reaches it, prints `stopped` and holds the reader, reading nothing,
    until killed."""
    chan = shmchan.ObjectChannelIO.create_or_open(name, 1 << 16)
    r = chan.reader()
    print("ready", flush=True)
    for batch in r.blocking_frames(7):
        for v in batch:
            want = obj_value(v["i"])
            assert v["s"] == want["s"], v["i"]
            assert np.array_equal(v["a"], want["a"]), v["i"]
        print(f"got {batch[0]['i']} {batch[-1]['i']}", flush=True)
        if stop and batch[-1]["i"] >= int(stop):
            print("stopped", flush=True)
            sys.stdin.read()  # until killed (the parent never writes)


def shmchan_dir() -> str:
    """The directory the channels are in."""
    return os.environ.get("SHMCHAN_DIR", "/dev/shm")


def main() -> None:
    role, *args = sys.argv[1:]
    if role == "write":
        write(args[0], int(args[1]), args[2], *args[3:])
    elif role == "read":
        read(args[0], int(args[1]), args[2], *args[3:])
    elif role == "hold-writer":
        hold_writer(args[0], int(args[1]), args[2])
    elif role == "hold-reader":
        hold_reader(args[0])
    elif role == "hold-frame":
        hold_frame(args[0])
    elif role == "block-get":
        block_get(args[0])
    elif role == "leave-view":
        leave_view(*args)
    elif role == "obj-write":
        obj_write(args[0], int(args[1]), int(args[2]))
    elif role == "obj-read":
        obj_read(*args)
    elif role == "storm-write":
        storm_write(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
