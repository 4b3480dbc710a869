"""Workspace: many runs compared in the cell (runs table, overlay charts, parallel
coordinates, scatter, parameter importance), live while runs are being logged.

The data questions are answered by :mod:`nbtracker.workspace_query` (DuckDB over one row
per run) and :mod:`nbtracker.feed` (down-sampled series; finished runs read in one scan,
runs of this process fed through ``Run.subscribe``, runs of other processes followed from
their folders). This widget only keeps the browser in step:

- state the browser changes (``filter``, ``sort``, ``group``, ``visible``, ...) is traits;
  the kernel answers with the page of ``rows``, ``groups``, ``points``;
- overlay series go as messages ``{"type": "series", "seq", "runs": {run_id: {key:
  {"from", "s", "t", "v"}}}}`` (replace the points with step >= from), and as a synced
  snapshot ``_series`` every few seconds, so a view opened later misses nothing.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

from ..feed import Feed, FolderReader, hidden_keys
from ..overlay import envelopes
from ..sampling import Envelope, columns
from ..store import Store, process_gone
from ..workspace_query import FilterError, RunsTable, importance, run_color, run_colors
from . import _lib

DEFAULT_VISIBLE = 10  # runs drawn by default (the newest); the table lists them all
BUCKETS = 256  # per run and metric in the overlay, up to 16 runs drawn
MIN_BUCKETS = 64  # ... fewer per run when more are drawn (100 runs x 4 metrics: ~45k points)
GROUP_RUNS = 200  # runs read to draw one group's band
PUSH_S = 0.5
REFRESH_S = 2.0
MAX_POINTS_ROWS = 2000  # runs sent for parallel coordinates and scatter


class _Series:
    """One run's down-sampled metrics and where new points come from."""

    def __init__(self, rid: str) -> None:
        self.rid = rid
        self.feed = Feed(BUCKETS)
        self.run: Any = None  # a live Run of this process
        self.sub: Any = None
        self.inbox: deque[tuple[int, float, dict[str, Any]]] = deque()
        self.reader: FolderReader | None = None  # a run another process writes
        self.t0 = 0.0
        self.loaded = False

    def close(self) -> None:
        if self.sub is not None:
            self.sub.cancel()
            self.sub = None


def _strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _sort_spec(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], bool)
        for x in v
    )


# What a project's workspace remembers between sessions (Store.read_view / write_view), and
# the shape each saved value must have to be taken back (a hand-edited or foreign file never
# breaks the workspace: what does not fit is left at its default).
_VIEW_CHECKS: dict[str, Callable[[Any], bool]] = {
    "filter": lambda v: isinstance(v, str),
    "search": lambda v: isinstance(v, str),
    "sort": _sort_spec,
    "group": _strs,
    "shown": _strs,
    "pinned": _strs,
    "smoothing": lambda v: isinstance(v, (int, float)) and 0 <= v <= 0.99,
    "x_axis": lambda v: v in ("step", "time"),
    "log_y": lambda v: isinstance(v, bool),
    "chart_opts": lambda v: isinstance(v, dict) and all(isinstance(o, dict) for o in v.values()),
}
VIEW_TRAITS = tuple(_VIEW_CHECKS)


def _valid_view(saved: dict[str, Any]) -> dict[str, Any]:
    """The parts of a saved view that have the right shape."""
    return {k: saved[k] for k, ok in _VIEW_CHECKS.items() if k in saved and ok(saved[k])}


