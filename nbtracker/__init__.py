"""nbtracker: experiment tracking that lives inside Jupyter.

``import nbtracker as wandb`` runs code written for the W&B Python API unchanged; runs are
stored locally (DuckDB catalog + Parquet), and in a notebook they draw live charts in the
cell output.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from . import _state, _wandb_compat
from ._wandb_compat import (
    NotSupportedError,
    Settings,
    login,
    mark_preempting,
    setup,
    teardown,
    termerror,
    termlog,
    termwarn,
)
from .config import Config
from .errors import NbtrackerError, RunNotFound, UsageError
from .run import Run
from .sdk import define_metric, finish, init, log
from .store import Store

Error = NbtrackerError  # wandb.Error: ``except wandb.Error`` catches nbtracker's errors

__version__ = "0.1.0"

_EXTRAS = ("save", "restore", "alert", "log_artifact", "use_artifact", "log_model",
           "use_model", "watch", "unwatch")  # fmt: skip
_LAZY: dict[str, Any] = {
    "Api": ("nbtracker.api", "Api"),
    "sql": ("nbtracker.api", "sql"),
    "show": ("nbtracker.display", "show"),
    "compare": ("nbtracker._compare", "compare"),
    "separate_panels": ("nbtracker._compare", "separate_panels"),
    "Table": ("nbtracker.data_types", "Table"),
    "Image": ("nbtracker.data_types", "Image"),
    "Histogram": ("nbtracker.data_types", "Histogram"),
    "Html": ("nbtracker.data_types", "Html"),
    "AlertLevel": ("nbtracker.alerts", "AlertLevel"),
    "Artifact": ("nbtracker.artifacts", "Artifact"),
    **dict.fromkeys(_EXTRAS, "nbtracker._run_extras"),
    "sweep": ("nbtracker.sweeps", "sweep"),
    "agent": ("nbtracker.sweeps", "agent"),
    "load_ipython_extension": ("nbtracker._ipython", "load_ipython_extension"),
    "unload_ipython_extension": ("nbtracker._ipython", "unload_ipython_extension"),
}

__all__ = [
    "Api", "compare", "Config", "agent", "sweep", "Histogram", "Html", "Image", "NbtrackerError", "NotSupportedError",
    "Run", "RunNotFound", "Settings", "Store", "Table", "UsageError", "config",
    "define_metric", "finish", "init", "log", "login", "mark_preempting", "run", "setup",
    "show", "sql", "summary", "teardown", "termerror", "termlog", "termwarn",
    "AlertLevel", "Artifact", "alert", "log_artifact", "log_model", "restore", "save",
    "unwatch", "use_artifact", "use_model", "watch",
]  # fmt: skip


def _module_getattr(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod = _LAZY[name]
        mod, attr = (mod, name) if isinstance(mod, str) else mod
        return getattr(importlib.import_module(mod), attr)
    if name in _wandb_compat.UNSUPPORTED:  # W&B API not built yet: raises when used
        return _wandb_compat.stand_in(name)
    msg = f"module 'nbtracker' has no attribute {name!r}"
    raise AttributeError(msg)


class _Module(types.ModuleType):
    """Makes ``nbtracker.run``, ``.config`` and ``.summary`` follow the current run, and
    lets ``nbtracker.config = {...}`` update the run's config (as ``wandb.config = ...``).
    Before ``init()`` (and after ``finish()``) ``run`` is None, ``config`` collects values
    for the next run and ``summary`` is an empty placeholder: probing them never raises."""

    @property
    def run(self) -> Run | None:
        return _state.current

    @property
    def config(self) -> Config:
        run = _state.current
        if run is not None:
            return run.config
        if _state.preinit_config is None:
            _state.preinit_config = Config()
        return _state.preinit_config

    @config.setter
    def config(self, value: Any) -> None:
        if isinstance(value, Config):
            value = value.as_dict()
        self.config.update(value)

    @property
    def summary(self) -> Any:
        run = _state.current
        if run is None:
            return _wandb_compat.SUMMARY_BEFORE_INIT
        return run.summary

    def __getattr__(self, name: str) -> Any:
        return _module_getattr(name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *__all__})

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # pickled by name, as a plain module is: a function that uses ``nbtracker`` (or
        # ``wandb``) as a global can be sent to Ray workers / other processes by cloudpickle
        import importlib

        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _Module
