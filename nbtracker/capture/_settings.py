"""What the capture does for one run: W&B's settings and environment variables, resolved."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .. import _paths
from ..errors import UsageError

CONSOLE_MODES = ("auto", "off", "wrap", "redirect", "wrap_raw", "wrap_emu")
DEFAULT_INTERVAL_S = 15.0  # W&B's x_stats_sampling_interval
FIRST_SAMPLE_S = 1.0  # the first sample comes this soon, so short runs have some
DEFAULT_CONSOLE_MAX_BYTES = 32 << 20  # output.log and its one older part together


@dataclass
class CaptureSettings:
    """The resolved switches (see :func:`resolve`)."""

    stats: bool = True
    interval: float = DEFAULT_INTERVAL_S
    disk_paths: tuple[str, ...] = ("/",)
    console: str = "auto"
    console_max_bytes: int = DEFAULT_CONSOLE_MAX_BYTES
    meta: bool = True
    git: bool = True
    requirements: bool = True
    save_code: bool = False

    @property
    def console_on(self) -> bool:
        return self.console != "off"


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _setting(settings: Any, *names: str) -> Any:
    """The first of ``names`` given in ``init(settings=...)`` (a ``Settings`` or a dict)."""
    if settings is None:
        return None
    given = settings if isinstance(settings, dict) else getattr(settings, "__dict__", {})
    for name in names:
        if given.get(name) is not None:
            return given[name]
    return None


def _env(name: str) -> str | None:
    """``NBTRACKER_<NAME>`` / ``WANDB_<NAME>``; for a private W&B setting ``x_foo`` also
    ``WANDB__FOO`` (W&B's own spelling of private settings in the environment)."""
    value = _paths.env(name.upper())
    if value is None and name.startswith("x_"):
        for prefix in ("NBTRACKER__", "WANDB__"):
            value = os.environ.get(prefix + name[2:].upper()) or value
    return value


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    msg = f"{what}={value!r}: use true or false"
    raise UsageError(msg)


def _pick(settings: Any, name: str, *aliases: str) -> tuple[Any, str]:
    """``(value, where it came from)``: the settings argument wins over the environment."""
    value = _setting(settings, name, *aliases)
    if value is not None:
        return value, f"settings {name}"
    value = _env(name)
    return value, f"the environment variable for {name}"


def resolve(settings: Any = None, save_code: Any = None) -> CaptureSettings:
    """The capture settings of a new run, from ``init(settings=..., save_code=...)`` and the
    environment (W&B's names: ``x_disable_stats``, ``x_stats_sampling_interval``,
    ``x_stats_disk_paths``, ``console``, ``x_disable_meta``, ``disable_git``,
    ``x_save_requirements``, ``save_code``, ``disable_code``; nbtracker's own
    ``x_console_max_bytes``).

    Raises
    ------
    UsageError
        A value that cannot be used (an interval under 0.1 s, an unknown console mode).
    """
    cs = CaptureSettings()
    value, where = _pick(settings, "x_disable_stats", "_disable_stats")
    if value is not None:
        cs.stats = not _flag(value, where)
    value, where = _pick(settings, "x_stats_sampling_interval", "_stats_sampling_interval")
    if value is not None:
        try:
            cs.interval = float(value)
        except (TypeError, ValueError):
            cs.interval = float("nan")
        if not cs.interval >= 0.1:  # NaN too
            msg = f"{where}={value!r}: the sampling interval is a number of seconds, at least 0.1"
            raise UsageError(msg)
    value, where = _pick(settings, "x_stats_disk_paths", "_stats_disk_paths")
    if value is not None:
        paths = value.split(",") if isinstance(value, str) else list(value)
        cs.disk_paths = tuple(str(p).strip() for p in paths if str(p).strip())
    value, where = _pick(settings, "console")
    if value is not None:
        mode = str(value).strip().lower()
        if mode not in CONSOLE_MODES:
            msg = f"{where}={value!r}: use one of {', '.join(CONSOLE_MODES)}"
            raise UsageError(msg)
        cs.console = mode
    value, where = _pick(settings, "x_console_max_bytes")
    if value is not None:
        try:
            cs.console_max_bytes = max(4096, int(value))
        except (TypeError, ValueError):
            msg = f"{where}={value!r}: a number of bytes"
            raise UsageError(msg) from None
    value, where = _pick(settings, "x_disable_meta", "_disable_meta")
    if value is not None:
        cs.meta = not _flag(value, where)
    value, where = _pick(settings, "disable_git")
    if value is not None:
        cs.git = not _flag(value, where)
    value, where = _pick(settings, "x_save_requirements", "_save_requirements")
    if value is not None:
        cs.requirements = _flag(value, where)
    if save_code is None:
        save_code, where = _pick(settings, "save_code")
    else:
        where = "init(save_code=...)"
    if save_code is not None:
        cs.save_code = _flag(save_code, where)
    value, where = _pick(settings, "disable_code")
    if value is not None and _flag(value, where):
        cs.save_code = False
    return cs
