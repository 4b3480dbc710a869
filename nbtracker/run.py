"""Run: one tracked experiment: lifecycle, step counter, ``log()``, summary, define_metric."""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._forked import ForkedChild
from ._run_extras import RunExtras
from ._util import (
    HOSTNAME,
    MAX_DEPTH,
    _safe_str,
    clean_text,
    process_start_ticks,
    to_jsonable,
)
from .config import Config
from .errors import LogValueWarning, StepWarning, StorageWarning, UsageError
from .segments import STEP_KEY as _STEP_KEY
from .segments import TS_KEY as _TS_KEY
from .store import Store, record_file
from .summary import MetricRule, Summary
from .writer import BACKPRESSURE_ROWS, MAX_BUFFER_ROWS, Writer

_NUMBER_TYPES = (float, int, bool)
_now = time.time
# Columns every history row has: a logged key of that name would shadow them.
RESERVED_KEYS = frozenset(("_step", "_runtime", "_timestamp"))


class Run(RunExtras, ForkedChild):
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
        role: Any = None,
    ) -> None:
        self._store = store
        self._role = role  # _shared.Role of a shared (multi-rank) run, else None
        self._worker = role is not None and not role.primary
        self._disabled = disabled
        self._rec = record
        self.config = config
        self.summary = Summary()
        self._step = start_step  # the next step (a mirror of the counter below)
        self._steps = itertools.count(start_step)
        self._pending: dict[str, Any] = {}
        self._buffer: deque[dict[Any, Any]] = deque()  # segments.buffered rows
        self._key_types: dict[str, str] = dict(key_types or {})
        self._text_keys: set[str] = set()  # keys that have held text (see Writer.text_keys)
        self.summary.kinds = self._key_types
        self._finished = False
        # log()'s lock-free path is open: not disabled, not finished, no row pending
        self._fast = not disabled
        self._writer: Writer | None = None
        self._hooks: list[Any] = []  # subscribe()d callables(event, payload)
        self._at_finish: list[Any] = []  # callables() run by finish() before the final record
        self._bad_keys_warned: set[str] = set()
        self._lock = threading.Lock()  # log() from several threads: one row at a time
        self._keys_ok: set[str] = set()  # keys checked once (text, not reserved): fast path
        self._child = False  # a copy of the run in a forked child process
        self._release: Any = None  # releases the run's writer lock (Store.lock_run)
        self._cell_error: BaseException | None = None  # a notebook cell raised (see _cells)
        self._capture: Any = None  # system metrics, console, environment (nbtracker.capture)
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
            _no_catalog if self._worker else self._save_catalog,
            first_seq=first_seq,
            text_keys=self._text_keys,
        )
        if self._worker and role.prefix_metrics:  # its rows never clobber another rank's
            self._prefixed: dict[str, str] = {}
            self.log = self._log_as_worker  # type: ignore[method-assign]

    def _log_as_worker(
        self,
        data: Mapping[str, Any],
        step: int | None = None,
        commit: bool | None = None,
        sync: bool | None = None,
    ) -> None:
        names = self._prefixed  # "loss" -> "rank_1/loss", made once per key
        try:
            data = {names[k]: v for k, v in data.items()}
        except KeyError:
            from ._shared import prefixed

            for k in data:
                if k not in names and k.__class__ is str:
                    names[k] = self._role.prefix + k
            data = prefixed(data, self._role.prefix)
        except (AttributeError, TypeError):  # not a dict, or an unhashable key:
            pass  # log() says what is wrong
        Run.log(self, data, step, commit)

    # -- live consumers (widgets, the runs workspace) ----------------------------------------
    def subscribe(self, callback: Callable[[str, Any], None]) -> Subscription:
        """Call ``callback(event, payload)`` as the run changes, on the thread that changed
        it (keep it short: append to a queue, set an event). Events: ``"row"`` with
        ``(step, row)`` for each committed row, ``"finish"`` with the final state,
        ``"error"`` with the error text of a notebook cell that raised, ``"resumed"``
        (logging went on after that). A callback that raises is ignored.

        Returns a :class:`Subscription`; ``.cancel()`` (or calling it) unsubscribes."""
        self._hooks.append(callback)
        return Subscription(self._hooks, callback)

    @property
    def history_keys(self) -> Mapping[str, str]:
        """Each logged key's type (``float``, ``int``, ``str``, ``media:image``, ...), a
        read-only view that follows the run."""
        return MappingProxyType(self._key_types)

    @property
    def record(self) -> Mapping[str, Any]:
        """The run's record (what its run folder stores: state, times, define_metric rules
        under ``metrics``, error), a read-only view that follows the run."""
        return MappingProxyType(self._rec)

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
    offline = property(
        lambda self: self._rec.get("mode") == "offline",
        doc="True when started with mode='offline'.",
    )
    resumed = property(
        lambda self: bool(self._rec.get("resumed")),
        doc="True when init() continued an existing run.",
    )

    @property
    def settings(self) -> Any:
        """The run's settings as ``wandb.Settings`` (mode, project, run_id, files_dir, ...)."""
        from ._wandb_compat import run_settings

        return run_settings(self)

    def __getattr__(self, name: str) -> Any:
        """W&B run methods nbtracker does not have yet (``run.log_artifact``, ``run.watch``,
        ``run.alert``, ...) raise ``NotSupportedError`` naming them when called."""
        if not name.startswith("_"):
            from . import _wandb_compat

            if name in _wandb_compat.UNSUPPORTED:
                return _wandb_compat.stand_in(name)
        raise AttributeError(name)

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
            if key == "tags":
                value = tuple(clean_text(str(t), "a tag") for t in value)
            elif value is not None:
                value = clean_text(str(value), key)
            self._rec[key] = value
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
        if step is None and commit is None and self._fast:
            # The hot path: this call's own row, committed at once. Lock-free and safe
            # from several threads: the row is local and its step comes from an atomic
            # counter, so two threads' rows never merge.
            bad = None
            if data.__class__ is dict and self._keys_ok.issuperset(data):
                row = data.copy()  # known names: a C-level copy, then the values' types
                for v in row.values():
                    if v.__class__ not in _NUMBER_TYPES:
                        row, bad = self._checked_row(data)
                        break
            else:
                row, bad = self._checked_row(data)
            self._commit_row(row)
        else:  # step=, commit=, a pending row, or a finished/disabled run
            if self._disabled:
                return
            with self._lock:
                bad = self._log(data, step, commit)
        if bad:
            self._warn_bad(bad)

    def _checked_row(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], list | None]:  # type: ignore[type-arg]
        """The row of one ``log()`` call, value by value: new names checked, values that are
        not plain numbers converted (or skipped: they come back in ``bad``)."""
        row: dict[str, Any] = {}
        ok = self._keys_ok
        bad = None
        try:
            for k, v in data.items():
                if v.__class__ in _NUMBER_TYPES and k in ok:
                    row[k] = v
                else:
                    bad = self._slow_item(k, v, row, bad)
        except AttributeError:
            if hasattr(data, "items"):
                raise
            with self._lock:
                self._log(data, None, None)  # raises the TypeError
        return row, bad

    def _log(self, data: Mapping[str, Any], step: Any, commit: bool | None) -> list | None:  # type: ignore[type-arg]
        if self._finished:
            msg = "This run has finished; call nbtracker.init() to start a new one before log()."
            raise UsageError(msg)
        try:
            items = data.items()
        except AttributeError:
            msg = (
                f"log() takes a dict of {{name: value}}, not {type(data).__name__}: "
                "write log({'loss': loss})."
            )
            raise TypeError(msg) from None
        self._step = next(self._steps)  # the next free step (the counter is the truth)
        self._steps = itertools.count(self._step)
        if step is not None:
            if step.__class__ is not int:
                try:
                    step = int(step)
                except (TypeError, ValueError):
                    msg = f"log(step={step!r}): step must be an int"
                    raise TypeError(msg) from None
            if step < self._step:
                warnings.warn(
                    f"log(step={step}) is lower than the run's current step {self._step}; "
                    "that row was dropped (steps must not go backwards). Log without step= "
                    "or use define_metric() with a custom step metric.",
                    StepWarning,
                    stacklevel=3,
                )
                return None
            if step > self._step:
                if self._pending:
                    self._commit()
                self._step = step
                self._steps = itertools.count(step)
        pend = self._pending
        ok = self._keys_ok
        bad = None
        for k, v in items:
            if v.__class__ in _NUMBER_TYPES and k in ok:
                pend[k] = v
            else:
                bad = self._slow_item(k, v, pend, bad)
        if commit is not False and (step is None or commit):
            self._commit()
        self._fast = not self._pending
        return bad

    def _commit(self) -> None:
        row = self._pending
        self._pending = {}
        self._commit_row(row)

    def _commit_row(self, row: dict[str, Any]) -> None:
        step = next(self._steps)  # atomic: threads never share a step
        self._step = step + 1
        if not row:
            return
        summary = self.summary  # Summary.observe(row), inlined: this runs on every log()
        summary._last.update(row)
        if summary._user or summary._rules:
            summary._observe_more(row)
        seen = dict(row) if self._hooks else None  # for subscribers, once the row is stored
        # the row itself goes to the writer, its step and time added under int keys
        # (segments.buffered): one dict, no tuple, nothing for the GC to track
        row[_STEP_KEY] = step
        row[_TS_KEY] = _now()
        buf = self._buffer
        buf.append(row)
        if len(buf) >= MAX_BUFFER_ROWS and self._writer is not None:
            wake = self._writer.wake
            if not wake.is_set():  # set() takes a lock: once per wake-up is enough
                wake.set()
            if len(buf) >= BACKPRESSURE_ROWS:  # bounded memory, bounded stall
                self._writer.relieve()
        if seen is not None:  # a sweep's hyperband hook may end the run here: row kept
            self._emit_row(step, seen)

    def _emit_row(self, step: int, row: dict[str, Any]) -> None:
        for hook in self._hooks:
            try:
                hook("row", (step, row))
            except Exception:  # noqa: BLE001 - a widget must never break training
                pass

    def _slow_item(self, k: Any, v: Any, pend: dict[str, Any], bad: list | None) -> list | None:  # type: ignore[type-arg]
        try:
            return self._slow_value(k, v, pend, bad, ())
        except Exception as exc:  # noqa: BLE001 - a hostile value never escapes log()
            return [*(bad or []), (_safe_str(k), v, exc)]

    def _slow_value(
        self,
        k: Any,
        v: Any,
        pend: dict[str, Any],
        bad: list | None,
        parents: tuple[int, ...],  # type: ignore[type-arg]
    ) -> list | None:  # type: ignore[type-arg]
        if k.__class__ is not str:
            k = str(k) if isinstance(k, str) else _safe_str(k)
        if k not in self._keys_ok:
            if k in RESERVED_KEYS:
                why = ValueError(
                    f"{k!r} is reserved for the row's own {k[1:]}; pass step= to log()"
                )
                return [*(bad or []), (k, v, why)]
            clean = clean_text(k, f"the key {k!r}")
            if clean is k and not parents:
                self._keys_ok.add(k)
            k = clean
        if v is None:
            return bad
        cls = v.__class__
        if cls is str:
            self._text_keys.add(k)  # before the row is buffered: see Writer.text_keys
            pend[k] = clean_text(v, f"the value of {k!r}")
            return bad
        if cls is int or cls is float or cls is bool:
            pend[k] = v
            return bad
        if isinstance(v, (bool, int, float, str)):
            try:
                x = _builtin(v)
            except Exception as exc:  # noqa: BLE001 - a subclass whose conversion raises
                return [*(bad or []), (k, v, exc)]
            return self._slow_value(k, x, pend, bad, parents)
        if isinstance(v, Mapping):
            if id(v) in parents:
                return [*(bad or []), (k, v, ValueError("the dict contains itself"))]
            if len(parents) >= MAX_DEPTH:
                why = ValueError(f"nested more than {MAX_DEPTH} levels deep")
                return [*(bad or []), (k, v, why)]
            inner = (*parents, id(v))
            for k2, v2 in v.items():
                name = k2 if k2.__class__ is str else _safe_str(k2)
                bad = self._slow_value(f"{k}.{name}", v2, pend, bad, inner)
            return bad
        to_history = getattr(v, "_to_history", None)
        if to_history is not None:
            try:
                kind, ref = to_history(self, k, self._step)
            except Exception as exc:  # noqa: BLE001
                return [*(bad or []), (k, v, exc)]
            self._key_types[k] = f"media:{kind}"
            self._text_keys.add(k)
            pend[k] = ref
            return bad
        shape = getattr(v, "shape", None)
        if shape is not None and hasattr(v, "tolist"):  # numpy arrays, torch tensors, jax
            try:
                size = math.prod(int(d) for d in shape)
                if size == 1:
                    return self._slow_value(k, v.item(), pend, bad, parents)
                if size > MAX_LIST_VALUES:
                    from .data_types import Histogram

                    return self._slow_value(k, Histogram(v, num_bins=32), pend, bad, parents)
                return self._log_sequence(k, v.tolist(), pend, bad)
            except Exception as exc:  # noqa: BLE001 - an array we cannot read
                return [*(bad or []), (k, v, exc)]
        item = getattr(v, "item", None)
        if item is not None:
            try:
                x = item()
            except Exception as exc:  # noqa: BLE001
                return [*(bad or []), (k, v, exc)]
            if isinstance(x, (bool, int, float, str)):
                return self._slow_value(k, x, pend, bad, parents)
        if isinstance(v, (list, tuple)):
            if v and all(getattr(x, "_nbt_media", None) == "image" for x in v):
                from .data_types.image import ImageList

                return self._slow_value(k, ImageList(v), pend, bad, parents)
            return self._log_sequence(k, list(v), pend, bad)
        return [*(bad or []), (k, v, None)]

    def _log_sequence(
        self, k: str, seq: list[Any], pend: dict[str, Any], bad: list | None
    ) -> list | None:  # type: ignore[type-arg]
        """A list, as W&B logs it: up to 32 numbers (or any texts) are kept as a list value
        (read back as a list); more numbers become a 32-bin Histogram."""
        items = [x.item() if hasattr(x, "item") and not isinstance(x, (bool, int, float)) else x
                 for x in seq]  # fmt: skip
        numbers = [x for x in items if x.__class__ in _NUMBER_TYPES]
        if len(numbers) > MAX_LIST_VALUES and all(
            x is None or x.__class__ in _NUMBER_TYPES for x in items
        ):
            from .data_types import Histogram

            return self._slow_value(k, Histogram(numbers, num_bins=32), pend, bad, ())
        if not all(_plain_json(x) for x in items):
            why = TypeError("a list of numbers, texts, None or lists of them can be logged")
            return [*(bad or []), (k, seq, why)]
        self._text_keys.add(k)
        pend[k] = json.dumps(to_jsonable(items, k, warn=False), allow_nan=True, ensure_ascii=False)
        if self._key_types.get(k) != "json":
            self._key_types[k] = "json"
        return bad

    def _warn_bad(self, bad: list) -> None:  # type: ignore[type-arg]
        parts = []
        for k, v, exc in bad:
            why = f": {_safe_str(exc)}" if exc else ""
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
        if self._worker and self._role.prefix_metrics:  # its keys are "<label>/<key>"
            name = self._role.prefix + name
            if step_metric:
                step_metric = self._role.prefix + step_metric
        rule = self.summary.add_rule(
            MetricRule(name, step_metric, summary, goal, bool(hidden), step_sync)
        )
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
        if self._worker:  # a worker of a shared run: its own record (ranks/<label>.json)
            from ._shared import worker_record

            return worker_record(self, self._role)
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
        if self._role is not None:  # the primary of a shared run: the workers' keys too
            from ._shared import merge_workers

            merge_workers(self.dir, rec)
        return rec

    def _save_record(self, rec: dict[str, Any]) -> None:
        assert self._store is not None
        if self._worker:
            from ._shared import write_worker_record

            write_worker_record(self.dir, self._role, rec)
            return
        self._store.write_record(self.dir, rec)

    def _catalog_row(self, rec: dict[str, Any]) -> dict[str, Any]:
        assert self._store is not None
        rec = dict(rec)
        rec["dir"] = str(self.dir.relative_to(self._store.root))
        try:
            rec["json_mtime"] = os.stat(record_file(self.dir)).st_mtime
        except OSError:
            rec["json_mtime"] = None
        return rec

    def _save_catalog(self, rec: dict[str, Any], timeout: float = 0.5) -> bool:
        assert self._store is not None
        del timeout  # queued: written with other runs' rows (see _catalog_queue.CATALOG_BATCH_S)
        return self._store.catalog_upsert_later(self._catalog_row(rec))

    def _set_metadata(self, meta: dict[str, Any]) -> None:
        """The environment the capture found (git, host, Python, ...), kept in the record."""
        self._rec["metadata"] = to_jsonable(meta, "metadata", warn=False)
        if self._writer is not None:  # in run.json at the next heartbeat (or the final
            self._writer.catalog_dirty = True  # record): not worth a write of its own

    def _mark_dirty(self) -> None:
        if self._writer is not None:
            self._writer.mark_dirty()

    def _config_changed(self) -> None:
        if self._worker and not getattr(self, "_config_warned", False):
            self._config_warned = True
            warnings.warn(
                f"nbtracker: config changed on {self._role.label}, a worker of the shared run "
                f"{self.project}/{self.id}; the primary (x_primary=True, rank 0) owns the "
                "run's config, so this change is not stored. Set config on rank 0.",
                StorageWarning,
                stacklevel=3,
            )
        self._mark_dirty()

    def flush(self) -> None:
        """Write buffered rows and the run record now (normally done every 0.5 s)."""
        if self._writer is not None and not self._finished:
            self._writer.flush()

    def _begin(self, release: Any = None) -> None:
        """Write the first record and start the writer; ``release`` frees the run's writer
        lock (taken by ``init()``) once the run is finished and stored."""
        assert self._store is not None and self._writer is not None
        self._release = release
        # The writer needs these; imported here, in the caller's thread, they cost init()
        # ~0.1-0.25 s once per process instead of stalling the training loop's first log()
        # calls while a background import holds the GIL (and a fork() during a background
        # import would leave the child's import lock held forever).
        import numpy  # noqa: F401

        self._writer.prepare()
        _settle_gc_once()
        rec = self._snapshot()
        self._save_record(rec)
        # the catalog hears of the run at the writer's first catalog interval, or at
        # finish: readers see it at once anyway, from its run folder
        self._writer.start()

    # -- a notebook cell that raised ------------------------------------------------------
    def _cell_failed(self, exc: BaseException) -> None:
        """The cell that was running raised (called from IPython's post_run_cell): note the
        error now (the panel shows it, its clock stops); the run becomes ``failed`` at the
        next ``init()``, ``finish()`` or kernel exit unless it is logged to again."""
        if self._finished or self._disabled:
            return
        self._cell_error = exc
        self._rec["error"] = _error_text(exc)
        self._rec["error_at"] = time.time()
        self._commit_row = self._commit_after_error  # type: ignore[method-assign]
        self._mark_dirty()
        for hook in list(self._hooks):
            try:
                hook("error", self._rec["error"])
            except Exception:  # noqa: BLE001
                pass

    def _commit_after_error(self, row: dict[str, Any]) -> None:
        """The first row after a failed cell: the user goes on, the run is running again."""
        del self._commit_row
        self._cell_error = None
        self._rec.pop("error", None)
        self._rec.pop("error_at", None)
        self._mark_dirty()
        for hook in list(self._hooks):
            try:
                hook("resumed", None)
            except Exception:  # noqa: BLE001
                pass
        self._commit_row(row)

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
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._fast = False
        from . import _state

        _state.forget(self)
        if self._disabled:
            self._rec["state"] = "finished"
            return
        if self._pending:
            with self._lock:
                self._commit()
        if self._child:  # a forked copy: store its rows, leave the run to the parent
            self._finish_child()
            return
        for fn in list(self._at_finish):  # save(policy="end"/"live") copies, watch hooks
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - never crash the user's code at the end
                warnings.warn(f"nbtracker: {exc!r} while finishing", StorageWarning, stacklevel=2)
        if self._cell_error is not None and not exit_code:  # a cell raised; nobody went on
            exit_code = _exit_code_of(self._cell_error)
        state = "failed" if exit_code else "finished"
        if self._rec.get("stopped_early"):  # hyperband stopped it (nbtracker.sweeps)
            state, exit_code = "killed", 0
            self._rec.pop("error", None)
        self._rec["state"] = state
        self._rec["exit_code"] = exit_code or 0
        self._rec["finished_at"] = time.time()
        if self._worker:  # a shared run's worker: its own files; the run's state is rank 0's
            self._finish_worker(state)
            return
        writer = self._writer
        assert writer is not None and self._store is not None
        writer.stop()
        capture = self._capture
        if capture is not None:
            capture.detach()  # sys.stdout / sys.stderr back now
        if "nbtracker.data_types.image" in sys.modules:  # the run's index of stored images
            sys.modules["nbtracker.data_types.image"].forget_run(self.dir)
        run_name = f"{self.project}/{self.id}"

        def final() -> dict[str, Any]:
            if capture is not None:
                capture.close()  # the last system rows and files, before the final record
            if self._role is not None:  # a shared run: live workers finish first
                from ._shared import wait_for_workers

                wait_for_workers(self.dir)
            try:
                writer.flush_rows(final=True)
            except Exception as exc:  # noqa: BLE001 - never crash the user's code at the end
                writer._warn("finish", f"nbtracker could not write the history ({exc!r})")
            lost = writer.pending_rows() + writer.rows_dropped
            if lost:
                warnings.warn(
                    f"nbtracker: {lost:,} rows logged to {run_name} could not be stored "
                    f"({writer.pending_rows():,} still unwritten at finish, "
                    f"{writer.rows_dropped:,} dropped earlier; see the warnings above). "
                    "Everything else is stored.",
                    StorageWarning,
                    stacklevel=2,
                )
            writer.close()
            return self._snapshot()

        def settle() -> dict[str, Any] | None:
            """Once the rows and the final record are durable: the environment snapshot;
            when it came late, the record again (before the run may be resumed)."""
            if capture is None or not capture.settle_environment():
                return None
            assert self._store is not None
            # only the metadata goes in: the record on disk may have been edited meanwhile
            rec = self._store.read_record(self.dir) or self._snapshot()
            rec["metadata"] = self._rec.get("metadata")
            try:
                self._store.write_record(self.dir, rec)
            except OSError:
                return None  # the final record stands, without the environment
            return rec

        def compact() -> None:
            writer.merge()
            if not _state.exiting:
                try:  # a cache for overlays of many long runs: never worth a failure
                    from .overlay import write_overview

                    write_overview(self.dir)
                except Exception:  # noqa: BLE001, S110
                    pass

        self._store.finalize_background(
            self.dir, final, compact, sync=_state.exiting, done=self._release, settle=settle
        )
        for hook in list(self._hooks):
            try:
                hook("finish", state)
            except Exception:  # noqa: BLE001
                pass

    def _finish_worker(self, state: str) -> None:
        """A worker of a shared run: store its last rows, system metrics and console, and
        its own final record (``ranks/<label>.json``); ``run.json`` stays the primary's."""
        writer = self._writer
        assert writer is not None
        writer.stop()
        capture = self._capture
        if capture is not None:
            capture.detach()
            capture.close()
        if "nbtracker.data_types.image" in sys.modules:
            sys.modules["nbtracker.data_types.image"].forget_run(self.dir)
        try:
            writer.flush_rows(final=True)
            writer.merge()
        except Exception as exc:  # noqa: BLE001 - never crash the user's code at the end
            writer._warn("finish", f"nbtracker could not write the history ({exc!r})")
        lost = writer.pending_rows() + writer.rows_dropped
        if lost:
            warnings.warn(
                f"nbtracker: {lost:,} rows {self._role.label} logged to "
                f"{self.project}/{self.id} could not be stored (see the warnings above).",
                StorageWarning,
                stacklevel=3,
            )
        writer.write_record(force=True)  # ranks/<label>.json, with its final state
        writer.close()
        if self._store is not None:  # rank 0 already done (or dead): fold ours in now
            from ._shared import fold_into_record

            fold_into_record(self._store, self.dir)
        if self._release is not None:
            self._release()
        for hook in list(self._hooks):
            try:
                hook("finish", state)
            except Exception:  # noqa: BLE001
                pass

    def _mark_failed(self, exc: BaseException | None = None) -> None:
        if exc is not None:
            self._rec["error"] = _error_text(exc)
        self.finish(exit_code=_exit_code_of(exc))

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