class Workspace(anywidget.AnyWidget):
    """The runs workspace of a project (or of some runs) in the cell output.

    Build it with :func:`nbtracker.compare` / :func:`nbtracker.show` of a project, or
    ``%nbt_compare project``. Everything it shows comes back to Python:
    :attr:`selected`, :meth:`to_pandas`, :meth:`chart`.
    """

    _esm = _lib.loader_esm()
    _entry = t.Unicode("renderWorkspace").tag(sync=True)
    _uid = t.Unicode("").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    total = t.Int(0).tag(sync=True)
    matched = t.Int(0).tag(sync=True)
    columns = t.List().tag(sync=True)  # [{name, kind}]
    shown = t.List(t.Unicode()).tag(sync=True)
    pinned = t.List(t.Unicode()).tag(sync=True)
    sort = t.List().tag(sync=True)  # [[column, descending], ...]
    filter = t.Unicode("").tag(sync=True)
    search = t.Unicode("").tag(sync=True)
    group = t.List(t.Unicode()).tag(sync=True)
    offset = t.Int(0).tag(sync=True)
    page_size = t.Int(50).tag(sync=True)
    rows = t.List().tag(sync=True)  # [{id, color, cells}]
    groups = t.Dict().tag(sync=True)  # {head, rows}
    error = t.Unicode("").tag(sync=True)
    visible = t.List(t.Unicode()).tag(sync=True)  # toggled on in the table
    drawn = t.List(t.Unicode()).tag(sync=True)  # visible and passing the filter and brush
    runs = t.Dict().tag(sync=True)  # run id -> {name, color, state, step, group}
    highlight = t.Unicode("").tag(sync=True)
    metrics = t.List(t.Unicode()).tag(sync=True)
    smoothing = t.Float(0.0, min=0.0, max=0.99).tag(sync=True)
    x_axis = t.Unicode("step").tag(sync=True)
    log_y = t.Bool(False).tag(sync=True)
    # one chart's own settings from its ⚙ controls: {metric: {"x", "log_y", "smoothing"}};
    # a workspace-wide control clears the same setting of every chart (as the run panel's)
    chart_opts = t.Dict().tag(sync=True)
    tab = t.Unicode("charts").tag(sync=True)
    target = t.Unicode("").tag(sync=True)  # metric of parallel coordinates / importance
    scatter = t.Dict().tag(sync=True)  # {x, y, color}
    points = t.Dict().tag(sync=True)  # {names: [...], rows: [[id, ...]]}
    importance = t.List().tag(sync=True)
    bands = t.Dict().tag(sync=True)  # grouped overlay: {key: {group: {s, mean, lo, hi}}}
    brush = t.Dict().tag(sync=True)  # parallel coordinates: {column: [low, high]}
    renderer = t.Unicode("canvas").tag(sync=True)
    # the drawn runs' series as one JSON text: a dict of 100 runs x 4 keys x ~300 points
    # costs ipywidgets ~0.4 s to walk for binary buffers on every sync; a string, nothing
    _series = t.Unicode("").tag(sync=True)

    def __init__(
        self,
        project: str | None = None,
        *,
        store: Any = None,
        run_ids: list[str] | None = None,
        sweep: str | None = None,
        live: list[Any] | None = None,
        max_visible: int = DEFAULT_VISIBLE,
        follow: bool = True,
        view: bool = True,
    ) -> None:
        super().__init__(_uid=secrets.token_hex(8))
        self._store = store if isinstance(store, Store) else Store(store)
        self._table = RunsTable(self._store, project, run_ids=run_ids, sweep=sweep)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._series_by: dict[str, _Series] = {}
        self._live: dict[str, Any] = {}
        self._max_visible = int(max_visible)
        self._seq = 0
        self._last_snap = 0.0
        self._snap_seq = -1
        self._auto_visible = True  # the newest runs are shown until the user picks
        self._fallback_handle: Any = None
        self._shown_in: int | None = None
        self._scan_sig: Any = None
        self._final_done = False
        self._colors: dict[str, str] = {}  # drawn runs: hashed colours, collisions moved
        self._thread: threading.Thread | None = None
        self.title = project or (f"sweep {sweep}" if sweep else f"{len(run_ids or [])} runs")
        # a project's workspace opens as it was last left (filter, sort, groups, columns,
        # chart settings), as W&B's does; a workspace of some runs or of a sweep does not
        self._view_of = project if view and project and run_ids is None and not sweep else None
        if self._view_of is not None:
            self._restore_view()
        for run in live or []:
            self.add_run(run, refresh=False)
        with self._lock:
            self._refresh_table()
            self._load_visible()
            self._take_deltas()  # the first view reads the snapshot: no message repeats it
            self._snapshot()
        self.observe(
            self._on_view,
            ["filter", "search", "sort", "group", "offset", "page_size", "shown", "brush"],
        )
        self.observe(self._on_visible, ["visible"])
        self.observe(self._on_analysis, ["tab", "target", "scatter"])
        if self._view_of is not None:
            self.observe(self._save_view, list(VIEW_TRAITS))
        self.on_msg(self._on_custom)
        _lib.push(self)
        if follow:
            self._thread = threading.Thread(
                target=self._loop, name="nbtracker-workspace", daemon=True
            )
            self._thread.start()

    # -- the saved view ----------------------------------------------------------------------
    def _restore_view(self) -> None:
        saved = self._store.read_view(str(self._view_of)) or {}
        for name, value in _valid_view(saved).items():
            try:
                setattr(self, name, value)
            except (t.TraitError, TypeError, ValueError):
                continue  # a value this version does not take: the default stays

    def _save_view(self, change: Any = None) -> None:
        view = {name: getattr(self, name) for name in VIEW_TRAITS}
        try:
            self._store.write_view(str(self._view_of), view)
        except OSError:  # a read-only store: the view is only a convenience
            pass

    def reset_view(self) -> None:
        """Back to the default view (no filter, sort or groups; the default columns and
        chart settings), saved as the project's view."""
        with self.hold_trait_notifications():
            for name in VIEW_TRAITS:
                self.set_trait(name, self.trait_defaults(name))
        with self._lock:
            self._refresh_table()
            self._load_visible()
            self._push()

    # -- runs ----------------------------------------------------------------------------------
    def add_run(self, run: Any, *, refresh: bool = True) -> None:
        """Follow a live ``Run`` of this process (the next ``init()`` of a cell)."""
        rid = str(run.id)
        with self._lock:
            if self._table.run_ids is not None and rid not in self._table.run_ids:
                self._table.run_ids.append(rid)
            self._live[rid] = run
            ser = self._series_by.get(rid)
            if ser is None:
                ser = self._series_by[rid] = _Series(rid)
            if ser.sub is None and run.state == "running":
                inbox = ser.inbox
                ser.run = run
                ser.t0 = float(run.record.get("created_at") or time.time())

                def hook(event: str, payload: Any, inbox: Any = inbox) -> None:
                    if event == "row":
                        inbox.append((payload[0], time.time(), payload[1]))
                    elif event == "finish":
                        self._live_ended()

                ser.sub = run.subscribe(hook)
                ser.loaded = True
            self.highlight = rid
            if refresh:
                self._refresh_table()
                if self._auto_visible and rid not in self.visible:
                    self.visible = self._default_visible()
                self._push()

    def _live_ended(self) -> None:
        """A live run finished (on its training thread): when it was the last one, bring
        the view and the static snapshot up to date now, before the cell moves on."""
        if any(r.state == "running" for r in self._live.values()):
            return
        try:
            with self._lock:
                self._drain()
                self._refresh_table()
                self._push()
                self._snapshot()
                self._final_snapshot()
        except Exception:  # noqa: BLE001, S110 - a display problem must not stop training
            pass

    def _final_snapshot(self) -> None:
        if self._fallback_handle is not None and not self._final_done:
            self._final_done = True
            try:
                self._update_fallback(final=True)
            except Exception:  # noqa: BLE001, S110 - a display problem must not stop training
                pass

    def _records(self) -> list[dict[str, Any]]:
        from .. import query

        recs = query.load_runs(self._store, self._table.project)
        have = {str(r["id"]) for r in recs}
        for rid, run in self._live.items():  # a live run is newer than its run.json
            rec = dict(run.record)
            rec["config"] = run.config.as_dict()
            rec["summary"] = {k: v for k, v in run.summary.as_dict().items()}
            rec["last_step"] = max(0, run.step - 1)
            rec["dir"] = os.path.relpath(run.dir, self._store.root)
            if rid in have:
                recs = [rec if str(r["id"]) == rid else r for r in recs]
            else:
                recs.append(rec)
        return recs

    def _refresh_table(self) -> None:
        self._table.refresh(self._records())
        tab = self._table
        self.total = len(tab.records)
        self.columns = [{"name": n, "kind": k} for n, k in tab.columns.items()]
        if not self.shown:
            base = ["state", "created", "runtime"] + (["alerts"] if "alerts" in tab.columns else [])
            cfg = [c for c in tab.columns if c.startswith("config.")][:8]
            summ = [c for c in tab.columns if c.startswith("summary.")][:8]
            self.shown = base + cfg + summ
        else:
            self.shown = [c for c in self.shown if c in tab.columns]
        runs = {}
        for rid, rec in tab.records.items():
            runs[rid] = {
                "name": str(rec.get("name") or rid),
                "color": self._color(rid),
                "state": str(rec.get("state") or ""),
                "step": int(rec.get("last_step") or 0),
            }
        if runs != self.runs:
            self.runs = runs
        if self._auto_visible:
            vis = self._default_visible()
            if vis != self.visible:
                self.visible = vis
        self._update_view()
        self._update_metrics()

    def _default_visible(self) -> list[str]:
        try:
            ids = self._table.ids(self.filter, self.search)  # newest first
        except FilterError:
            ids = self._table.ids()
        return ids[: self._max_visible]

    def _update_metrics(self) -> None:
        keys: list[str] = []
        for rid in self.visible:
            rec = self._table.records.get(rid) or {}
            kt = rec.get("history_keys") or {}
            run = self._live.get(rid)
            if run is not None:
                kt = dict(run.history_keys)
            hidden = hidden_keys(rec, list(kt))
            for k, kind in kt.items():
                if kind in ("float", "int", "bool") and k not in keys and k not in hidden:
                    keys.append(k)
            ser = self._series_by.get(rid)
            if ser is not None:
                keys += [k for k in list(ser.feed.env) if k not in keys and k not in hidden]
        if keys != self.metrics:
            self.metrics = keys

    # -- the view: filter, sort, page, groups ---------------------------------------------------
    def _on_view(self, change: Any) -> None:
        with self._lock:
            if change["name"] == "brush":
                try:
                    brush = {
                        str(k): (float(v[0]), float(v[1])) for k, v in (self.brush or {}).items()
                    }
                    self._table.where("", "", brush)  # only columns of the table
                    self._table.brush = brush
                except (FilterError, TypeError, ValueError, IndexError) as exc:
                    self.error = f"brush: {exc}"
                    return
            if change["name"] in ("filter", "search", "group", "brush") and self.offset:
                self.offset = 0
                return
            self._update_view()
            if change["name"] in ("filter", "search", "brush") and self._auto_visible:
                self.visible = self._default_visible()
            if change["name"] == "group":
                self._load_visible()
                self._push()

    def _update_view(self) -> None:
        tab = self._table
        try:
            rows, matched = tab.page(
                self.shown, self.filter, self.search, self.sort, self.offset, self.page_size
            )
            groups: dict[str, Any] = {}
            if self.group:
                head, grows = tab.groups(self.group, self.filter, self.search)
                groups = {"head": head, "rows": grows}
            self.error = ""
        except FilterError as exc:
            self.error = str(exc)
            return
        with self.hold_sync():
            self.matched = matched
            self._update_drawn()
            self.rows = [{"id": r[0], "color": self._color(r[0]), "cells": r[1:]} for r in rows]
            self.groups = groups
            self._update_points()

    def _color(self, rid: str) -> str:
        return self._colors.get(rid) or run_color(rid)

    def _update_drawn(self) -> None:
        try:
            passing = set(self._table.ids(self.filter, self.search))
        except FilterError:
            return
        drawn = [r for r in self.visible if r in passing]
        recs = self._table.records
        oldest = sorted(drawn, key=lambda r: (float((recs.get(r) or {}).get("created_at") or 0), r))
        colors = run_colors(oldest)
        if colors != {r: self._colors.get(r) for r in colors} or set(colors) != set(self._colors):
            self._colors = colors
            runs = {r: {**info, "color": self._color(r)} for r, info in self.runs.items()}
            if runs != self.runs:
                self.runs = runs
            self.rows = [{**row, "color": self._color(row["id"])} for row in self.rows]
        if drawn != self.drawn:
            self.drawn = drawn

    def _on_visible(self, change: Any) -> None:
        with self._lock:
            self._update_drawn()
            if change.get("new") != self._default_visible():
                self._auto_visible = False
            self._update_metrics()
            self._load_visible()
            self._push()

    def _on_analysis(self, change: Any) -> None:
        with self._lock:
            self._update_points()

    def _update_points(self) -> None:
        """The columns the parallel coordinates, the scatter and the importance need, for
        the runs that pass the filter."""
        tab = self._table
        if self.tab not in ("parallel", "scatter", "importance"):
            return
        try:
            ids = tab.ids(self.filter, self.search, self.sort, brush={})[:MAX_POINTS_ROWS]
            inside = set(tab.ids(self.filter, self.search)) if tab.brush else None
        except FilterError:
            return
        nums = [c for c, k in tab.columns.items() if k == "number"]
        target = self.target if self.target in tab.columns else ""
        if not target:
            target = next((c for c in nums if c.startswith("summary.")), "")
        if self.tab == "parallel":
            names = [c for c in nums if c.startswith("config.")][:12] + ([target] if target else [])
        elif self.tab == "scatter":
            sc = self.scatter or {}
            names = [c for c in (sc.get("x"), sc.get("y"), sc.get("color")) if c in tab.columns]
        else:
            names = []
            try:
                kept = ids if inside is None else [i for i in ids if i in inside]
                self.importance = importance(tab, target, kept) if target else []
            except ImportError:
                self.error = (
                    "parameter importance needs scikit-learn: pip install 'nbtracker[workspace]'"
                )
        if names:
            vals = tab.values(names, ids)
            self.points = {
                "names": names,
                # every run that passes the filter, flagged when inside the brushed ranges
                # (the others are drawn grey, so a brush can be moved back out)
                "rows": [
                    [i, inside is None or i in inside, *v] for i, v in zip(ids, vals, strict=False)
                ],
            }
        else:
            self.points = {}

    # -- series ---------------------------------------------------------------------------------
    def _load_visible(self) -> None:
        """Read the series of visible runs not read yet: finished runs in one scan, running
        runs of other processes through a follower."""
        want = list(self.visible)
        if self.group:
            try:
                want += [
                    r
                    for r in self._table.ids(self.filter, self.search)[:GROUP_RUNS]
                    if r not in want
                ]
            except FilterError:
                pass
        todo = []
        for rid in want:
            ser = self._series_by.get(rid)
            if ser is None:
                ser = self._series_by[rid] = _Series(rid)
            if ser.loaded:
                continue
            rec = self._table.records.get(rid)
            if rec is None:
                continue
            rdir = self._store.root / rec["dir"]
            ser.t0 = float(rec.get("created_at") or 0.0)
            if rec.get("state") == "running" and not process_gone(rec):
                ser.reader = FolderReader(rdir, BUCKETS)
                ser.feed = ser.reader.feed
                self._poll_reader(ser, rec)
                ser.loaded = True
            else:
                todo.append((ser, rdir, rec))
        if todo:
            # 100 lines on a 300-pixel chart: a few points per pixel is all that shows
            # (the min/max rule still keeps every spike), and the page draws 4x less
            buckets = max(MIN_BUCKETS, min(BUCKETS, BUCKETS * 16 // max(len(want), 1)))
            envs = envelopes([(rdir, ser.t0) for ser, rdir, _ in todo], None, buckets)
            for (ser, _, _), env in zip(todo, envs, strict=True):
                ser.feed.env = env
                for e in env.values():
                    e.reset = True
                ser.loaded = True
        self._update_metrics()
        if self.group:  # (over the metrics just listed: a restored view groups at once)
            self._update_bands()

    def _poll_reader(self, ser: _Series, rec: dict[str, Any]) -> None:
        from .._util import read_json
        from ..store import record_file

        try:
            fresh = read_json(record_file(ser.reader.rdir))  # type: ignore[union-attr]
        except (OSError, ValueError):
            fresh = rec
        try:
            ser.reader.poll(fresh)  # type: ignore[union-attr]
        except (OSError, ValueError):
            return
        if ser.reader.feed is not ser.feed:  # type: ignore[union-attr]
            ser.feed = ser.reader.feed  # type: ignore[union-attr]
            for e in ser.feed.env.values():
                e.reset = True
        if fresh.get("state") != "running" or process_gone(fresh):
            ser.reader = None  # ended: nothing more to read

    def _update_bands(self) -> None:
        """Grouped overlay: per metric and group, the mean of the runs with the min-max
        band, on a common grid of steps."""
        import numpy as np

        groups = self._table.group_of(self.group)
        try:
            ids = self._table.ids(self.filter, self.search)[:GROUP_RUNS]
        except FilterError:
            return
        out: dict[str, dict[str, Any]] = {}
        # groups drawn together never share a colour (a hashed colour each, collisions moved)
        colors = run_colors(sorted({groups.get(rid, "–") for rid in ids}))
        for key in self.metrics:
            per: dict[str, list[tuple[Any, Any]]] = {}
            last = 0
            for rid in ids:
                ser = self._series_by.get(rid)
                env = ser.feed.env.get(key) if ser else None
                if env is None:
                    continue
                pts = env.points()
                if not pts:
                    continue
                s = np.array([p[0] for p in pts], dtype=np.int64)
                v = np.array([p[2] for p in pts], dtype=np.float64)
                ok = np.isfinite(v)
                per.setdefault(groups.get(rid, "–"), []).append((s[ok], v[ok]))
                last = max(last, int(s[-1]))
            if not per:
                continue
            grid = np.unique(np.linspace(0, last, 200).astype(np.int64))
            out[key] = {}
            for label, series in per.items():
                stack = []
                for s, v in series:
                    if len(s) == 0:
                        continue
                    col = np.interp(grid, s, v, left=np.nan, right=np.nan)
                    stack.append(col)
                if not stack:
                    continue
                arr = np.vstack(stack)
                with np.errstate(all="ignore"):
                    import warnings

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        mean, lo, hi = np.nanmean(arr, 0), np.nanmin(arr, 0), np.nanmax(arr, 0)
                keep = np.isfinite(mean)
                out[key][label] = {
                    "s": grid[keep].tolist(), "mean": mean[keep].tolist(),
                    "lo": lo[keep].tolist(), "hi": hi[keep].tolist(),
                    "color": colors.get(label) or run_color(label), "n": len(stack),
                }  # fmt: skip
        self.bands = out

    def _drain(self) -> bool:
        moved = False
        for ser in self._series_by.values():
            if ser.sub is None and not ser.inbox:
                continue
            n = len(ser.inbox)
            if n:
                pop = ser.inbox.popleft
                rows = [pop() for _ in range(n)]
                ser.feed.add_rows([(s, ts - ser.t0, r) for s, ts, r in rows])
                moved = True
            run = ser.run
            if run is not None and run.state != "running":
                ser.close()
        return moved

    def _push(self) -> None:
        out: dict[str, dict[str, Any]] = {}
        for rid in self.visible:
            ser = self._series_by.get(rid)
            if ser is None:
                continue
            for key, env in ser.feed.env.items():
                d = env.take_delta()
                if d is None:
                    continue
                frm, pts = d
                col = columns(pts, [])
                col["from"] = frm
                out.setdefault(rid, {})[key] = col
        if out:
            self._seq += 1
            self.send({"type": "series", "seq": self._seq, "runs": out})

    def _take_deltas(self) -> None:
        for rid in self.visible:
            ser = self._series_by.get(rid)
            if ser is not None:
                for env in ser.feed.env.values():
                    env.take_delta()

    def _snapshot(self) -> None:
        import json

        self._last_snap = time.monotonic()
        value = self._snapshot_value()
        self._snap_seq = self._seq
        self._series = json.dumps(value, separators=(",", ":"))

    def series_snapshot(self) -> dict[str, Any]:
        """The synced snapshot of the drawn runs' series: ``{"seq", "runs": {id: {key:
        {"s", "t", "v"}}}}`` (what a view opened later starts from)."""
        import json

        return json.loads(self._series) if self._series else {"seq": -1, "runs": {}}

    def _snapshot_value(self) -> dict[str, Any]:
        runs: dict[str, Any] = {}
        for rid in self.visible:
            ser = self._series_by.get(rid)
            if ser is not None:
                runs[rid] = {k: columns(e.points(), []) for k, e in ser.feed.env.items()}
        return {"seq": self._seq, "runs": runs}

    # -- the pump -------------------------------------------------------------------------------
    def _loop(self) -> None:
        next_refresh = time.monotonic() + REFRESH_S
        warned = False
        while not self._stop.wait(PUSH_S):
            try:
                with self._lock:
                    self._drain()
                    now = time.monotonic()
                    if now >= next_refresh:
                        self._tick_refresh()
                        # a big project's table costs more to rebuild: refresh it less often
                        # (at most ~20% of the kernel's time)
                        cost = time.monotonic() - now
                        next_refresh = time.monotonic() + max(REFRESH_S, 4 * cost)
                    self._push()
                    if now - self._last_snap >= 5.0 and self._seq != self._snap_seq:
                        self._snapshot()
            except Exception as exc:  # noqa: BLE001 - a widget must never break training
                if not warned:
                    warned = True
                    import warnings

                    warnings.warn(f"nbtracker workspace: {exc!r}", RuntimeWarning, stacklevel=1)

    def _tick_refresh(self) -> None:
        """Runs of other processes appear; running ones grow; ended ones settle."""
        sig = self._store.scan_runs(self._table.project)
        sig_key = (len(sig), max((m for _, m in sig), default=0))
        live = any(r.state == "running" for r in self._live.values())
        followed = any(s.reader is not None for s in self._series_by.values())
        for ser in self._series_by.values():  # first: a run that just ended reads its end
            if ser.reader is not None:
                rec = self._table.records.get(ser.rid) or {}
                self._poll_reader(ser, rec)
        if sig_key != self._scan_sig or live or followed:
            self._scan_sig = sig_key
            self._refresh_table()
            self._load_visible()
        followed = any(s.reader is not None for s in self._series_by.values())
        if self.group:
            self._update_bands()
        if not live and not followed:
            self._final_snapshot()
        else:
            self._final_done = False

    # -- messages from the browser ---------------------------------------------------------------
    def _on_custom(self, _widget: Any, content: Any, buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "need_lib":
            _lib.push(self, force=True)
        elif kind == "resync":
            with self._lock:
                snap = self._snapshot_value()
            self.send({"type": "snap", **snap})

    # -- back to Python ------------------------------------------------------------------------
    @property
    def selected(self) -> list[Any]:
        """The drawn runs (toggled on and passing the filter) as Api runs."""
        from ..api import Api

        api = Api(self._store.root)
        out = []
        for rid in self.drawn:
            rec = self._table.records.get(rid)
            if rec is not None:
                out.append(api.run(f"{rec['project']}/{rid}"))
        return out

    def to_pandas(self) -> Any:
        """The current view as a DataFrame: the runs that pass the filter and search, in
        sort order (grouped: one row per group with count and mean/min/max)."""
        with self._lock:
            return self._table.frame(self.filter, self.search, self.sort, self.group)

    def sql(self) -> tuple[str, list[Any]]:
        """The WHERE clause and parameters of the current filter (over the table that
        :meth:`to_pandas` returns)."""
        return self._table.where(self.filter, self.search)

    def chart_settings(self, metric: str) -> tuple[str, float, bool]:
        """``(x axis, smoothing, log scale)`` the chart of ``metric`` draws with: its own
        controls, else the workspace's. The x axis is ``"step"``, ``"time"`` or another
        metric of the runs (its value at each step)."""
        own = self.chart_opts.get(metric) or {}
        x = str(own.get("x") or self.x_axis)
        if x not in ("step", "time") and (x == metric or x not in self.metrics):
            x = "step"
        return (
            x,
            float(own.get("smoothing", self.smoothing)),
            bool(own.get("log_y", self.log_y)),
        )

    def chart(self, metric: str) -> Any:
        """The overlay of one metric as an ``alt.Chart`` (visible runs, their colours; its
        x axis and log scale as the widget draws it)."""
        import altair as alt
        import numpy as np
        import pandas as pd

        x, _, log_y = self.chart_settings(metric)
        rows = []
        with self._lock:
            names = {rid: self.runs.get(rid, {}).get("name", rid) for rid in self.drawn}
            for rid in self.drawn:
                ser = self._series_by.get(rid)
                env = ser.feed.env.get(metric) if ser else None
                pts = (
                    [p for p in env.points() if p[2] == p[2] and abs(p[2]) != math.inf]
                    if env
                    else []
                )
                if not pts:
                    continue
                xs: Any = None
                if x not in ("step", "time"):  # another metric: its value at these steps
                    xenv = ser.feed.env.get(x) if ser else None
                    xp = [p for p in xenv.points() if p[2] == p[2]] if xenv else []
                    if not xp:
                        continue
                    steps = np.array([p[0] for p in pts], dtype=float)
                    xs = np.interp(steps, [p[0] for p in xp], [p[2] for p in xp],
                                   left=np.nan, right=np.nan)  # fmt: skip
                for i, (s, tt, v, _) in enumerate(pts):
                    row = {"run": f"{names[rid]} ({rid})", "step": s, "time": tt, "value": v}
                    if xs is not None:
                        if xs[i] != xs[i]:
                            continue
                        row["x"] = float(xs[i])
                    rows.append(row)
        if not rows:
            msg = f"no metric {metric!r} in the visible runs; they have {self.metrics}"
            raise KeyError(msg)
        labels = [f"{names[r]} ({r})" for r in self.drawn]
        field, title = {"step": ("step", "step"), "time": ("time", "time (s)")}.get(x, ("x", x))
        return (
            alt.Chart(pd.DataFrame(rows), title=metric)
            .mark_line(strokeWidth=1.5)
            .encode(
                x=alt.X(f"{field}:Q", title=title),
                y=alt.Y(
                    "value:Q",
                    title=None,
                    scale=alt.Scale(type="log") if log_y else alt.Scale(zero=False),
                ),
                color=alt.Color(
                    "run:N",
                    scale=alt.Scale(domain=labels, range=[self._color(r) for r in self.drawn]),
                ),
                order="step:Q",
            )
            .properties(width=400, height=220)
        )

    def set_filter(self, expr: str) -> None:
        """Set the filter; a bad expression raises :class:`FilterError` (the widget shows
        the same message)."""
        self._table.where(expr)  # raises on a bad expression
        self.filter = expr

    def show_runs(self, run_ids: list[str] | None = None, sweep: str | None = None) -> None:
        """Limit the workspace to some runs (``run_ids``) or one sweep; None: all runs.
        The hook a sweep view uses."""
        with self._lock:
            self._table.run_ids = None if run_ids is None else [str(r) for r in run_ids]
            self._table.sweep = sweep
            self._auto_visible = True
            self._refresh_table()
            self._load_visible()
            self._push()

    # -- static snapshot -------------------------------------------------------------------------
    def static_chart(self) -> dict[str, Any]:
        from .. import charts

        runs = []
        colors = []
        with self._lock:
            for rid in self.visible:
                ser = self._series_by.get(rid)
                if ser is None:
                    continue
                small = {}
                for k, env in ser.feed.env.items():
                    e = Envelope(60)
                    for p in env.points():
                        e.add(*p)
                    small[k] = columns(e.points(), [])
                runs.append((f"{self.runs.get(rid, {}).get('name', rid)} ({rid})", small))
                colors.append(self._color(rid))
        return charts.compare_spec(runs, colors=colors)

    def fallback_bundle(self, final: bool = False) -> dict[str, str]:
        from .. import charts
        from . import _ws_fallback

        png = None
        if final:
            try:
                png = charts.to_png_base64(self.static_chart())
            except Exception:  # noqa: BLE001 - the table alone still helps
                png = None
        with self._lock:
            frame_cols = list(self.shown)
            rows, _ = self._table.page(frame_cols, self.filter, self.search, self.sort, 0, 100)
        html = _ws_fallback.render(
            self._uid, self.title, self.total, frame_cols, rows, self.runs, png
        )
        return {"text/html": html, "text/plain": repr(self)}

    def _update_fallback(self, final: bool = False) -> None:
        handle = self._fallback_handle
        if handle is not None:
            handle.update(self.fallback_bundle(final), raw=True)

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        count = getattr(get_ipython(), "execution_count", None)
        if self._shown_in is not None and self._shown_in == count:
            return
        self._shown_in = count
        data, meta = self._repr_mimebundle_()
        display(data, metadata=meta, raw=True)
        final = not any(r.state == "running" for r in self._live.values())
        # the table now; the charts' picture (~1-2 s to render for 100 runs) follows from a
        # thread, so the cell (and the live view) does not wait for the static copy
        self._fallback_handle = display(self.fallback_bundle(False), raw=True, display_id=True)
        self._final_done = False
        if final:
            th = threading.Thread(
                target=self._final_snapshot, name="nbtracker-ws-snapshot", daemon=True
            )
            th.start()
            _join_after_cell(th)

    def wait(self, timeout: float | None = None) -> None:
        """Block until no followed run is running (or ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(r.state == "running" for r in self._live.values()) or any(
            s.reader is not None for s in self._series_by.values()
        ):
            if deadline is not None and time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)  # its DuckDB queries end before the table closes
        with self._lock:
            for ser in self._series_by.values():
                ser.close()
            self._table.close()
        super().close()

    def __repr__(self) -> str:
        return (
            f"Workspace({self.title!r}: {self.total} runs, {self.matched} shown by the filter, "
            f"{len(self.visible)} drawn)"
        )


def _join_after_cell(thread: threading.Thread, timeout: float = 30.0) -> None:
    """Let the cell end only once ``thread`` (the static copy's picture) is done: its live
    view paints meanwhile, and a notebook executed headless (nbconvert) keeps the picture
    even when this is its last cell."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        return
    if ip is None:
        return

    def joined(*_args: Any) -> None:
        try:
            ip.events.unregister("post_run_cell", joined)
        except ValueError:
            pass
        thread.join(timeout)

    ip.events.register("post_run_cell", joined)
