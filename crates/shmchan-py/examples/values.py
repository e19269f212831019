"""Python values of any kind from one asyncio node to another process: the seed's channel.

    python values.py

The parent creates a private object channel and hands it to a child process (it pickles as
"open by name"). The parent's node puts camera frames (a dict of an image whose shape
changes, and its metadata) and, every tenth value, a DataFrame with a text column; the
child's node reads them in batches of 8 and checks each.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp

import numpy as np
import pandas as pd

import shmchan

COUNT = 100


def value(i: int) -> object:
    """Value ``i``: a frame, or every tenth a table."""
    if i % 10 == 9:
        return pd.DataFrame({"sensor": [f"cam-{i}", "imu"], "ok": pd.array([True, None])})
    image = np.full((48 + i, 64), i % 256, dtype=np.uint8)
    return {"image": image, "t": i * 0.033, "camera": "left"}


async def produce(chan: shmchan.ObjectChannelIO) -> None:
    w = chan.writer()
    for i in range(COUNT):
        await w.put(value(i))  # one value: a dict, or a DataFrame
    await w.close()


async def consume(chan: shmchan.ObjectChannelIO) -> str:
    r = chan.reader()
    frames = tables = 0
    async for batch in r.frames(8):
        for v in batch:
            i = frames + tables
            want = value(i)
            if isinstance(want, pd.DataFrame):
                pd.testing.assert_frame_equal(v, want)
                tables += 1
            else:
                assert isinstance(want, dict)
                assert np.array_equal(v["image"], want["image"]), i
                frames += 1
    await r.close()
    return f"{frames + tables} values: {frames} frames, {tables} dataframes, equal"


def child(chan: shmchan.ObjectChannelIO) -> None:
    print(asyncio.run(consume(chan)), flush=True)


def main() -> None:
    chan = shmchan.ObjectChannelIO(capacity=1 << 20)
    reader = mp.get_context("spawn").Process(target=child, args=(chan,))
    reader.start()
    asyncio.run(produce(chan))
    reader.join()
    raise SystemExit(reader.exitcode)


if __name__ == "__main__":
    main()
