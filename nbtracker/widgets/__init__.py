"""Notebook widgets (anywidget): the live run panel and the runs workspace."""

from .run_panel import RunPanel

__all__ = ["RunPanel", "Workspace"]


def __getattr__(name: str) -> object:
    if name == "Workspace":  # imported on use: it pulls in the workspace's query layer
        from .workspace import Workspace

        return Workspace
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
