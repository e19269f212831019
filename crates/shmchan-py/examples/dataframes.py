"""A pandas dataframe from one process to another, as records.

    python dataframes.py

The parent writes a dataframe of sensor readings into a channel of records, row by row in
batches; a child process reads them in frames of 256 rows and rebuilds dataframes. The
records' dtype is `df.to_records(index=False).dtype`: fixed-size columns only (an object
column, such as Python strings, must become fixed-length bytes first).
"""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pandas as pd

import shmchan


def readings(n: int) -> pd.DataFrame:
    t = np.arange(n, dtype=np.int64)
    return pd.DataFrame(
        {
            "t_ns": t * 1_000_000,
            "sensor": (t % 4).astype(np.int16),
            "value": np.sin(t / 100.0),
            "ok": t % 97 != 0,
        }
    )


def consume(name: str, dtype: np.dtype, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    r = shmchan.ChannelIO.open(name, dtype).reader()
    parts = [pd.DataFrame(frame) for frame in r.blocking_frames(256)]
    df = pd.concat(parts, ignore_index=True)
    queue.put((len(parts), df))


def main() -> None:
    df = readings(10_000)
    records = df.to_records(index=False)
    name = f"dataframes-{os.getpid()}"
    chan = shmchan.ChannelIO.create(name, records.dtype, capacity=4096)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=consume, args=(name, records.dtype, queue))
    child.start()
    with chan.writer() as w:  # closes on exit: the reader's last frame is the rest
        for start in range(0, len(records), 1000):
            w.blocking_put(records[start : start + 1000])
    frames, out = queue.get(timeout=60)
    child.join(60)
    pd.testing.assert_frame_equal(out, df)
    print(f"{len(out)} rows in {frames} frames, equal to the original")


if __name__ == "__main__":
    main()
