"""Run: one tracked experiment: lifecycle, step counter, ``log()``, summary, define_metric."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._util import HOSTNAME, process_start_ticks, to_jsonable
from .config import Config
from .errors import LogValueWarning, StepWarning, UsageError
from .store import Store
from .summary import MetricRule, Summary
from .writer import BACKPRESSURE_ROWS, MAX_BUFFER_ROWS, Writer

_NUMBER_TYPES = (float, int, bool)


class Run:
    """A run, as returned by :func:`nbtracker.init`.

    Attributes
    ----------
    id, name, project, entity, notes, tags, group, job_type : run metadata
    config : Config
    summary : Summary
    dir : pathlib.Path
        The run's folder under the store root.
    step : int
        The step the next ``log()`` call writes to.
    state : str
        ``running``, ``finished``, ``failed`` or ``crashed``.
    """

    def __init__(
        self,
        store: Store | None,
        record: dict[str, Any],
        config: Config,
        *,
        disabled: bool = False,
        start_step: int = 0,
        first_seq: int = 1,
        key_types: dict[str, str] | None = None,
    ) -> None:
        self._store = store
        self._disabled = disabled
        self._rec = record
        self.config = config
        self.summary = Summary()
        self._step = start_step
        self._pending: dict[str, Any] = {}
        self._buffer: deque[tuple[int, float, dict[str, Any]]] = deque()
        self._key_types: dict[str, str] = dict(key_types or {})
        self._finished = False
        self._writer: Writer | None = None
        self._hooks: list[Any] = []  # callables(run, event, payload) for live widgets
        self._bad_keys_warned: set[str] = set()
        if disabled or store is None:
            self.dir = Path(os.devnull)
            return
        self.dir = store.run_dir(record["project"], record["id"])
        config._on_change = self._config_changed
        self._writer = Writer(
            store.history_dir(self.dir),
            self._buffer,
            self._key_types,
            self._snapshot,
            self._save_record,
            self._save_catalog,
            first_seq=first_seq,
        )

    # -- metadata --------------------------------------------------------------------------
    id = property(lambda self: self._rec["id"])
    project = property(lambda self: self._rec["project"])
    entity = property(lambda self: self._rec.get("entity"))
    group = property(lambda self: self._rec.get("group"))
    job_type = property(lambda self: self._rec.get("job_type"))
    state = property(lambda self: self._rec.get("state"))
    start_time = property(lambda self: self._rec.get("created_at"))
    step = property(lambda self: self._step)
    disabled = property(lambda self: self._disabled)

    @property
    def path(self) -> str:
        """``entity/project/run_id``, as accepted by ``Api().run()``."""
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def url(self) -> str:
        """A ``file://`` URL of the run folder (there is no server)."""
        return self.dir.as_uri() if not self._disabled else ""

    def _meta_prop(key: str, doc: str):  # type: ignore[no-untyped-def]  # noqa: N805
        def get(self: Run) -> Any:
            value = self._rec.get(key)
            return tuple(value or ()) if key == "tags" else value

        def set_(self: Run, value: Any) -> None:
            self._rec[key] = tuple(value) if key == "tags" else value
            self._mark_dirty()

        return property(get, set_, doc=doc)

    name = _meta_prop("name", "The run's display name (settable).")
    notes = _meta_prop("notes", "Free-text notes (settable).")
    tags = _meta_prop("tags", "Tags, a tuple of strings (settable).")
    del _meta_prop

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} ({self.name}) {self.state}>"

    # -- logging (hot path) ----------------------------------------------------------------
    def log(
        self,
        data: Mapping[str, Any],
        step: int | None = None,
        commit: bool | None = None,
        sync: bool | None = None,
    ) -> None:
        """Add a row of metrics to the history and update the summary.

        Parameters
        ----------
        data : dict
            ``{name: value}``. Numbers (Python, numpy, torch scalars), bools, NaN/inf and
            strings are kept; ``None`` is skipped; nested dicts are flattened to
            ``"outer.inner"``; ``Image``, ``Table`` and ``Histogram`` are stored as media.
        step : int, optional
            Explicit step. It may not go backwards: such a row is dropped with a warning.
        commit : bool, optional
            ``False`` merges ``data`` into the current step without advancing it.
        sync : bool, optional
            Accepted for wandb compatibility; ignored.

        Warns
        -----
        LogValueWarning
            A value could not be logged (an unsupported type, or media that failed to
            convert): it is skipped, the other keys of the row are logged and the training
            loop goes on.
        """
        if self._disabled:
            return
        if self._finished:
            msg = "This run has finished; call nbtracker.init() to start a new one before log()."
            raise UsageError(msg)
        if step is not None:
            if step.__class__ is not int:
                step = int(step)
            if step < self._step:
                warnings.warn(
                    f"log(step={step}) is lower than the run's current step {self._step}; "
                    "that row was dropped (steps must not go backwards). Log without step= "
                    "or use define_metric() with a custom step metric.",
                    StepWarning,
                    stacklevel=2,
                )
                return
            if step > self._step:
                if self._pending:
                    self._commit()
                self._step = step
        pend = self._pending
        bad = None
        for k, v in data.items():
            if v.__class__ in _NUMBER_TYPES and k.__class__ is str:
                pend[k] = v
            else:
                bad = self._slow_value(k, v, pend, bad)
        if commit is not False and (step is None or commit):
            self._commit()
        if bad:
            self._warn_bad(bad)

    def _commit(self) -> None:
        row = self._pending
        self._pending = {}
        step = self._step
        self._step = step + 1
        if not row:
            return
        self._buffer.append((step, time.time(), row))
        self.summary.observe(row)
        if len(self._buffer) >= MAX_BUFFER_ROWS and self._writer is not None:
            self._writer.wake.set()
            if len(self._buffer) >= BACKPRESSURE_ROWS:  # bounded memory: write it ourselves
                self._writer.flush_rows()
        for hook in self._hooks:
            try:
                hook(self, "row", (step, row))
            except Exception:  # noqa: BLE001 - a widget must never break training
                pass

    def _slow_value(self, k: Any, v: Any, pend: dict[str, Any], bad: list | None) -> list | None:  # type: ignore[type-arg]
        if not isinstance(k, str):
            k = str(k)
        if v is None:
            return bad
        if isinstance(v, (bool, int, float, str)):
            pend[k] = v if v.__class__ in (bool, int, float, str) else _builtin(v)
            return bad
        if isinstance(v, Mapping):
            for k2, v2 in v.items():
                bad = self._slow_value(f"{k}.{k2}", v2, pend, bad)
            return bad
        to_history = getattr(v, "_to_history", None)
        if to_history is not None:
            try:
                kind, ref = to_history(self, k, self._step)
            except Exception as exc:  # noqa: BLE001
                return [*(bad or []), (k, v, exc)]
            self._key_types[k] = f"media:{kind}"
            pend[k] = ref
            return bad
        item = getattr(v, "item", None)
        if item is not None:
            try:
                x = item()
            except Exception as exc:  # noqa: BLE001 - e.g. a tensor with many elements
                return [*(bad or []), (k, v, exc)]
            if isinstance(x, (bool, int, float)):
                pend[k] = x
                return bad
        if isinstance(v, (list, tuple)) and v and all(
            getattr(x, "_nbt_media", None) == "image" for x in v
        ):
            from .data_types.image import ImageList

            return self._slow_value(k, ImageList(v), pend, bad)
        if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v):
            from .data_types import Histogram

            return self._slow_value(k, Histogram(v), pend, bad)
        return [*(bad or []), (k, v, None)]

    def _warn_bad(self, bad: list) -> None:  # type: ignore[type-arg]
        parts = []
        for k, v, exc in bad:
            why = f": {exc}" if exc else ""
            parts.append(f"{k!r} ({type(v).__module__}.{type(v).__qualname__}{why})")
        msg = (
            f"could not log {', '.join(parts)}; skipped. Log numbers, bools, strings, nested "
            "dicts, or nbtracker.Image / Table / Histogram. The other keys of this row were "
            "logged and your code goes on."
        )
        warnings.warn(msg, LogValueWarning, stacklevel=3)

    # -- define_metric ---------------------------------------------------------------------
    def define_metric(
        self,
        name: str,
        step_metric: str | None = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> MetricRule:
        """Say how a metric (or a glob such as ``"val/*"``) is summarised and plotted.

        Parameters
        ----------
        name : str
            A key or a glob (``*``, ``?``).
        step_metric : str, optional
            The key to use as this metric's x axis in charts.
        summary : {"min", "max", "mean", "first", "last", "best", "none"}, optional
            What ``run.summary[name]`` holds; several may be joined with commas.
        goal : {"minimize", "maximize"}, optional
            Direction for ``summary="best"``.
        hidden : bool, optional
            Hide the metric from panels.
        step_sync, overwrite
            Accepted for wandb compatibility; ignored.
        """
        rule = MetricRule(name, step_metric, summary, goal, bool(hidden), step_sync)
        self.summary.add_rule(rule)
        self._rec.setdefault("metrics", [])
        self._rec["metrics"] = [m for m in self._rec["metrics"] if m["name"] != name]
        self._rec["metrics"].append(rule.to_json())
        self._mark_dirty()
        return rule

    # -- persistence -----------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        """The run record as stored in run.json (called from the writer thread too)."""
        for attempt in range(5):
            try:
                return self._snapshot_once()
            except RuntimeError:  # a dict changed size under us (training thread): retry
                if attempt == 4:
                    raise
        raise AssertionError  # pragma: no cover

    def _snapshot_once(self) -> dict[str, Any]:
        rec = dict(self._rec)
        now = time.time()
        rec["heartbeat_at"] = now
        rec["updated_at"] = now
        rec["config"] = self.config.as_dict()
        rec["config_changes"] = list(self.config._changes)
        summary = self.summary.as_dict()
        if self._step or summary:
            summary.setdefault("_step", self._step - 1 if self._step else 0)
            summary.setdefault("_runtime", now - float(rec["created_at"]))
        rec["summary"] = summary
        rec["last_step"] = self._step - 1
        rec["history_keys"] = dict(self._key_types)
        rec["tags"] = list(rec.get("tags") or [])
        return rec

    def _save_record(self, rec: dict[str, Any]) -> None:
        assert self._store is not None
        self._store.write_record(self.dir, rec)

    def _catalog_row(self, rec: dict[str, Any]) -> dict[str, Any]:
        assert self._store is not None
        rec = dict(rec)
        rec["dir"] = str(self.dir.relative_to(self._store.root))
        try:
            rec["json_mtime"] = os.stat(self.dir / "run.json").st_mtime
        except OSError:
            rec["json_mtime"] = None
        return rec

    def _save_catalog(self, rec: dict[str, Any], timeout: float = 0.5) -> bool:
        assert self._store is not None
        return self._store.catalog_upsert([self._catalog_row(rec)], timeout=timeout)

    def _mark_dirty(self) -> None:
        if self._writer is not None:
            self._writer.mark_dirty()

    def _config_changed(self) -> None:
        self._mark_dirty()

    def flush(self) -> None:
        """Write buffered rows and the run record now (normally done every 0.5 s)."""
        if self._writer is not None and not self._finished:
            self._writer.flush()

    def _begin(self) -> None:
        assert self._store is not None and self._writer is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        rec = self._snapshot()
        self._save_record(rec)
        # the catalog hears of the run at the writer's first catalog interval, or at
        # finish: readers see it at once anyway, from its run folder
        self._writer.start()

    # -- lifecycle -------------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Flush everything, compact the history and mark the run finished (idempotent).

        Parameters
        ----------
        exit_code : int, optional
            Non-zero marks the run ``failed``.
        quiet : bool, optional
            Accepted for wandb compatibility; ignored.
        """
        if self._finished:
            return
        self._finished = True
        from . import _state

        _state.forget(self)
        if self._disabled:
            self._rec["state"] = "finished"
            return
        if self._pending:
            self._commit()
        state = "failed" if exit_code else "finished"
        self._rec["state"] = state
        self._rec["exit_code"] = exit_code or 0
        self._rec["finished_at"] = time.time()
        writer = self._writer
        assert writer is not None and self._store is not None
        writer.stop()
        if "nbtracker.data_types.image" in sys.modules:  # the run's index of stored images
            sys.modules["nbtracker.data_types.image"].forget_run(self.dir)

        def final() -> dict[str, Any]:
            try:
                writer.flush_rows()
            except Exception as exc:  # noqa: BLE001 - never crash the user's code at the end
                writer._warn("finish", f"nbtracker could not write the history ({exc!r})")
            writer.close()
            return self._snapshot()

        self._store.finalize_background(self.dir, final, writer.merge, sync=_state.exiting)
        for hook in list(self._hooks):
            try:
                hook(self, "finish", state)
            except Exception:  # noqa: BLE001
                pass

    def _mark_failed(self, exc: BaseException | None = None) -> None:
        if exc is not None:
            self._rec["error"] = f"{type(exc).__name__}: {exc}"
        self.finish(exit_code=1)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc is not None:
            self._mark_failed(exc)
        else:
            self.finish()
        return False

    def chart(self, key: str, **kwargs: Any) -> Any:
        """The Altair chart of one metric, as the panel draws it (down-sampled, min/max kept).

        Keyword arguments go to :func:`nbtracker.charts.run_chart` (``x``, ``smoothing``,
        ``log_y``, ``max_points``). Change it, display it or ``.save("loss.png")``.
        """
        from .charts import run_chart

        return run_chart(self, key, **kwargs)

    def table(self, key: str, step: int | None = None) -> Any:
        """The table widget for a logged ``Table`` (the latest version, or ``step``): sort,
        filter, search and page through it in the notebook. For a DataFrame use
        ``nbtracker.Api().run(run.path).table(key)``."""
        from .display import table_view

        return table_view(self, key, step)

    # -- wandb conveniences ----------------------------------------------------------------
    def mark_preempting(self) -> None:
        """Accepted for wandb compatibility; does nothing."""

    def log_code(self, *args: Any, **kwargs: Any) -> None:
        """Accepted for wandb compatibility; ignored."""


def _builtin(v: Any) -> Any:
    """Subclasses of bool/int/float/str (numpy.float64, IntEnum) to the plain type."""
    for t in (bool, int, float, str):
        if isinstance(v, t):
            return t(v)
    return v


def new_record(
    *, run_id: str, project: str, entity: str, name: str, notes: str | None,
    tags: list[str], group: str | None, job_type: str | None, mode: str,
) -> dict[str, Any]:  # fmt: skip
    now = time.time()
    return {
        "schema": 1, "id": run_id, "project": project, "entity": entity, "name": name,
        "notes": notes, "tags": tags, "group": group, "job_type": job_type, "mode": mode,
        "state": "running", "created_at": now, "updated_at": now, "heartbeat_at": now,
        "finished_at": None, "exit_code": None, "host": HOSTNAME, "pid": os.getpid(),
        "pid_start": process_start_ticks(), "metrics": [], "resumed": 0,
    }  # fmt: skip


def finite_or_none(x: Any) -> Any:
    return x if not isinstance(x, float) or math.isfinite(x) else None


__all__ = ["Run", "new_record", "to_jsonable"]
