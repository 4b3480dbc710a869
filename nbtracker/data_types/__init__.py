"""Rich values users log: Table, Image, Histogram, Html."""

from __future__ import annotations

from .histogram import Histogram
from .html import Html
from .image import Image
from .table import Table

__all__ = ["Histogram", "Html", "Image", "Table"]
