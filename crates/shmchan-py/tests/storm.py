"""The random choices of the cancel storm (test_cancel.py and peer.py's `storm-write`)."""

from __future__ import annotations

import numpy as np


def batch_size(rng: np.random.Generator, capacity: int) -> int:
    """A put's or a get's size: mostly small, some up to the ring's size, some larger than
    the ring (up to 3 times)."""
    u = rng.random()
    if u < 0.98:
        return int(rng.integers(1, 65))
    if u < 0.99:
        return int(rng.integers(65, capacity + 1))
    return int(rng.integers(capacity + 1, 3 * capacity))


def timeout_for(rng: np.random.Generator, attempt: int) -> float | None:
    """``asyncio.wait_for``'s timeout for the attempt-th try of one call: at first so short
    that a call that waits at all is mostly cancelled, then longer, so that it completes in
    a few tries; none after 50 tries (so the storm ends whatever the machine's speed)."""
    if attempt >= 50:
        return None
    return float(rng.uniform(1e-6, min(1e-3, 1e-5 * 2**attempt)))
