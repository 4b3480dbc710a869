"""Notebook widgets (anywidget): the live run panel."""

from .run_panel import RunPanel

__all__ = ["RunPanel"]
