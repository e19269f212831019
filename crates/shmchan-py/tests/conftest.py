"""Shared fixtures: unique channel names, the Rust peer program, child processes with
watchdogs."""

from __future__ import annotations

import itertools
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

#: The records of crates/peers/src/python_peer.rs, as numpy lays out a C struct.
IMU = np.dtype(
    [("t", "<u8"), ("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("flags", "<u4")], align=True
)

#: Longest any child may take before the test fails (and the child is killed).
TIMEOUT = float(os.environ.get("SHMCHAN_TEST_TIMEOUT", "60"))

_counter = itertools.count()


def ticks_frame() -> Any:
    """A pandas DataFrame of two trades; pandas 3 makes its times ``M8[us]``."""
    import pandas as pd

    times = ["2024-05-01 12:00:00.123456", "2024-05-02 09:30:00.000001"]
    return pd.DataFrame({"t": pd.to_datetime(times), "price": [101.5, 99.25]})


def imu_items(start: int, count: int) -> np.ndarray:
    """Items start..start+count as python_peer.rs makes them."""
    i = np.arange(start, start + count, dtype=np.uint64)
    out = np.empty(count, IMU)
    out["t"] = i
    out["x"] = i.astype(np.float32) / 2
    out["y"] = -out["x"]
    out["z"] = 1
    out["flags"] = i % 7
    return out


@pytest.fixture(scope="session", autouse=True)
def channel_dir() -> Iterator[str]:
    """The run's channels live in a directory of their own on the shared-memory file
    system (children inherit it), removed at the end: channels a test leaves behind by
    design (a closed stream nobody read) do not pile up in /dev/shm."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    path = tempfile.mkdtemp(prefix="shmchan-pytest.", dir=base)
    old = os.environ.get("SHMCHAN_DIR")
    os.environ["SHMCHAN_DIR"] = path
    yield path
    if old is None:
        del os.environ["SHMCHAN_DIR"]
    else:
        os.environ["SHMCHAN_DIR"] = old
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A channel name no other test (or run) uses."""
    tag = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:40]
    return f"py{os.getpid()}-{tag}-{next(_counter)}"


@pytest.fixture(scope="session")
def rust_peer() -> str:
    """The Rust end of the cross-language tests (crates/peers/src/python_peer.rs), built once."""
    path = os.environ.get("SHMCHAN_RUST_PEER")
    if path:
        return path
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "-p", "shmchan-peers", "--bin", "python_peer"],
        cwd=ROOT,
        check=True,
    )
    return str(ROOT / "target" / "release" / "python_peer")


class Child:
    """A child process whose stdout is read line by line, each read bounded by TIMEOUT."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self._buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def line(self, timeout: float = TIMEOUT) -> str:
        """The next line of output; fails the test if none comes in time."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                self.kill()
                pytest.fail(f"child {self.proc.args} said nothing for {timeout} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                self.proc.wait(timeout)
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                pytest.fail(f"child {self.proc.args} ended ({self.proc.returncode}): {err}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str, str]:
        """Waits for the child's exit (killing it after `timeout`); returns its code, the
        rest of its stdout and its stderr."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"child {self.proc.args} hung; stderr: {err.decode()}")
        return self.proc.returncode, (self._buf + out).decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def asleep(self) -> None:
        """Waits until the child's main thread is blocked in a sleeping system call (poll,
        epoll_wait), so a test acts on a waiting child, not a busy one."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if in_sleeping_syscall(self.pid):
                return
            # No event says "the other process fell asleep": look again, yielding the CPU
            # (as the Rust tests' until_asleep does), bounded by the watchdog's deadline.
            os.sched_yield()
        pytest.fail(f"child {self.pid} never went to sleep")


def thread_asleep(tid: int) -> None:
    """Waits until thread `tid` of this process is blocked in a sleeping system call."""
    deadline = time.monotonic() + TIMEOUT
    while not in_sleeping_syscall(os.getpid(), tid):
        if time.monotonic() > deadline:
            pytest.fail(f"thread {tid} never went to sleep")
        os.sched_yield()


class OnThread:
    """`call` run on a thread of its own, started at once: the exception it ended with, and
    when, for a test that waits for it to sleep, acts, then joins it."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.error: Exception | None = None
        self.at = 0.0
        tids: list[int] = []

        def run() -> None:
            tids.append(threading.get_native_id())
            try:
                call()
            except Exception as e:
                self.error = e
                self.at = time.monotonic()

        self.thread = threading.Thread(target=run)
        self.thread.start()
        while not tids:
            os.sched_yield()
        self.tid = tids[0]

    def asleep(self) -> None:
        """Waits until the call sleeps in a system call."""
        thread_asleep(self.tid)

    def join(self, timeout: float, hung: str) -> Exception | None:
        """Waits for the call to end (failing with `hung` if it does not); its exception."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), hung
        return self.error


def in_sleeping_syscall(pid: int, tid: int | None = None) -> bool:
    """True if thread `tid` (default: the main thread) of `pid` is in poll(2), ppoll,
    epoll_wait or epoll_pwait."""
    path = f"/proc/{pid}/syscall" if tid is None else f"/proc/{pid}/task/{tid}/syscall"
    try:
        with open(path) as f:
            nr = f.read().split()[0]
    except (OSError, IndexError):
        return False
    # x86_64: poll 7, epoll_wait 232, ppoll 271, epoll_pwait 281, epoll_pwait2 441.
    return nr in {"7", "232", "271", "281", "441"}


def worker_result(conn: Any, proc: Any) -> Any:
    """What the multiprocessing worker `proc` sent on `conn`, once it exited with 0 (both
    waits bounded by TIMEOUT; a worker that does not exit in time is killed)."""
    try:
        assert conn.poll(TIMEOUT), "the worker sent nothing in time"
        got = conn.recv()
    finally:
        proc.join(TIMEOUT)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
    assert proc.exitcode == 0, f"the worker exited with {proc.exitcode}"
    return got


def python_child(role: str, *args: object, env: dict[str, str] | None = None) -> Child:
    """A Python child running tests/peer.py ROLE ARGS."""
    return Child([sys.executable, str(HERE / "peer.py"), role, *map(str, args)], env)


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Children a test starts: killed at its end, whatever happened."""
    started: list[Child] = []
    yield started
    for c in started:
        c.kill()
