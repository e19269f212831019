"""One process: every dtype through the channel, the API's shapes and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import shmchan
from conftest import IMU, imu_items

PRIMITIVES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8"]


@pytest.mark.parametrize("dtype", [*PRIMITIVES, "bool", "f2", "c16", "S5", "IMU"])
def test_every_dtype_round_trips(name: str, dtype: str) -> None:
    dt = IMU if dtype == "IMU" else np.dtype(dtype)
    chan = shmchan.ChannelIO.create(name, dt, 4096)
    w, r = chan.writer(), chan.reader()
    if dtype == "IMU":
        items = imu_items(0, 3000)
    else:
        items = np.frombuffer(np.random.default_rng(1).bytes(3000 * dt.itemsize), dt)
    w.blocking_put(items)  # all fit: no second thread needed
    got = np.empty(len(items), dt)
    r.blocking_get(got)
    assert got.tobytes() == items.tobytes()


def test_put_and_get_in_any_sizes(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.float32, 1 << 12)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(300, dtype=np.float32))
    w.blocking_put([300.0, 301.0])  # a sequence is converted
    w.blocking_put(np.arange(302, 310, dtype=np.float32).reshape(2, 4))  # flattened
    frame = np.empty((16, 16), np.float32)  # filled flat, returned
    assert r.blocking_get(frame) is frame
    assert frame.reshape(-1)[255] == 255
    rest = np.empty(100, np.float32)
    assert r.blocking_get_some(rest) == 54
    assert list(rest[:3]) == [256, 257, 258]
    assert len(r) == 0


def test_close_drains_then_raises_with_remaining(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.int64)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(5))
    w.close()
    four = np.empty(4, np.int64)
    r.blocking_get(four)
    with pytest.raises(shmchan.QueueClosedError) as e:
        r.blocking_get(four)
    assert e.value.remaining == 1
    assert isinstance(e.value, RuntimeError)  # as the seed's
    assert r.blocking_get_some(four) == 1  # nothing was removed
    with pytest.raises(shmchan.QueueClosedError):
        r.blocking_get_some(four)


def test_abort_carries_the_reason(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint8)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(b"ab")
    w.abort("sensor lost")
    assert r.blocking_get(np.empty(2, np.uint8)).tobytes() == b"ab"
    with pytest.raises(shmchan.AbortedError) as e:
        r.blocking_get(np.empty(1, np.uint8))
    assert e.value.reason == "sensor lost"
    assert isinstance(e.value, shmchan.QueueClosedError)


def test_reader_close_fails_the_writer(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint16, 2048)
    w, r = chan.writer(), chan.reader()
    r.close()
    with pytest.raises(shmchan.QueueClosedError) as e:
        w.blocking_put(np.zeros(10, np.uint16))
    assert e.value.accepted == 0
    assert w.reader_closed


def test_frames_then_the_rest(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint32)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(1000, dtype=np.uint32))
    w.close()
    sizes = [len(f) for f in r.blocking_frames(256)]
    assert sizes == [256, 256, 256, 232]


def test_frames_end_with_the_abort_after_the_rest(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint32)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(300, dtype=np.uint32))
    w.abort("bye")
    got: list[int] = []

    def collect() -> None:
        for f in r.blocking_frames(256):
            got.append(len(f))

    with pytest.raises(shmchan.AbortedError):
        collect()
    assert got == [256, 44]


def test_timeouts_remove_nothing(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.uint64, 512)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(np.arange(3, dtype=np.uint64))
    with pytest.raises(TimeoutError) as e:
        r.blocking_get(np.empty(4, np.uint64), timeout=0.05)
    assert isinstance(e.value, shmchan.TimedOutError)
    assert (e.value.remaining, e.value.filled) == (3, 0)
    w.blocking_put(np.arange(3, 512, dtype=np.uint64))
    with pytest.raises(shmchan.TimedOutError) as e:
        w.blocking_put(np.arange(10, dtype=np.uint64), timeout=0)
    assert e.value.accepted == 0
    got = np.empty(512, np.uint64)
    r.blocking_get(got, timeout=1)
    assert (got == np.arange(512)).all()
    with pytest.raises(ValueError, match="timeout"):
        r.blocking_get(got, timeout=-1)


def test_open_errors_are_typed(name: str) -> None:
    with pytest.raises(shmchan.NotFoundError) as nf:
        shmchan.ChannelIO.open(name, np.float32)
    assert isinstance(nf.value, FileNotFoundError)
    chan = shmchan.ChannelIO.create(name, np.float32, schema="imu/v2")
    with pytest.raises(shmchan.AlreadyExistsError):
        shmchan.ChannelIO.create(name, np.float32)
    with pytest.raises(shmchan.ElementMismatchError) as em:
        shmchan.ChannelIO.open(name, np.float64, schema="imu/v2")
    assert "4 bytes" in str(em.value)
    assert "8 bytes" in str(em.value)
    with pytest.raises(shmchan.ElementMismatchError, match="u32"):
        shmchan.ChannelIO.open(name, np.uint32, schema="imu/v2")  # same size, other kind
    with pytest.raises(shmchan.SchemaMismatchError):
        shmchan.ChannelIO.open(name, np.float32)
    with pytest.raises(shmchan.InvalidNameError):
        shmchan.ChannelIO.create("no/slashes", np.float32)
    with pytest.raises(shmchan.UnsupportedElementError):
        shmchan.ChannelIO.create(name + "o", object)
    with pytest.raises(shmchan.UnsupportedElementError):
        shmchan.ChannelIO.create(name + "b", ">u4")
    assert shmchan.ChannelIO.open(name, np.float32, schema="imu/v2").capacity == chan.capacity


def test_end_taken_and_end_closed(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.int8)
    w = chan.writer()
    with pytest.raises(shmchan.EndTakenError):
        chan.writer()
    w.close()
    w.close()  # idempotent
    with pytest.raises(shmchan.EndClosedError):
        w.blocking_put([1])


def test_wrong_arrays_are_refused(name: str) -> None:
    chan = shmchan.ChannelIO.create(name, np.float32)
    w, r = chan.writer(), chan.reader()
    with pytest.raises(shmchan.ElementMismatchError, match="float64"):
        w.blocking_put(np.zeros(3))  # an ndarray is never cast silently
    w.blocking_put(np.zeros(3, np.float32))
    with pytest.raises(shmchan.ElementMismatchError):
        r.blocking_get(np.empty(3, np.int32))
    with pytest.raises(ValueError, match="contiguous"):
        r.blocking_get(np.empty((3, 2), np.float32)[:, 0])
    readonly = np.empty(3, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        r.blocking_get(readonly)
    with pytest.raises(TypeError):
        r.blocking_get(bytearray(12))  # type: ignore[arg-type]
    assert len(r) == 3, "nothing was removed"


def test_the_hierarchy_is_rooted_at_channel_error() -> None:
    errors = [getattr(shmchan, n) for n in shmchan.__all__ if n.endswith("Error")]
    assert len(errors) >= 20
    assert all(issubclass(e, shmchan.ChannelError) for e in errors)
    assert issubclass(shmchan.AbortedError, shmchan.QueueClosedError)
    assert issubclass(shmchan.TimedOutError, TimeoutError)


def test_pandas_dataframe_round_trip(name: str) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"t": np.arange(1000, dtype=np.int64), "v": np.linspace(0, 1, 1000)})
    records = df.to_records(index=False)
    chan = shmchan.ChannelIO.create(name, records.dtype)
    w, r = chan.writer(), chan.reader()
    w.blocking_put(records)
    frame = np.empty(1000, records.dtype)
    out = pd.DataFrame(r.blocking_get(frame))
    pd.testing.assert_frame_equal(out, df)
