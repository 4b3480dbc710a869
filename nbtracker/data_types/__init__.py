"""Rich values users log: Table, Image, Histogram, Html."""

from __future__ import annotations

from .histogram import Histogram

__all__ = ["Histogram"]
