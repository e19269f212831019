"""What a put accepts: values that convert to the channel's dtype unchanged, a DataFrame by
column name into a records channel; everything else is refused with ElementMismatchError,
and nothing is put."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shmchan


def channel(name: str, dtype: object) -> tuple[shmchan.Writer, shmchan.Reader]:
    chan = shmchan.ChannelIO.create(name, dtype, 512)
    return chan.writer(), chan.reader()


def test_a_dataframe_fills_records_by_column_name(name: str) -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [1.5, 2.5]})
    rec = df.to_records(index=False)
    w, r = channel(name, rec.dtype)
    # Columns in another order: matched by name, not by position.
    w.blocking_put(df[["b", "a"]])
    got = r.blocking_get(np.empty(2, rec.dtype))
    assert list(got["a"]) == [1, 2]
    assert list(got["b"]) == [1.5, 2.5]
    for bad in (
        pd.DataFrame({"a": [1.0], "b": [1.5]}),  # a column of another dtype
        pd.DataFrame({"a": [1]}),  # a column missing
        pd.DataFrame({"a": [1], "b": [1.5], "c": [0]}),  # a column too many
    ):
        with pytest.raises(shmchan.ElementMismatchError):
            w.blocking_put(bad)
    with pytest.raises(shmchan.ElementMismatchError):
        w.blocking_put([[1.0, 2]])  # a row as a list: not a record
    w.blocking_put([(3, 3.5)])  # a record as a tuple
    assert list(r.blocking_get(np.empty(1, rec.dtype))["a"]) == [3]
    assert len(r) == 0


def test_a_dataframe_into_a_plain_channel_is_refused(name: str) -> None:
    w, r = channel(name, np.int64)
    with pytest.raises(shmchan.ElementMismatchError):
        w.blocking_put(pd.DataFrame({"a": [1, 2]}))
    assert len(r) == 0


@pytest.mark.parametrize(
    "values",
    [
        [1.9, -2.7],  # floats truncated
        pd.Series([1.0, np.nan]),  # NaN as an integer
        ["7", "8"],  # strings parsed
        [2**40],  # wrapped
        memoryview(np.array([1, 2], np.int16)),  # int16 taken as int32
        np.ma.masked_array(np.array([1, 2], np.int32), mask=[False, True]),  # mask lost
    ],
)
def test_lossy_conversions_are_refused(name: str, values: object) -> None:
    w, r = channel(name, np.int32)
    with pytest.raises(shmchan.ElementMismatchError):
        w.blocking_put(values)  # type: ignore[arg-type]
    assert len(r) == 0


def test_lossless_conversions_go_through(name: str) -> None:
    w, r = channel(name, np.int32)
    w.blocking_put([1, -2])
    w.blocking_put(pd.Series(np.array([3], np.int32)))
    w.blocking_put(np.ma.masked_array(np.array([4], np.int32), mask=[False]))
    w.blocking_put(memoryview(np.array([5], np.int32)))
    assert list(r.blocking_get(np.empty(5, np.int32))) == [1, -2, 3, 4, 5]
    wf, rf = channel(name + "f", np.float32)
    wf.blocking_put([0.1, 2])  # a float rounds to float32; an integer fits
    assert rf.blocking_get(np.empty(2, np.float32))[1] == 2.0


def test_a_numpy_scalar_is_one_item_of_its_dtype(name: str) -> None:
    rec = np.array([(1, 1.5)], dtype=[("a", "<i8"), ("b", "<f8")])
    w, r = channel(name, rec.dtype)
    w.blocking_put(rec[0])  # one record
    assert list(r.blocking_get(np.empty(1, rec.dtype))["a"]) == [1]
    wi, ri = channel(name + "i", np.int32)
    wi.blocking_put(np.int32(5))
    with pytest.raises(shmchan.ElementMismatchError):
        wi.blocking_put(np.float64(1.5))
    assert list(ri.blocking_get(np.empty(1, np.int32))) == [5]
