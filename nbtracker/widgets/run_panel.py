"""RunPanel: the live panel of one run (in this process, or followed from its folder).

Data flow, shaped by how Jupyter delivers messages (see ``design.md`` section 4):

- While the training cell runs, browser -> kernel messages wait, so Python pushes new
  points unasked: the training thread only appends each row to a deque (O(1)); a pump
  thread drains it at most 4 times a second into bounded min/max envelopes and sends
  ``{"type": "rows", "seq", "series": {key: {"from", "s", "t", "v", "x"}}}``.
- Every few seconds, and at the end, the down-sampled series is also stored in the
  synced ``_series`` trait, so a view created late or re-rendered never misses data.
  Full histories never go into widget state; neither do paths.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from .. import charts
from ..feed import Feed, FolderReader, hidden_keys, read_range, x_candidates, x_defaults
from ..media import MEDIA_KINDS, media_kind, parse_ref
from ..sampling import DEFAULT_BUCKETS, columns, small_columns
from ..store import alerts_path, process_gone, record_file
from . import _capture_view, _fallback, _lib
from ._fallback import table_view
from ._source import MediaTracks, media_entry

PUSH_INTERVAL_S = 0.25  # at most 4 data messages a second
META_INTERVAL_S = 1.0
SNAPSHOT_INTERVAL_S = 5.0
# the hidden static snapshot output (what a reloaded page or a saved notebook shows) is
# refreshed this often while a run goes, from the pump thread (never the training thread)
FALLBACK_INTERVAL_S = 30.0
FOLLOW_INTERVAL_S = 0.5
# Table keys whose widget was shown, per live run: two panels of one run (init()'s and a
# show(run)) show one table widget per key between them.
_TABLES_SHOWN: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


class RunPanel(anywidget.AnyWidget):
    """Live charts and status of one run, in the cell output.

    Build it with :func:`nbtracker.show` (any run, also one logged by another process)
    or let ``nbtracker.init()`` show it in a notebook.

    Traits
    ------
    run_name, project, run_id, state : str
    step : int
        The last logged step.
    elapsed, steps_per_s : float
    config, summary : dict
        Flattened, with long values shortened and secret-looking keys masked.
    metrics : list of str
        The charted metrics, in first-logged order.
    smoothing : float
        Time-weighted, debiased moving average in ``[0, 0.99]`` (W&B's default; the
        panel's slider). Never applied to step metrics (``x_options``).
    x_axis : str
        ``"step"``, ``"time"`` or a step metric from ``x_options``, for every chart;
        ``"step"`` also lets a chart use its ``define_metric`` step metric (``x_defaults``).
    log_y : bool
        Log scale on y.
    x_defaults : dict
        ``{metric: step_metric}`` from ``define_metric(..., step_metric=)`` (globs too).
    chart_opts : dict
        Per-chart overrides set from each chart's own controls:
        ``{metric: {"x": str, "log_y": bool, "smoothing": float}}``; a panel-wide control
        clears the same setting of every chart.
    renderer : {"canvas", "svg"}
        Vega renderer.
    alerts : list of dict
        The last 20 ``run.alert()`` calls (title, text, level, at, step).
    media : dict
        Images and histograms logged per step: ``{key: {"kind", "n", "last"}}`` (the
        entries themselves, thumbnails and bin counts, travel as messages, never as state).
    show_tables : bool
        In a notebook, display a table widget (``TableView``) in the cell output the first
        time each ``Table`` key is logged; it follows the later versions.
    """

    _esm = _lib.loader_esm()

    run_name = t.Unicode("").tag(sync=True)
    project = t.Unicode("").tag(sync=True)
    run_id = t.Unicode("").tag(sync=True)
    state = t.Unicode("").tag(sync=True)
    error = t.Unicode("").tag(sync=True)  # "ZeroDivisionError: ..." of a failed run or cell
    step = t.Int(0).tag(sync=True)
    elapsed = t.Float(0.0).tag(sync=True)
    steps_per_s = t.Float(0.0).tag(sync=True)
    config = t.Dict().tag(sync=True)
    summary = t.Dict().tag(sync=True)
    metrics = t.List(t.Unicode()).tag(sync=True)
    x_options = t.List(t.Unicode()).tag(sync=True)
    smoothing = t.Float(0.0, min=0.0, max=0.99).tag(sync=True)
    x_axis = t.Unicode("step").tag(sync=True)
    log_y = t.Bool(False).tag(sync=True)
    x_defaults = t.Dict().tag(sync=True)
    chart_opts = t.Dict().tag(sync=True)
    renderer = t.Unicode("canvas").tag(sync=True)
    media = t.Dict().tag(sync=True)
    alerts = t.List(t.Dict()).tag(sync=True)  # the last 20 run.alert() calls
    system = t.Dict().tag(sync=True)  # system metrics: {key: {"t", "v"}} (see _capture_view)
    log_tail = t.Unicode("").tag(sync=True)  # the end of the console log
    env_info = t.Dict().tag(sync=True)  # git, python, host, ... (no paths, no credentials)
    _spec = t.Dict().tag(sync=True)
    _series = t.Dict().tag(sync=True)
    _uid = t.Unicode("").tag(sync=True)

    def __init__(self, *, renderer: str = "canvas", max_buckets: int = DEFAULT_BUCKETS) -> None:
        super().__init__(_uid=secrets.token_hex(8), _spec=_lib.live_spec(), renderer=renderer)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._feed = Feed(max_buckets)
        self._max_buckets = max_buckets
        self._seq = 0
        self._last_meta = 0.0
        self._last_snap = 0.0
        self._last_fallback = time.monotonic()
        self._rate_ref: tuple[float, int] | None = None
        self._hidden: set[str] = set()
        self._fallback_handle: Any = None
        self._shown_in: int | None = None
        self._run: Any = None
        self._reader: FolderReader | None = None
        self._t0 = 0.0
        self._finished_at: float | None = None
        self._on_end: list[Any] = []  # callables() run when the run ends (a RunsPanel)
        self._media = MediaTracks()
        self._media_keys: dict[str, str] = {}  # media key -> kind (image, images, histogram)
        self._kt_len = -1  # len(run.history_keys) when the media keys were last listed
        self._kt_seen = 0  # ... and when the table keys were last looked at (main thread)
        self._tables_shown: set[str] = set()
        self.table_views: list[Any] = []
        self.show_tables = False
        self.on_msg(self._on_custom)
        _lib.push(self)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def for_run(cls, run: Any, *, show_tables: bool | None = None, **kwargs: Any) -> RunPanel:
        """A panel fed live by a ``Run`` of this process (through ``run.subscribe``).

        ``show_tables`` (default: in a notebook) displays a table widget in the cell
        output the first time each ``Table`` key is logged (see :attr:`table_views`).
        """
        from .. import _state

        self = cls(**kwargs)
        self.show_tables = _state.in_notebook() if show_tables is None else bool(show_tables)
        kt = run.history_keys
        self._kt_seen = len(kt)
        shown = _TABLES_SHOWN.get(run)
        if shown is None:
            shown = _TABLES_SHOWN[run] = {k for k, v in list(kt.items()) if v == "media:table"}
        self._tables_shown = shown
        self._run = run
        self._t0 = float(run.record.get("created_at") or time.time())
        self._inbox: deque[tuple[int, float, dict[str, Any]]] = deque()
        self._feed.x_names = x_candidates(run.record, kt)
        inbox = self._inbox

        def hook(event: str, payload: Any) -> None:
            if event == "row":
                inbox.append((payload[0], time.time(), payload[1]))
                if len(kt) != self._kt_seen:  # a new key (maybe a Table)
                    self._new_tables()
            elif event == "finish":
                self._new_tables()
                self._on_finish()
            elif event == "alert":
                with self._lock:
                    self.alerts = [*self.alerts, payload][-20:]
            elif event in ("error", "resumed"):  # a notebook cell raised / the user went on
                with self._lock:
                    self._meta(force=True)
                    self._snapshot()

        self._subscription = run.subscribe(hook)
        with self._lock:
            self._meta(force=True)
            if run.state == "running" and not getattr(run, "_finished", False):
                self._start()
            else:
                self._on_finish()
        return self

    @classmethod
    def for_folder(cls, rdir: str | Path, *, follow: bool = True, **kwargs: Any) -> RunPanel:
        """A panel for a run folder: read now, then follow it while its state is running."""
        self = cls(**kwargs)
        self._reader = FolderReader(Path(rdir), self._max_buckets)
        self._feed = self._reader.feed
        self._rec_mtime: Any = None  # (mtime_ns, inode, size) of the run.json read last
        self._proc_gone = False  # the process writing a "running" record is gone
        self._rec: dict[str, Any] = {}
        with self._lock:
            self._follow_tick()  # charts, and the images / histograms logged so far
            self._snapshot()
            if follow and self.state == "running":
                self._start()
            else:
                self._finished_at = time.time()
        return self

    def _new_tables(self) -> None:
        """On the logging thread (so in the cell that logged): show a table widget for each
        ``Table`` key logged for the first time. Later versions reach it by its follower."""
        run = self._run
        kt = run.history_keys
        self._kt_seen = len(kt)
        if not self.show_tables:
            return
        try:
            new = [
                k for k, v in list(kt.items()) if v == "media:table" and k not in self._tables_shown
            ]
        except RuntimeError:  # changed size meanwhile (the writer thread): next row
            self._kt_seen = -1
            return
        for key in new:
            self._tables_shown.add(key)
            try:
                from IPython.display import display

                from .table_view import TableView

                view = TableView.for_run(run, key)
                self.table_views.append(view)
                display(view)
            except Exception as exc:  # noqa: BLE001 - a widget must never break training
                import warnings

                warnings.warn(f"nbtracker: no table widget for {key!r} ({exc!r})",
                              RuntimeWarning, stacklevel=2)  # fmt: skip

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="nbtracker-panel", daemon=True)
        self._thread.start()

    # -- the pump --------------------------------------------------------------------------
    def _loop(self) -> None:
        interval = PUSH_INTERVAL_S if self._run is not None else FOLLOW_INTERVAL_S
        warned = False
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    if self._run is not None:
                        self._live_tick()
                    else:
                        self._follow_tick()
            except Exception as exc:  # noqa: BLE001 - a panel must never break training
                if not warned:
                    warned = True
                    import warnings

                    warnings.warn(f"nbtracker panel: {exc!r}", RuntimeWarning, stacklevel=1)

    def _live_tick(self) -> None:
        self._drain()
        self._push()
        now = time.monotonic()
        if now - self._last_meta >= META_INTERVAL_S:
            self._meta()
        if now - self._last_snap >= SNAPSHOT_INTERVAL_S:
            self._snapshot()
        if self._fallback_handle is not None and now - self._last_fallback >= FALLBACK_INTERVAL_S:
            self._last_fallback = now
            self._update_fallback(final=True)  # chart image and media of the run so far

    def _drain(self) -> None:
        # Take only what is there now: a loop that logs faster than this drains must not
        # keep the pump here forever.
        inbox, t0 = self._inbox, self._t0
        n = len(inbox)
        pop = inbox.popleft
        rows = [pop() for _ in range(n)]
        if t0:
            rows = [(s, ts - t0, r) for s, ts, r in rows]
        self._feed.add_rows(rows)
        if rows:
            self._scan_media(rows)

    def _scan_media(self, rows: list[tuple[int, float, dict[str, Any]]]) -> None:
        """Images and histograms in the rows just drained: each logged step becomes a slider
        entry (the tracks thin older entries past their cap). A burst of more steps than
        the cap in one drain keeps an evenly spaced subset, its first and last included."""
        kt = self._run.history_keys
        if len(kt) != self._kt_len:
            try:
                self._media_keys = {
                    k: v[6:] for k, v in list(kt.items())
                    if v.startswith("media:") and v[6:] in MEDIA_KINDS
                }  # fmt: skip
                self._kt_len = len(kt)
            except RuntimeError:  # changed size meanwhile: again next time
                pass
        if not self._media_keys:
            return
        rdir = self._run.dir
        cap = self._media.cap
        for key in self._media_keys:
            hits = [(step, row[key]) for step, _t, row in rows if key in row]
            if len(hits) > cap:
                n = len(hits)
                hits = [
                    hits[i] for i in sorted({round(i * (n - 1) / (cap - 1)) for i in range(cap)})
                ]
            for step, value in hits:
                ref = parse_ref(value)
                kind = media_kind(ref) if ref else None
                entry = media_entry(rdir, step, ref) if kind else None  # type: ignore[arg-type]
                if entry is not None:
                    self._media.add(key, kind, entry)  # type: ignore[arg-type]

    def _follow_alerts(self, rdir: Path) -> None:
        """A followed run's alerts (re-read when its alerts file grows)."""
        try:
            size = alerts_path(rdir).stat().st_size
        except OSError:
            return
        if size != getattr(self, "_alerts_size", 0):
            from ..alerts import read_alerts_file

            self._alerts_size = size
            self.alerts = read_alerts_file(alerts_path(rdir))[-20:]

    def _follow_tick(self) -> None:
        reader = self._reader
        assert reader is not None
        rjson = record_file(reader.rdir)
        try:
            st = rjson.stat()
        except FileNotFoundError:
            return
        # run.json is replaced (a new file) at each write; two writes can share an mtime
        # (the file clock ticks every few ms), so the inode and size count too
        version = (st.st_mtime_ns, st.st_ino, st.st_size)
        if version != self._rec_mtime:
            try:
                rec = json.loads(rjson.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return
            self._rec, self._rec_mtime = rec, version
            self._t0 = float(rec.get("created_at") or 0.0)
        # The record is read (and the writing process looked for) before the segments are
        # listed: when it says the run ended, or the process is gone, its last rows are on
        # disk already (finish() flushes before it writes run.json), so this poll reads them.
        rec = self._rec
        self._proc_gone = rec.get("state") == "running" and process_gone(rec)
        try:
            reader.poll(rec)
        except (OSError, ValueError) as exc:  # a file replaced under us (compaction): retry
            if "No such file" in str(exc) or isinstance(exc, FileNotFoundError):
                return  # the run's end (if it ended) is acted on once the read succeeds
            raise
        if reader.feed is not self._feed:  # rebuilt from scratch (files were merged)
            self._feed = reader.feed
            for env in self._feed.env.values():
                env.reset = True
        if self._media_due():
            self._load_media()
        self._push()
        self._meta(force=True)
        self._follow_alerts(reader.rdir)
        if self.state != "running" and self._thread is not None:  # ended, or crashed
            self._stop.set()
            self._finished_at = time.time()
            self._load_media()
            self._push()
            self._snapshot()
            self._update_fallback(final=True)
            self._ended()

    def _media_due(self) -> bool:
        """Following another process: re-read its images / histograms every few seconds."""
        kt = self._rec.get("history_keys") or {}
        if not any(str(v)[6:] in MEDIA_KINDS for v in kt.values()):
            return False
        now = time.monotonic()
        if now - getattr(self, "_media_read_at", 0.0) < SNAPSHOT_INTERVAL_S:
            return False
        self._media_read_at = now
        return True

    def _load_media(self) -> None:
        """Slider entries of a run folder's images and histograms (from its history)."""
        try:
            self._media.load_history(self._reader.rdir, self._rec.get("history_keys") or {})  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001,S110 - the charts still work without
            pass

    def _ended(self) -> None:
        for fn in list(self._on_end):
            try:
                fn()
            except Exception:  # noqa: BLE001, S110 - a display problem must not stop training
                pass

    def _push(self) -> None:
        feed = self._feed
        names = feed.x_names
        out = {}
        for key, env in feed.env.items():
            d = env.take_delta()
            if d is None or key in self._hidden:
                continue
            frm, pts = d
            col = columns(pts, names)
            col["from"] = frm
            out[key] = col
        keys = [k for k in feed.env if k not in self._hidden]
        if keys != self.metrics:
            self.metrics = keys
        if out:
            self._seq += 1
            self.send({"type": "rows", "seq": self._seq, "series": out})
        media = self._media.take()
        if media:
            self.send({"type": "media", "media": media})
            self.media = self._media.meta()

    def _snapshot(self) -> None:
        self._last_snap = time.monotonic()
        self._series = self._snapshot_value()

    def _snapshot_value(self) -> dict[str, Any]:
        names = self._feed.x_names
        series = {
            k: columns(env.points(), names)
            for k, env in self._feed.env.items()
            if k not in self._hidden
        }
        return {"seq": self._seq, "series": series}

    def _meta(self, force: bool = False) -> None:
        now_m = time.monotonic()
        self._last_meta = now_m
        feed = self._feed
        if self._run is not None:
            run = self._run
            rec = run.record
            names = x_candidates(rec, run.history_keys)
            extra = [n for n in feed.x_names if n not in names]
            if names + extra != feed.x_names:
                feed.x_names = names + extra
            summary = run.summary.as_dict()
            config = run.config.as_dict()
            state = rec.get("state") or "running"
            step = max(feed.last_step, run.step - 1, 0)
        else:
            rec = self._rec
            summary = dict(rec.get("summary") or {})
            config = dict(rec.get("config") or {})
            state = rec.get("state") or ""
            step = max(feed.last_step, int(rec.get("last_step") or 0), 0)
            if state == "running":
                state = "crashed" if self._proc_gone else "running"
        self._hidden = hidden_keys(rec, list(feed.env))
        end = rec.get("finished_at") if state != "running" else None
        error = str(rec.get("error") or "") if state != "finished" else ""
        if state == "running" and error and self._run is not None:  # the cell raised
            state, end = "failed", rec.get("error_at")
        elapsed = max(0.0, (float(end) if end else time.time()) - self._t0) if self._t0 else 0.0
        rows = feed.rows if self._run is not None else step + 1
        if state != "running":
            rate = rows / elapsed if elapsed > 0 else 0.0
        elif self._rate_ref is None:
            rate = self.steps_per_s
            self._rate_ref = (now_m, rows)
        else:
            t_ref, n_ref = self._rate_ref
            rate = (rows - n_ref) / (now_m - t_ref) if now_m > t_ref else self.steps_per_s
            if now_m - t_ref >= 2.0:
                self._rate_ref = (now_m, rows)
        with self.hold_sync():
            self.run_name = str(rec.get("name") or "")
            self.project = str(rec.get("project") or "")
            self.run_id = str(rec.get("id") or "")
            self.state = str(state)
            self.error = error
            self.step = int(step)
            self.elapsed = round(elapsed, 2)
            self.steps_per_s = round(rate, 2) if math.isfinite(rate) else 0.0
            cfg = table_view(config)
            if cfg != self.config:
                self.config = cfg
            summ = table_view({k: v for k, v in summary.items() if not str(k).startswith("_")})
            if summ != self.summary:
                self.summary = summ
            if feed.x_names != self.x_options:
                self.x_options = list(feed.x_names)
            xd = x_defaults(rec, [k for k in feed.env if k not in self._hidden], feed.x_names)
            if xd != self.x_defaults:
                self.x_defaults = xd
            rdir = self._run.dir if self._run is not None else self._reader.rdir  # type: ignore[union-attr]
            _capture_view.update(self, rdir, rec, force)

    def _on_finish(self) -> None:
        """Final state: called on the training thread by ``Run.finish()``."""
        self._stop.set()
        if self._run is not None:
            # the last system sample and the environment are stored after the rows: the
            # static copy (what a reopened notebook shows) waits for them, briefly
            from ..store import wait_for_released

            wait_for_released(timeout=5.0)
        with self._lock:
            if self._run is not None and getattr(self, "_inbox", None) is not None:
                self._drain()
            self._push()
            self._meta(force=True)
            self._snapshot()
            self._finished_at = time.time()
            self._update_fallback(final=True)
            self._ended()
        if self._run is not None:
            self._subscription.cancel()

    # -- messages from the browser ------------------------------------------------------------
    def _on_custom(self, _widget: Any, content: Any, buffers: Any) -> None:
        try:
            kind = content.get("type") if isinstance(content, dict) else None
            if kind == "need_lib":
                _lib.push(self, force=True)
            elif kind == "range":
                self._send_range(content)
            elif kind == "media_snap":
                with self._lock:
                    snap = self._media.snapshot()
                self.send({"type": "media_snap", "media": snap})
            elif kind == "resync":
                with self._lock:
                    snap = self._snapshot_value()
                self.send({"type": "snap", **snap})
        except Exception as exc:  # noqa: BLE001 - never raise into the comm
            self.send({"type": "error", "error": repr(exc)})

    def _send_range(self, content: dict[str, Any]) -> None:
        """Zoom: the points of one metric in a step range, at full resolution."""
        key = str(content["key"])
        s0, s1 = int(content["s0"]), int(content["s1"])
        if self._run is not None:
            if self._run.state == "running":
                self._run.flush()
            rdir = self._run.dir
        else:
            rdir = self._reader.rdir  # type: ignore[union-attr]
        cols = read_range(rdir, key, s0, s1, list(self._feed.x_names), self._max_buckets)
        self.send(
            {"type": "range", "req": content.get("req"), "key": key, "s0": s0, "s1": s1, **cols}
        )

    # -- user API ----------------------------------------------------------------------------
    def chart(self, key: str) -> Any:
        """The ``alt.Chart`` behind one panel chart (down-sampled data, current controls)."""
        with self._lock:
            env = self._feed.env.get(key)
            if env is None:
                msg = f"no metric {key!r} in this panel; it has {self.metrics}"
                raise KeyError(msg)
            pts = columns(env.points(), self._feed.x_names)
        x, smoothing, log_y = self.chart_settings(key)
        if x not in ("step", "time") and x not in pts.get("x", {}):
            x = "step"
        return charts.metric_chart(
            key, charts.series_frame(pts, x), x=x, smoothing=smoothing, log_y=log_y
        )

    def chart_settings(self, key: str) -> tuple[str, float, bool]:
        """``(x axis, smoothing, log scale)`` one chart draws with: its own controls, else
        the panel's, else its ``define_metric`` step metric; step metrics are not smoothed."""
        own = self.chart_opts.get(key) or {}
        x = own.get("x") or (self.x_axis if self.x_axis != "step" else "")
        x = x or self.x_defaults.get(key) or "step"
        smoothing = 0.0 if key in self.x_options else float(own.get("smoothing", self.smoothing))
        return str(x), smoothing, bool(own.get("log_y", self.log_y))

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run this panel follows has ended (or ``timeout`` seconds);
        return its state. Handy after starting a script: ``show(...).wait()``."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.state

    def static_chart(self) -> dict[str, Any]:
        """Small multiples of every metric: the static snapshot's Vega-Lite spec (a dict;
        ``alt.Chart.from_dict`` it to edit)."""
        return charts.panel_spec(self.snapshot_series())

    def snapshot_series(self) -> dict[str, Any]:
        """Each visible metric, down-sampled for the small snapshot charts."""
        with self._lock:
            return {
                k: small_columns(env) for k, env in self._feed.env.items() if k not in self._hidden
            }

    def fallback_state(self) -> dict[str, Any]:
        return {
            "uid": self._uid, "run_name": self.run_name, "project": self.project,
            "run_id": self.run_id, "state": self.state, "error": self.error, "step": self.step,
            "elapsed": self.elapsed, "summary": self.summary, "config": self.config,
            "alerts": self.alerts, "system": self.system, "log_tail": self.log_tail,
            "env_info": self.env_info,
        }  # fmt: skip

    def fallback_bundle(self, final: bool = False) -> dict[str, str]:
        """``text/html`` + ``text/plain`` of the static snapshot (chart image when final)."""
        png = None
        if final and self._feed.env:
            try:
                png = charts.to_png_base64(self.static_chart())
            except Exception:  # noqa: BLE001 - the snapshot without image is still useful
                png = None
        state = self.fallback_state()
        media = self._media.snapshot() if final else None
        html = _fallback.render(state, png, media)
        return {"text/html": html, "text/plain": _fallback.plain(state)}

    def _update_fallback(self, final: bool = False) -> None:
        handle = self._fallback_handle
        if handle is not None:
            handle.update(self.fallback_bundle(final), raw=True)

    def display(self) -> None:
        """Show the panel and, right under it, its static snapshot (hidden while live)."""
        from IPython.display import display

        display(self)

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        ip = get_ipython()
        count = getattr(ip, "execution_count", None)
        if self._shown_in is not None and self._shown_in == count:
            return  # show() already displayed it in this cell: skip the echo of its result
        self._shown_in = count
        charts.warm_png_renderer()  # the snapshot at finish() then takes ~0.2 s, not ~1 s
        data, meta = self._repr_mimebundle_()
        display(data, metadata=meta, raw=True)
        final = self.state != "running"
        self._fallback_handle = display(self.fallback_bundle(final), raw=True, display_id=True)

    def close(self) -> None:
        self._stop.set()
        sub = getattr(self, "_subscription", None)
        if sub is not None:
            sub.cancel()
        super().close()

    def __repr__(self) -> str:
        return (
            f"RunPanel(run={self.run_name!r}, project={self.project!r}, id={self.run_id!r}, "
            f"state={self.state}, step={self.step}, metrics={len(self.metrics)})"
        )
