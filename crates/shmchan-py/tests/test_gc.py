"""shmchan.gc: what a live process holds stays, what a killed one held goes, and what speaks
for a channel keeps it. Across processes, in a channel directory of the test's own (gc
sweeps its whole directory)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shmchan
from conftest import Child, python_child


@pytest.fixture
def own_dir(channel_dir: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A channel directory for this test alone (children inherit it), inside the run's
    (removed with it)."""
    path = Path(tempfile.mkdtemp(prefix="gc.", dir=channel_dir))
    monkeypatch.setenv("SHMCHAN_DIR", str(path))
    return path


def collect(**options: bool) -> dict[str, dict[str, Any]]:
    """What gc said, by name."""
    return {c["name"]: c for c in shmchan.gc(**options)}


def said(entry: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """An entry's action, reason and state."""
    return entry["action"], entry["reason"], entry["state"]


def holder(children: list[Child], role: str, *args: object) -> Child:
    """A Python child holding an end (see peer.py), once it says so."""
    c = python_child(role, *args)
    children.append(c)
    assert c.line() == "ready"
    return c


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_gc_keeps_what_the_living_hold_and_collects_what_the_killed_held(
    own_dir: Path, children: list[Child]
) -> None:
    held, dead_writer, dead_reader, items, kept = (
        f"{t}-{os.getpid()}" for t in ("held", "deadw", "deadr", "items", "persist")
    )
    live = holder(children, "hold-writer", held, 0, "u8")
    holder(children, "hold-writer", dead_writer, 0, "u8").kill()
    holder(children, "hold-reader", dead_reader).kill()
    holder(children, "hold-writer", items, 5, "u8").kill()
    chan = shmchan.ChannelIO.create(kept, np.uint64, 512, persist=True)
    del chan
    lost = own_dir / f".shmchan-tmp.lost.{dead_pid()}.0.1"
    lost.mkdir()
    minutes_ago = time.time() - 120
    os.utime(lost, (minutes_ago, minutes_ago))

    dry = collect(dry_run=True)
    assert set(dry) == {held, dead_writer, dead_reader, items, kept, "lost"}
    assert said(dry[held]) == ("kept", "in_use", None)
    assert said(dry[dead_writer]) == ("would_remove", "not_in_use", "stale")
    assert said(dry[dead_reader]) == ("would_remove", "not_in_use", "stale")
    assert said(dry[items]) == ("kept", "undelivered", None)
    assert (dry[items]["items"], dry[items]["end_of_stream"]) == (5, False)
    assert said(dry[kept]) == ("kept", "persistent", None)
    assert said(dry["lost"]) == ("would_remove", "leftover", None)
    assert dry["lost"]["leftover"]
    assert dry["lost"]["path"] == str(lost)
    assert not dry[held]["leftover"]
    assert dry[held]["path"] == str(own_dir / f"shmchan.{held}")
    assert all(c["error"] is None for c in dry.values())
    assert set(shmchan.list()) == {held, dead_writer, dead_reader, items, kept}
    assert lost.exists()

    done = collect()
    assert said(done[held]) == ("kept", "in_use", None)
    assert said(done[dead_writer]) == ("removed", "not_in_use", "stale")
    assert said(done[dead_reader]) == ("removed", "not_in_use", "stale")
    assert said(done[items])[:2] == ("kept", "undelivered")
    assert said(done[kept])[:2] == ("kept", "persistent")
    assert said(done["lost"]) == ("removed", "leftover", None)
    assert set(shmchan.list()) == {held, items, kept}
    assert not lost.exists()

    # all=True overrides what speaks for a channel, never a live holder.
    done = collect(all=True)
    assert said(done[held]) == ("kept", "in_use", None)
    assert said(done[items]) == ("removed", "not_in_use", "stale")
    assert said(done[kept]) == ("removed", "not_in_use", "unused")
    assert shmchan.list() == [held]

    # Its holder killed, the very channel it held goes.
    live.kill()
    assert said(collect()[held]) == ("removed", "not_in_use", "stale")
    assert shmchan.list() == []


def test_gc_keeps_files_that_are_no_channel_unless_all(own_dir: Path, name: str) -> None:
    junk = own_dir / f"shmchan.{name}"
    junk.mkdir()
    (junk / "ring").write_bytes(b"\x5a" * 10_000)
    entry = collect()[name]
    assert said(entry) == ("kept", "unreadable", None)
    assert isinstance(entry["error"], shmchan.ForeignSegmentError)
    assert name in str(entry["error"])
    assert junk.exists()
    entry = collect(all=True)[name]
    assert said(entry) == ("removed", "unreadable", None)
    assert not junk.exists()
    assert collect() == {}
