"""The package's examples run, and say what they should."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TIMEOUT

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_dataframe_example_round_trips() -> None:
    pytest.importorskip("pandas")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "dataframes.py")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10000 rows in 40 frames, equal to the original"


def test_the_values_example_carries_frames_and_dataframes() -> None:
    pytest.importorskip("pandas")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "values.py")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "100 values: 90 frames, 10 dataframes, equal"
