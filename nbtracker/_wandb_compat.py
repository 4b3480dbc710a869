"""The rest of W&B's module surface: ``login``, ``Settings``, ``termlog``/``termwarn``/
``termerror``, ``setup``/``teardown``, ``summary`` before ``init()``, and stand-ins for the
W&B API nbtracker does not have yet (using one raises :class:`NotSupportedError`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

from . import _paths, _state
from .errors import UsageError

if TYPE_CHECKING:
    from .run import Run


class NotSupportedError(UsageError, NotImplementedError):
    """A W&B API that nbtracker does not have yet was used (``wandb.watch``, ``wandb.Artifact``,
    ...). It is a ``NotImplementedError``: catch that to skip the call in code that runs on
    both."""


# W&B names nbtracker does not have yet -> where it is tracked (shown in the message).
UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(
        ["ArtifactTTL", "link_model", "controller", "plot", "plot_table",
         "Video", "Audio", "Object3D", "Molecule", "Plotly", "Graph", "box3d", "Classes", "EvalTable", "JoinedTable", "tensorboard", "attach", "require"],
        "",
    ),
}  # fmt: skip


def unsupported_message(name: str) -> str:
    note = UNSUPPORTED.get(name.split(".", 1)[0])
    return (
        f"nbtracker does not support wandb.{name} yet{f' ({note})' if note else ''}. Remove "
        "the call, or catch NotImplementedError around it; the README's 'W&B compatibility' "
        "section lists what works."
    )


class _StandInMeta(type):
    """Stand-ins are classes, so ``isinstance(x, wandb.Video)`` works (False); calling one
    raises, and its attributes (``wandb.plot.line``, ``wandb.AlertLevel.WARN``) are
    stand-ins too."""

    _nbt_name: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError(unsupported_message(cls._nbt_name))

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return stand_in(f"{cls._nbt_name}.{attr}")

    def __repr__(cls) -> str:
        return f"<nbtracker stand-in for wandb.{cls._nbt_name}: not supported yet>"


_stand_ins: dict[str, type] = {}


def stand_in(name: str) -> type:
    """The stand-in for ``wandb.<name>`` (one per name, so ``wandb.Video is wandb.Video``)."""
    cls = _stand_ins.get(name)
    if cls is None:
        doc = f"wandb.{name} is not supported by nbtracker yet; using it raises NotSupportedError."
        attrs = {"_nbt_name": name, "__doc__": doc, "__module__": "nbtracker"}
        cls = _stand_ins[name] = _StandInMeta(name.rsplit(".", 1)[-1], (), attrs)
    return cls


# -- messages ------------------------------------------------------------------------------
_printed: set[str] = set()


def silent() -> bool:
    """``NBTRACKER_SILENT`` / ``WANDB_SILENT``: no messages printed by nbtracker (warnings
    still go through :mod:`warnings`)."""
    return _paths.env_flag("SILENT")


def _term(string: str, label: str, newline: bool, repeat: bool, prefix: bool) -> None:
    if silent():
        return
    if not repeat:
        if string in _printed:
            return
        _printed.add(string)
    if prefix:
        string = "\n".join(f"nbtracker: {label}{line}" for line in string.split("\n"))
    sys.stderr.write(string + ("\n" if newline else ""))
    sys.stderr.flush()


def termlog(
    string: str = "", newline: bool = True, repeat: bool = True, prefix: bool = True
) -> None:
    """Print a message to stderr with an ``nbtracker:`` prefix, as ``wandb.termlog``.

    Nothing is printed with ``WANDB_SILENT=true`` (or ``NBTRACKER_SILENT``); ``repeat=False``
    skips a message already printed.
    """
    _term(string, "", newline, repeat, prefix)


def termwarn(string: str, newline: bool = True, repeat: bool = True, prefix: bool = True) -> None:
    """Print a warning to stderr (``nbtracker: WARNING ...``), as ``wandb.termwarn``; see
    :func:`termlog`."""
    _term(string, "WARNING ", newline, repeat, prefix)


def termerror(string: str, newline: bool = True, repeat: bool = True, prefix: bool = True) -> None:
    """Print an error message to stderr (``nbtracker: ERROR ...``), as ``wandb.termerror``;
    see :func:`termlog`."""
    _term(string, "ERROR ", newline, repeat, prefix)


def login(key: str | None = None, relogin: bool | None = None, host: str | None = None,
          **ignored: Any) -> bool:  # fmt: skip
    """Accepted for wandb compatibility: there is no account and no server, so there is
    nothing to log in to. Says so once (unless ``WANDB_SILENT``) and returns True.

    Returns
    -------
    bool
        Always True.
    """
    termlog(
        f"no login needed: runs are stored locally in {_paths.resolve_root()} "
        "(no account, no server).",
        repeat=False,
    )
    return True


def setup(settings: Any = None, **ignored: Any) -> None:
    """Accepted for wandb compatibility (W&B starts its service process here); does nothing."""


def teardown(exit_code: int | None = None) -> None:
    """Finish every active run, as ``wandb.teardown``.

    Parameters
    ----------
    exit_code : int, optional
        Non-zero marks the runs ``failed``.
    """
    for run in list(_state.active):
        run.finish(exit_code=exit_code)


def mark_preempting() -> None:
    """Accepted for wandb compatibility; does nothing."""


# -- Settings ------------------------------------------------------------------------------
class Settings:
    """W&B's ``wandb.Settings``: any keyword is accepted and read back as an attribute.

    ``init(settings=...)`` uses its capture settings (``x_disable_stats``,
    ``x_stats_sampling_interval``, ``console``, ``disable_git``, ``save_code``, ...) and
    ignores the rest (pass ``mode=``, ``dir=`` and so on to ``init`` itself), except
    ``mode="shared"``, ``x_primary``, ``x_label``: a multi-rank run (README). ``run.settings`` describes a run with the same names as W&B:
    ``mode``, ``project``, ``entity``, ``run_id``, ``run_name``, ``run_group``,
    ``run_job_type``, ``run_notes``, ``run_tags``, ``root_dir``, ``files_dir``,
    ``resumed``, ``silent``, ``console``. Unset names read as W&B's defaults for the ones
    above; any other unset name raises AttributeError.

    Examples
    --------
    >>> s = Settings(console="off", x_disable_stats=True)
    >>> (s.console, s.x_disable_stats, s.mode)
    ('off', True, 'online')
    """

    _DEFAULTS: dict[str, Any] = {
        "mode": "online", "project": None, "entity": None, "run_id": None, "run_name": None,
        "run_group": None, "run_job_type": None, "run_notes": None, "run_tags": (),
        "root_dir": None, "files_dir": None, "resume": None, "resumed": False,
        "silent": False, "console": "auto",
    }  # fmt: skip

    def __init__(self, **settings: Any) -> None:
        self.__dict__.update(settings)

    def __getattr__(self, name: str) -> Any:
        if name in Settings._DEFAULTS:
            return Settings._DEFAULTS[name]
        msg = f"Settings has no {name!r}"
        raise AttributeError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, defaults included."""
        return {**Settings._DEFAULTS, **self.__dict__}

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


