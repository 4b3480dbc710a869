"""Config: a run's hyperparameters, with dict and attribute access (wandb-compatible)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ._util import to_jsonable
from .errors import ConfigValueChanged, UsageError


class AttrDict(dict):  # type: ignore[type-arg]
    """A dict whose keys can also be read as attributes (nested config sections)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, AttrDict):
        return AttrDict({k: _wrap(v) for k, v in value.items()})
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _as_mapping(obj: Any) -> dict[str, Any]:
    """Accept dicts, argparse Namespaces, absl/TF flag objects and YAML file paths."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, argparse.Namespace):
        return vars(obj).copy()
    if hasattr(obj, "flag_values_dict"):  # absl.flags.FLAGS
        return dict(obj.flag_values_dict())
    if hasattr(obj, "__flags"):  # old tf.app.flags
        return {k: getattr(v, "value", v) for k, v in obj.__flags.items()}
    if isinstance(obj, (str, os.PathLike)) and str(obj).endswith((".yaml", ".yml")):
        return load_yaml(Path(obj))
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    msg = (
        f"config must be a dict, an argparse.Namespace, absl flags or a .yaml path, "
        f"not {type(obj).__name__}"
    )
    raise TypeError(msg)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a wandb-style config YAML: ``key: value`` or ``key: {value: v, desc: ...}``."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        msg = f"{path}: expected a mapping of config keys at the top level"
        raise UsageError(msg)
    out = {}
    for key, val in data.items():
        if key in ("wandb_version", "_wandb"):
            continue
        if isinstance(val, dict) and "value" in val and set(val) <= {"value", "desc"}:
            val = val["value"]
        out[str(key)] = val
    return out


def defaults_from_environment(
    argv: list[str] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """``config-defaults.yaml`` in the working directory, then ``--configs a.yaml,b.yaml``."""
    out: dict[str, Any] = {}
    default = (cwd or Path.cwd()) / "config-defaults.yaml"
    if default.is_file():
        out.update(load_yaml(default))
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        files = None
        if arg == "--configs" and i + 1 < len(argv):
            files = argv[i + 1]
        elif arg.startswith("--configs="):
            files = arg.split("=", 1)[1]
        if files:
            for f in files.split(","):
                if f.strip():
                    out.update(load_yaml(Path(f.strip())))
    return out


class Config:
    """A run's config: ``config.lr``, ``config["lr"]``, ``config.update({...})``.

    Nested dicts stay nested for access (``config.optim.lr``) and are flattened with dots
    for storage and queries (``optim.lr``). Changing a key that already has another value
    warns with :class:`ConfigValueChanged` and records the change (``allow_val_change=True``
    silences it); values that are not JSON-able are converted (numpy/torch scalars, paths)
    or stored as text, with one warning.
    """

    __slots__ = ("_data", "_changes", "_on_change", "_locked")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", {})
        object.__setattr__(self, "_changes", [])
        object.__setattr__(self, "_on_change", None)
        object.__setattr__(self, "_locked", None)  # keys a sweep set: {key: value}
        if data:
            self.update(data, allow_val_change=True)

    # -- writing ---------------------------------------------------------------------------
    def _set(self, key: str, value: Any, allow_val_change: bool) -> None:
        if not isinstance(key, str):
            key = str(key)
        value = _wrap(to_jsonable(value, f"config.{key}"))
        if self._locked is not None and key in self._locked:
            value = _locked_value(key, value, self._locked[key])
        old = self._data.get(key, _MISSING)
        if old is not _MISSING and old != value:
            self._changes.append(
                {"key": key, "old": _plain(old), "new": _plain(value), "time": time.time()}
            )
            if not allow_val_change:
                warnings.warn(
                    f"config[{key!r}] changed from {_plain(old)!r} to {_plain(value)!r}; the "
                    "change is recorded in the run. Pass allow_val_change=True to update "
                    "silently.",
                    ConfigValueChanged,
                    stacklevel=4,
                )
        self._data[key] = value

    def update(self, d: Any = None, allow_val_change: bool = False, **kwargs: Any) -> None:
        """Set many keys; ``d`` may be a dict, argparse Namespace, absl flags or YAML path."""
        items = _as_mapping(d)
        items.update(kwargs)
        for k, v in items.items():
            self._set(k, v, allow_val_change)
        self._changed()

    def lock(self, values: Mapping[str, Any]) -> None:
        """Set ``values`` (a sweep's parameters) and keep them: a later assignment of
        another value warns and is ignored, as W&B does for a sweep's config."""
        object.__setattr__(self, "_locked", None)
        self.update(values, allow_val_change=True)
        object.__setattr__(
            self, "_locked", {k: _wrap(v) for k, v in self._data.items() if k in values}
        )

    def setdefaults(self, d: Any = None, **kwargs: Any) -> None:
        """Set only the keys that are not set yet."""
        items = _as_mapping(d)
        items.update(kwargs)
        for k, v in items.items():
            if str(k) not in self._data:
                self._set(k, v, True)
        self._changed()

    setdefault_many = setdefaults

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self._data:
            self._set(key, default, True)
            self._changed()
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._set(key, value, False)
        self._changed()

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_"):
            object.__setattr__(self, key, value)
        else:
            self[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._changed()

    def _changed(self) -> None:
        cb: Callable[[], None] | None = self._on_change
        if cb is not None:
            cb()

    # -- reading ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") or key in Config.__slots__:
            raise AttributeError(key)
        try:
            return self._data[key]
        except KeyError:
            msg = f"config has no key {key!r}; set it with config.{key} = ... or config.update()"
            raise AttributeError(msg) from None

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def keys(self):  # type: ignore[no-untyped-def]
        return self._data.keys()

    def values(self):  # type: ignore[no-untyped-def]
        return self._data.values()

    def items(self):  # type: ignore[no-untyped-def]
        return self._data.items()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def as_dict(self) -> dict[str, Any]:
        """A plain (nested) dict copy."""
        return _plain(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Config({self.as_dict()!r})"

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._data]


_MISSING = object()


def _locked_value(key: str, value: Any, locked: Any) -> Any:
    """The value a locked (swept) key keeps: the sweep's, merged into a nested dict."""
    if isinstance(locked, dict) and isinstance(value, dict):
        merged = dict(value)
        conflict = any(k in value and value[k] != v for k, v in locked.items())
        merged.update(locked)
        value, same = _wrap(merged), not conflict
    else:
        same = value == locked
        value = locked
    if not same:
        warnings.warn(
            f"config[{key!r}] is set by the sweep ({_plain(locked)!r}); the new value was ignored.",
            ConfigValueChanged,
            stacklevel=5,
        )
    return value
