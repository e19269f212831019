"""Element descriptions: a channel records its dtype's full description (the NPY format's
``descr``), and a dtype described otherwise is refused, across processes, naming both. A
Rust peer that names its layout (crates/peers/src/python_peer.rs) pairs with the same dtype
and refuses another of the same size and alignment. Every child has a watchdog
(conftest.TIMEOUT)."""

from __future__ import annotations

import ast
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from numpy.lib.format import descr_to_dtype, dtype_to_descr

import shmchan
from conftest import IMU, Child, imu_items, python_child, ticks_frame

TIMEOUT_S = 60.0

#: Pairs of one size and alignment that the channel used to take for one another.
PAIRS = [("M8[us]", "M8[ns]"), ("f2", "i2"), ("i8", "M8[ns]"), ("i4,f4", "f4,i4")]


def canonical(dtype: npt.DTypeLike) -> str:
    """The description numpy writes for `dtype`: the channel's canonical form."""
    return repr(dtype_to_descr(np.dtype(dtype)))


@pytest.mark.parametrize(("created", "opened"), PAIRS + [(b, a) for a, b in PAIRS])
def test_a_dtype_described_otherwise_is_refused(
    name: str, children: list[Child], created: str, opened: str
) -> None:
    holder = python_child("hold-writer", name, 0, created)
    children.append(holder)
    assert holder.line() == "ready"
    with pytest.raises(shmchan.ElementMismatchError) as refused:
        shmchan.ChannelIO.open(name, opened)
    e = refused.value
    assert (e.expected_descr, e.found_descr) == (canonical(opened), canonical(created))
    assert canonical(opened) in str(e), str(e)
    assert canonical(created) in str(e), str(e)
    # The same dtype opens, and sees what the creator recorded.
    chan = shmchan.ChannelIO.open(name, created)
    assert chan.descr == canonical(created)
    assert shmchan.inspect(name)["descr"] == canonical(created)


def test_pandas_timestamps_arrive_whole(name: str, children: list[Child]) -> None:
    writer = python_child("hold-frame", name)
    children.append(writer)
    assert writer.line() == "ready"
    df = ticks_frame()
    records = df.to_records(index=False).dtype
    assert records["t"] == np.dtype("M8[us]")
    # A reader that takes the times for nanoseconds would see 1970: it is refused.
    nanoseconds = np.dtype([("t", "M8[ns]"), ("price", "f8")])
    with pytest.raises(shmchan.ElementMismatchError, match=r"M8\[us\].*M8\[ns\]"):
        shmchan.ChannelIO.open(name, nanoseconds)
    r = shmchan.ChannelIO.open(name, records).reader()
    got = r.blocking_get(np.empty(len(df), records), timeout=TIMEOUT_S)
    assert (got["t"] == df["t"].to_numpy()).all(), got
    assert got["t"][0] == np.datetime64("2024-05-01T12:00:00.123456")


def rust_child(rust_peer: str, *args: object) -> Child:
    return Child([rust_peer, *map(str, args)])


def test_a_rust_peer_that_names_its_layout(
    name: str, children: list[Child], rust_peer: str
) -> None:
    # The Rust record's layout, created here: the described Rust reader reads it all.
    imu = shmchan.ChannelIO.create(name, IMU, 4096, schema="imu/v1")
    w = imu.writer()
    w.blocking_put(imu_items(0, 1000))
    w.close()
    code, out, err = rust_child(rust_peer, "read", name, 1000, "imu").finish()
    assert code == 0, err
    assert out.splitlines()[-1] == "read 1000 closed"
    # The same size, alignment and tag, other fields: the Rust reader refuses it.
    other = f"{name}-swapped"
    swapped = np.dtype(
        [("t", "<u8"), ("flags", "<u4"), ("x", "<f4"), ("y", "<f4"), ("z", "<f4")], align=True
    )
    assert (swapped.itemsize, swapped.alignment) == (IMU.itemsize, IMU.alignment)
    chan = shmchan.ChannelIO.create(other, swapped, 4096, schema="imu/v1")
    w = chan.writer()
    w.blocking_put(np.zeros(10, swapped))
    w.close()
    code, out, err = rust_child(rust_peer, "read", other, 10, "imu").finish()
    assert code != 0
    assert "ElementMismatch" in err, err
    assert canonical(swapped) in err, err
    assert canonical(IMU) in err, err
    assert imu.descr == canonical(IMU)


@pytest.mark.parametrize(
    "dtype",
    [
        np.float16,
        "M8[us]",
        "m8[10ms]",
        "S5",
        "U3",
        np.bool_,
        np.complex128,
        IMU,
        np.dtype([("t", "<u8"), ("b", "u1")], align=True),  # trailing padding
        np.dtype([("a", "u1"), ("b", ">i4")]),  # a field of the other byte order
        np.dtype([("pos", [("x", "f4"), ("y", "f4")]), ("v", "f8", (3,))]),
        np.dtype(
            {
                "names": ["a", "b"],
                "formats": ["u1", "<i4"],
                "offsets": [0, 4],
                "titles": ["A", None],
            }
        ),
        np.dtype([("température", "f8"), ("x", "i4")]),
    ],
    ids=str,
)
def test_the_description_is_numpys(name: str, dtype: npt.DTypeLike) -> None:
    chan = shmchan.ChannelIO.create(name, dtype, 64)
    assert chan.descr == canonical(dtype)
    assert chan.descr is not None
    assert descr_to_dtype(ast.literal_eval(chan.descr)) == np.dtype(dtype)
    assert shmchan.ChannelIO.open(name, dtype).descr == chan.descr


def test_a_quote_in_a_name_is_escaped(name: str) -> None:
    # Python's repr would switch to double quotes; the canonical form always escapes.
    dtype = np.dtype([("it's", "i4"), ("a\\b", "i4")])
    chan = shmchan.ChannelIO.create(name, dtype, 64)
    assert chan.descr == r"[('it\'s', '<i4'), ('a\\b', '<i4')]"
    assert descr_to_dtype(ast.literal_eval(chan.descr)) == dtype


def test_a_top_level_subarray_keeps_its_kind(name: str) -> None:
    # The NPY format writes both as '|V12'; the channel tells them apart.
    chan = shmchan.ChannelIO.create(name, "(3,)f4", 64)
    with pytest.raises(shmchan.ElementMismatchError, match=r"\('<i4', \(3,\)\)"):
        shmchan.ChannelIO.open(name, "(3,)i4")
    assert chan.descr == "('<f4', (3,))"


def test_what_the_npy_format_cannot_describe_is_refused(name: str) -> None:
    out_of_order: Any = {"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": [4, 0]}
    with pytest.raises(shmchan.UnsupportedElementError, match="out of order"):
        shmchan.ChannelIO.create(name, np.dtype(out_of_order))
    assert name not in shmchan.list()