def run_settings(run: Run) -> Settings:
    """The :class:`Settings` that describe ``run`` (what ``run.settings`` returns)."""
    rec = run._rec
    store = getattr(run, "_store", None)
    return Settings(
        mode="disabled" if run.disabled else rec.get("mode", "online"),
        project=rec.get("project"),
        entity=rec.get("entity"),
        run_id=rec.get("id"),
        run_name=rec.get("name"),
        run_group=rec.get("group"),
        run_job_type=rec.get("job_type"),
        run_notes=rec.get("notes"),
        run_tags=tuple(rec.get("tags") or ()),
        root_dir=None if store is None else str(store.root),
        files_dir=None if store is None else str(run.dir),
        resumed=bool(rec.get("resumed")),
        silent=silent(),
        console=_console_of(run),
    )


def _console_of(run: Run) -> str:
    cap = getattr(run, "_capture", None)
    if cap is not None:
        return str(cap.settings.console)
    return "off" if run.disabled else (_paths.env("CONSOLE") or "auto")


# -- summary before init() -----------------------------------------------------------------
class SummaryBeforeInit:
    """``nbtracker.summary`` before ``init()``: an empty summary to look at (``len``, ``in``,
    ``get``, ``keys``), so probes never fail; reading a key or writing raises UsageError, as
    W&B raises on any use."""

    def __getitem__(self, key: Any) -> Any:
        _no_run(f"reading nbtracker.summary[{key!r}]")

    def __setitem__(self, key: Any, value: Any) -> None:
        _no_run(f"setting nbtracker.summary[{key!r}]")

    def __delitem__(self, key: Any) -> None:
        _no_run(f"deleting nbtracker.summary[{key!r}]")

    def update(self, *args: Any, **kwargs: Any) -> None:
        _no_run("nbtracker.summary.update()")

    def get(self, key: Any, default: Any = None) -> Any:
        return default

    def keys(self) -> list[Any]:
        return []

    def values(self) -> list[Any]:
        return []

    def items(self) -> list[Any]:
        return []

    def as_dict(self) -> dict[str, Any]:
        return {}

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Any:
        return iter(())

    def __contains__(self, key: Any) -> bool:
        return False

    def __repr__(self) -> str:
        return "<nbtracker.summary: no run yet; call nbtracker.init()>"


def _no_run(what: str) -> NoReturn:
    msg = f"Call nbtracker.init() before {what} (there is no run yet)."
    raise UsageError(msg)


SUMMARY_BEFORE_INIT = SummaryBeforeInit()
