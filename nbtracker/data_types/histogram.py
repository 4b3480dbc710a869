"""Histogram: bin edges and counts, logged per step (a histogram-over-time view)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

MAX_BINS = 512


class Histogram:
    """A histogram of values, stored as ``bins`` (edges) and ``histogram`` (counts).

    Parameters
    ----------
    sequence : sequence of numbers, numpy array or torch tensor, optional
        Values to bin (any shape; NaN and inf are dropped).
    np_histogram : tuple, optional
        ``(counts, edges)`` as returned by ``numpy.histogram``.
    num_bins : int
        Number of bins when ``sequence`` is given (1 to 512).

    Logging a list of numbers (``run.log({"w": [0.1, 0.5]})``) makes a Histogram too.
    """

    _nbt_media = "histogram"

    def __init__(
        self,
        sequence: Sequence[float] | Any = None,
        np_histogram: tuple[Any, Any] | None = None,
        num_bins: int = 64,
    ) -> None:
        import numpy as np

        if sequence is not None and np_histogram is not None:
            msg = "Histogram takes a sequence or np_histogram=(counts, edges), not both"
            raise ValueError(msg)
        if np_histogram is not None:
            counts, edges = _from_np_histogram(np_histogram)
        elif sequence is not None:
            if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)):
                msg = f"num_bins must be an int, not {type(num_bins).__name__}"
                raise TypeError(msg)
            if not 1 <= int(num_bins) <= MAX_BINS:
                msg = f"num_bins must be between 1 and {MAX_BINS}, not {num_bins}"
                raise ValueError(msg)
            try:
                arr = np.asarray(_to_numpy(sequence), dtype="float64").ravel()
            except (TypeError, ValueError) as exc:
                msg = f"Histogram needs numbers; could not read a {type(sequence).__name__} ({exc})"
                raise TypeError(msg) from exc
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

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.bins == other.bins and self.histogram == other.histogram

    __hash__ = None  # type: ignore[assignment]


def _from_np_histogram(value: Any) -> tuple[Any, Any]:
    import numpy as np

    try:
        counts, edges = value
        counts = np.asarray(_to_numpy(counts), dtype="float64")
        edges = np.asarray(_to_numpy(edges), dtype="float64")
    except (TypeError, ValueError) as exc:
        msg = "np_histogram must be (counts, edges) of numbers, as numpy.histogram returns"
        raise ValueError(msg) from exc
    if counts.ndim != 1 or edges.ndim != 1 or len(edges) != len(counts) + 1:
        msg = (
            "np_histogram must be (counts, edges) with len(edges) == len(counts) + 1; got "
            f"{counts.shape} counts and {edges.shape} edges"
        )
        raise ValueError(msg)
    if not 1 <= len(counts) <= MAX_BINS:
        msg = f"np_histogram has {len(counts)} bins; 1 to {MAX_BINS} are supported"
        raise ValueError(msg)
    if not (np.isfinite(counts).all() and np.isfinite(edges).all()) or (counts < 0).any():
        msg = "np_histogram counts must be finite and >= 0, and edges finite"
        raise ValueError(msg)
    if (np.diff(edges) < 0).any():
        msg = "np_histogram edges must be increasing"
        raise ValueError(msg)
    return counts, edges


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):  # torch tensor, duck-typed
        from ._media import tensor_to_numpy

        x = tensor_to_numpy(x)
    return x
