"""Arrow record batches between Python (pyarrow) and Rust (the `arrow` crates,
crates/arrow-example) through a message channel, each message one Arrow IPC stream; and
Arrow tables as values of an object channel."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

import shmchan
from conftest import ROOT, TIMEOUT, Child

pa = pytest.importorskip("pyarrow")

#: The Rust side's ring: 2 MiB (crates/arrow-example/src/main.rs).
CAPACITY = 2 << 20


@pytest.fixture(scope="session")
def arrow_peer() -> str:
    """The Rust end (crates/arrow-example), built once."""
    path = os.environ.get("SHMCHAN_ARROW_PEER")
    if path:
        return path
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "-p", "shmchan-arrow-example"],
        cwd=ROOT,
        check=True,
    )
    return str(ROOT / "target" / "release" / "arrow_ipc")


def schema() -> Any:
    return pa.schema(
        [
            pa.field("i", pa.int64(), nullable=False),
            pa.field("x", pa.float64(), nullable=False),
            pa.field("name", pa.string()),
        ]
    )


def batch(k: int) -> Any:
    """Batch ``k``, as crates/arrow-example makes it."""
    rows = list(range(100 * k, 100 * k + 1 + k % 100))
    names = [None if i % 7 == 0 else f"row-{i}" for i in rows]
    return pa.record_batch(
        [pa.array(rows, pa.int64()), pa.array([i / 4 for i in rows]), pa.array(names)],
        schema=schema(),
    )


def stream(b: Any) -> Any:
    """``b`` as one Arrow IPC stream (a pyarrow Buffer)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, b.schema) as w:
        w.write_batch(b)
    return sink.getvalue()


def test_rust_batches_to_python(name: str, children: list[Child], arrow_peer: str) -> None:
    n = 300
    w = Child([arrow_peer, "write", name, str(n)])
    children.append(w)
    assert w.line() == "ready"
    r = shmchan.MessageChannelIO.open(name).reader()
    k = 0
    for messages in r.blocking_frames(16, timeout=TIMEOUT):
        for m in messages:
            got = pa.ipc.open_stream(m).read_all()
            assert got.equals(pa.Table.from_batches([batch(k)])), k
            k += 1
    assert k == n
    assert w.finish()[0] == 0


def test_python_batches_to_rust(name: str, children: list[Child], arrow_peer: str) -> None:
    n = 300
    r = Child([arrow_peer, "read", name, str(n)])
    children.append(r)
    assert r.line() == "ready"
    w = shmchan.MessageChannelIO.open(name).writer()
    for k in range(0, n, 10):
        w.blocking_put([stream(batch(j)) for j in range(k, min(k + 10, n))], timeout=TIMEOUT)
    w.close()
    code, out, err = r.finish()
    assert code == 0, err
    rows = sum(batch(k).num_rows for k in range(n))
    assert out.splitlines()[-1] == f"read {n} batches {rows} rows"


def test_arrow_tables_are_values(name: str) -> None:
    chan = shmchan.ObjectChannelIO.create(name)
    w, r = chan.writer(), chan.reader()
    tables = [pa.Table.from_batches([batch(k)]) for k in range(5)]
    w.blocking_put(tables)
    got = r.blocking_get([None] * 5)
    assert all(a.equals(b) for a, b in zip(got, tables, strict=True))