class Subscription:
    """What :meth:`Run.subscribe` returns: ``cancel()`` (or call it) to unsubscribe."""

    __slots__ = ("_callback", "_hooks")

    def __init__(self, hooks: list[Any], callback: Any) -> None:
        self._hooks, self._callback = hooks, callback

    @property
    def active(self) -> bool:
        return any(h is self._callback for h in self._hooks)

    def cancel(self) -> None:
        try:
            self._hooks.remove(self._callback)
        except ValueError:  # already gone (the run forked, or cancelled twice)
            pass

    __call__ = cancel


_gc_settled = False


def _settle_gc_once() -> None:
    """One full garbage collection after the first ``init()`` of a process has imported
    DuckDB and numpy (~17k new objects): without it, Python's next full collection falls
    in the training loop a few thousand steps later (a 20-60 ms stall measured there)."""
    global _gc_settled
    if not _gc_settled:
        _gc_settled = True
        import gc

        gc.collect()


def _no_catalog(rec: dict[str, Any]) -> bool:
    """A shared run's worker never writes the catalog (its run is the primary's)."""
    return True


def _error_text(exc: BaseException) -> str:
    """``"ZeroDivisionError: division by zero"``, as stored in the run (never raises)."""
    name = type(exc).__name__
    text = _safe_str(exc)
    return clean_text(f"{name}: {text}" if text else name, warn=False)[:2000]


def _exit_code_of(exc: BaseException | None) -> int:
    """130 for KeyboardInterrupt (the notebook's stop button, Ctrl-C), 1 otherwise."""
    return 130 if isinstance(exc, KeyboardInterrupt) else 1


MAX_LIST_VALUES = 32  # a longer numeric list or array is logged as a Histogram (as W&B)


def _plain_json(x: Any) -> bool:
    if x is None or x.__class__ in (bool, int, float, str):
        return True
    if isinstance(x, (list, tuple)):
        return all(_plain_json(y) for y in x)
    return False


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
