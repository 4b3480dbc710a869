"""Notebook widgets (anywidget): the live run panel and the runs comparison."""

from .run_panel import RunPanel
from .runs_panel import RunsPanel

__all__ = ["RunPanel", "RunsPanel"]
