"""The array type of zero-copy views: an ndarray over ring slots that registers the views
made from it, so that the lease can empty them all when it ends (see ``peek``)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SlotArray"]


class SlotArray(np.ndarray[Any, np.dtype[Any]]):
    """An ndarray whose memory is ring slots lent by ``peek`` or ``reserve``.

    Use it like any ndarray inside the ``with`` block. When the block ends, the slots go
    back to the other end: this array and every view made from it (slices, reshapes,
    ``.view()``) become empty, so nothing can read reused memory. Copies (``.copy()``,
    ``np.array(view)``, the results of arithmetic) are ordinary arrays and stay valid."""

    def __array_finalize__(self, obj: Any) -> None:
        # A view shares the slots (it owns no data): register it with the lease, found at
        # the end of the base chain. Arrays with their own data (ufunc results, copies)
        # are not the lease's business.
        if obj is None or self.flags.owndata:
            return
        base = obj
        while isinstance(base, np.ndarray):
            base = base.base
        register = getattr(base, "register", None)
        if register is not None:
            register(self)

    def __array_wrap__(self, array: Any, context: Any = None, return_scalar: bool = False) -> Any:
        # Results of ufuncs and reductions own their memory (`array`, a plain ndarray): give
        # them back as they are, a scalar for a reduction to one value, not as a SlotArray
        # (which the lease would empty).
        if isinstance(array, np.ndarray) and type(array) is np.ndarray and array.flags.owndata:
            return array[()] if return_scalar else array
        return super().__array_wrap__(array, context, return_scalar)

    def copy(self, order: Any = "C") -> np.ndarray[Any, np.dtype[Any]]:  # type: ignore[override]
        """A copy with memory of its own: an ordinary ndarray, valid after the lease."""
        return np.array(self, order=order, copy=True, subok=False)
