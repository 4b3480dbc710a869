"""Histogram: bin edges and counts, logged per step (a histogram-over-time view)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


class Histogram:
    """A histogram of values, stored as ``bins`` (edges) and ``counts``.

    Parameters
    ----------
    sequence : sequence of numbers, optional
        Values to bin (NaN and inf are dropped).
    np_histogram : tuple, optional
        ``(counts, edges)`` as returned by ``numpy.histogram``.
    num_bins : int
        Number of bins when ``sequence`` is given (1 to 512).
    """

    def __init__(
        self,
        sequence: Sequence[float] | Any = None,
        np_histogram: tuple[Any, Any] | None = None,
        num_bins: int = 64,
    ) -> None:
        import numpy as np

        if np_histogram is not None:
            counts, edges = np_histogram
            counts, edges = np.asarray(counts), np.asarray(edges)
            if len(edges) != len(counts) + 1:
                msg = "np_histogram must be (counts, edges) with len(edges) == len(counts) + 1"
                raise ValueError(msg)
        elif sequence is not None:
            if not 1 <= int(num_bins) <= 512:
                msg = f"num_bins must be between 1 and 512, not {num_bins}"
                raise ValueError(msg)
            arr = np.asarray(_to_numpy(sequence), dtype="float64").ravel()
            arr = arr[np.isfinite(arr)]
            counts, edges = np.histogram(arr, bins=int(num_bins))
        else:
            msg = "Histogram needs a sequence of values or np_histogram=(counts, edges)"
            raise ValueError(msg)
        self.histogram = [int(c) if float(c).is_integer() else float(c) for c in counts]
        self.bins = [float(e) for e in edges]

    def to_json_value(self) -> dict[str, Any]:
        return {"_type": "histogram", "bins": self.bins, "values": self.histogram}

    def _to_history(self, run: Any, key: str, step: int) -> tuple[str, str]:
        return "histogram", json.dumps(self.to_json_value())

    def __repr__(self) -> str:
        return f"Histogram(bins={len(self.histogram)}, n={sum(self.histogram)})"


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):  # torch tensor, duck-typed
        x = x.detach().cpu().numpy()
    return x
