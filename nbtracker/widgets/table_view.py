"""TableView: a logged (or in-memory) Table in the cell output, queried in DuckDB.

The rows live in a :class:`._table_source.TableSource` (a private, locked-down in-memory
DuckDB). The view sets the ``query`` trait (sort, filter, search, page); the kernel runs
it and syncs only the visible page in ``page``: plain values plus image thumbnails as PNG
bytes, which ipywidgets sends as binary buffers beside the JSON (no base64). Colab's
widget manager drops binary buffers, so there (or with ``NBTRACKER_WIDGET_BUFFERS=0``)
thumbnails travel as ``data:`` URIs instead. A click on a thumbnail asks for the full
image with a custom message; the reply carries the PNG as a buffer the same way.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from ..data_types import _media
from ..data_types._render import STYLE, cell_html, png_uri, thumbnail_png
from ..data_types.image import Image
from ._fallback import HIDE_DEAD_WIDGET
from ._table_source import FILE_STRIDE, ROW, TableSource

PAGE_SIZE = 25
THUMB = 64
_JS = Path(__file__).resolve().parent.parent / "static" / "table_view.js"


def _esm() -> str:
    """The built view script (``npm run build`` -> ``nbtracker/static/table_view.js``)."""
    try:
        return _JS.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = (
            "nbtracker's table view script is missing (static/table_view.js). Reinstall "
            "nbtracker, or build it from a source checkout with `npm install && npm run build`."
        )
        raise RuntimeError(msg) from None


def binary_buffers() -> bool:
    """Whether images may travel as binary buffers (not in Colab, which drops them)."""
    from ._lib import in_colab

    return os.environ.get("NBTRACKER_WIDGET_BUFFERS", "1") != "0" and not in_colab()


class TableView(anywidget.AnyWidget):
    """A paged, sortable, filterable view of a table with image thumbnails.

    Build it with :meth:`for_run` (a table logged in a run; every logged version can be
    picked by step) or :meth:`for_table` (a :class:`nbtracker.Table` in memory).

    Traits
    ------
    title : str
    columns : list of {"name", "type"}
    nrows : int
        Rows in the table (before filtering).
    steps : list of int
        Steps at which the table was logged; ``step`` is the one shown.
    query : dict
        ``{"sort": column or None, "desc": bool, "filter": str, "search": str, "page": int}``
        (set by the view, or from Python).
    page : dict
        ``{"rows": [{"row": n, "cells": [...]}], "offset", "total", "error"}``. An image
        cell is ``{"png": bytes, "w", "h", "caption"}`` (``{"src": "data:..."}`` instead
        of ``png`` where binary buffers are off).
    """

    _esm = _esm()

    title = t.Unicode("").tag(sync=True)
    columns = t.List(t.Dict()).tag(sync=True)
    nrows = t.Int(0).tag(sync=True)
    steps = t.List(t.Int()).tag(sync=True)
    step = t.Int(-1).tag(sync=True)
    query = t.Dict().tag(sync=True)
    page = t.Dict().tag(sync=True)
    page_size = t.Int(PAGE_SIZE).tag(sync=True)
    _uid = t.Unicode("").tag(sync=True)

    _source: TableSource | None = None
    _lock = threading.RLock()  # replaced per instance in __init__
    _unfollow: Any = staticmethod(lambda: None)
    _closing = False

    def __init__(self, *, title: str = "", page_size: int = PAGE_SIZE) -> None:
        super().__init__(
            _uid=secrets.token_hex(8),
            title=title,
            page_size=max(1, min(int(page_size), 500)),
            query={"sort": None, "desc": False, "filter": "", "search": "", "page": 0},
        )
        self._run_dir: Path | None = None
        self._run_dirs: list[Path] = []
        self._key: str | None = None
        self._table: Any = None
        self._thumbs: OrderedDict[Any, dict[str, Any]] = OrderedDict()
        self._seq = 0
        self._binary = binary_buffers()
        self._lock = threading.RLock()  # queries come from the kernel thread and the follower
        self.on_msg(self._on_custom)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def for_table(cls, table: Any, *, title: str = "", page_size: int = PAGE_SIZE) -> TableView:
        """A view of a :class:`nbtracker.Table` in memory (a snapshot of it now)."""
        import pyarrow as pa

        from ..data_types._arrow import to_arrow

        self = cls(title=title, page_size=page_size)
        self._table = table
        arrow = to_arrow(table, "index", None, {})
        arrow = arrow.append_column(ROW, pa.array(range(len(table.data)), pa.int64()))
        self._set_source(TableSource.from_arrow(arrow, list(table.columns), list(table._types)))
        self._refresh()
        return self

    @classmethod
    def for_run(
        cls, run: Any, key: str, step: int | None = None, *, page_size: int = PAGE_SIZE
    ) -> TableView:
        """A view of the table logged under ``key`` in a run (a ``Run`` or its folder).

        ``step`` picks the version (default: the latest; the view's step selector switches
        between versions). A list of steps, or ``"all"``, shows those versions together
        with a ``step`` column (:meth:`compare_steps`)."""
        from .. import media

        run_dir = Path(getattr(run, "dir", run))
        versions = media.table_versions(run_dir, key)
        if isinstance(step, (list, tuple, range)) or step == "all":
            return cls.compare_steps(run, key, None if step == "all" else step, page_size=page_size)
        path = media.table_path(run_dir, key, step)  # raises TableNotFound with a hint
        self = cls(title=key, page_size=page_size)
        self._run_dir, self._key = run_dir, key
        self.steps = [s for s, _ in versions]
        self._set_source(TableSource.from_files([path]))
        self.step = int(path.stem)
        self.observe(self._on_step, "step")
        self._refresh()
        self._start_copy()
        if hasattr(run, "subscribe") and getattr(run, "state", None) == "running":
            self._follow_run(run)
        return self

    @classmethod
    def compare_steps(
        cls, run: Any, key: str, steps: Any = None, *, page_size: int = PAGE_SIZE
    ) -> TableView:
        """Several logged versions of one table in one view, with a ``step`` column first.

        ``steps`` lists the steps to include (default: every version). Sort by a score and
        filter across versions, e.g. ``step = 10 AND pred != target`` or, to follow one
        example through training, search its caption or filter on an id column.
        """
        from .. import media

        run_dir = Path(getattr(run, "dir", run))
        versions = dict(media.table_versions(run_dir, key))
        wanted = sorted(versions) if steps is None else [int(s) for s in steps]
        paths = [media.table_path(run_dir, key, s) for s in wanted]  # TableNotFound: lists steps
        if not paths:
            msg = f"no table logged under {key!r} in {run_dir}"
            raise media.TableNotFound(msg)
        shown = ", ".join(map(str, wanted[:6])) + (", ..." if len(wanted) > 6 else "")
        self = cls(title=f"{key} (steps {shown})", page_size=page_size)
        self._run_dirs, self._key = [run_dir] * len(paths), key
        self._set_source(TableSource.from_files(paths, wanted, "step"))
        self._refresh()
        self._start_copy()
        return self

    def _follow_run(self, run: Any) -> None:
        """Show new versions as the run logs them (while the view is on the latest one).

        The hook runs on the training thread, so it only sets an event; a thread of the
        view reloads at most twice a second (kernel -> browser updates arrive while a cell
        runs).
        """
        wake = threading.Event()
        done = threading.Event()
        key = self._key

        def hook(event: str, payload: Any) -> None:
            if event == "row" and key in payload[1]:
                wake.set()
            elif event == "finish":
                done.set()
                wake.set()

        def follow() -> None:
            from .. import media

            while self._run_dir is not None:
                wake.wait()
                wake.clear()
                if self._source is None:
                    break
                steps = [s for s, _ in media.table_versions(self._run_dir, key)]
                with self._lock:
                    if self._source is None:  # closed meanwhile
                        break
                    latest = bool(self.steps) and self.step == self.steps[-1]
                    self.steps = steps
                    if latest and steps and steps[-1] != self.step:
                        self.step = steps[-1]  # -> _on_step loads it
                if done.is_set():  # the run finished: that was the last version
                    if not self._closing:
                        self._update_fallback()  # reopened notebooks show the final table
                    break
                done.wait(0.5)
            sub.cancel()

        self._unfollow = lambda: (done.set(), wake.set())
        sub = run.subscribe(hook)
        threading.Thread(target=follow, name="nbtracker-table-follow", daemon=True).start()

    @classmethod
    def compare(
        cls, runs: list[Any], key: str, step: int | None = None, *, page_size: int = PAGE_SIZE
    ) -> TableView:
        """One view of the table ``key`` from several runs, with a ``run`` column first.

        Each run contributes its latest version (or the one at ``step``). Sort by a score
        and filter (``run = 'swift-river-3' AND pred != target``) across all of them.
        """
        from .. import media

        dirs = [Path(getattr(r, "dir", r)) for r in runs]
        if not dirs:
            msg = "compare() needs at least one run"
            raise ValueError(msg)
        labels = []
        for r, d in zip(runs, dirs, strict=True):
            name = getattr(r, "name", None) or d.name
            labels.append(name if name not in labels else f"{name} ({d.name})")
        paths = [media.table_path(d, key, step) for d in dirs]
        self = cls(title=f"{key} ({len(dirs)} runs)", page_size=page_size)
        self._run_dirs, self._key = dirs, key
        self._set_source(TableSource.from_files(paths, labels))
        self._refresh()
        self._start_copy()
        return self

    def _set_source(self, source: TableSource) -> None:
        """Show these rows from now on (the previous source is closed)."""
        if self._source is not None:
            self._source.close()
        self._source = source
        self._thumbs.clear()
        self.nrows = source.nrows
        self.columns = [
            {"name": n, "type": k or "none"}
            for n, k in zip(source.names, source.kinds, strict=True)
        ]

    def _start_copy(self) -> None:
        if self._source is not None:
            self._source.start_copy()

    # -- queries ---------------------------------------------------------------------------
    @t.observe("query", "page_size")
    def _on_query(self, change: dict[str, Any]) -> None:
        if self._source is not None:
            self._refresh()

    def _on_step(self, change: dict[str, Any]) -> None:
        from .. import media

        if self._run_dir is None or change["new"] == change["old"]:
            return
        with self._lock:
            try:
                path = media.table_path(self._run_dir, self._key, int(change["new"]))
                self._set_source(TableSource.from_files([path]))
            except Exception as exc:  # noqa: BLE001 - shown in the view
                self.page = {**self.page, "error": f"step {change['new']}: {exc}"}
                return
            self._refresh()
            self._start_copy()

    def _refresh(self) -> None:
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        import duckdb

        self._seq += 1
        q = dict(self.query)
        ps = self.page_size
        try:
            assert self._source is not None
            rows, total, page = self._source.page(q, ps)
        except (duckdb.Error, ValueError, TypeError) as exc:
            msg = str(exc).split("\n")[0]
            self.page = {"rows": [], "offset": 0, "total": 0, "error": f"filter: {msg}",
                         "seq": self._seq}  # fmt: skip
            return
        self.page = {
            "rows": [{"row": r[0], "cells": self._cells(r[0], r[1:])} for r in rows],
            "offset": page * ps,
            "total": total,
            "error": None,
            "seq": self._seq,  # every answer differs, so the view always hears back
        }

    def _cells(self, row: int, values: tuple[Any, ...]) -> list[Any]:
        out: list[Any] = []
        assert self._source is not None
        for j, (v, kind) in enumerate(zip(values, self._source.kinds, strict=True)):
            if v is None:
                out.append(None)
            elif kind == "image":
                out.append(self._thumb(row, j, v))
            elif isinstance(v, float) and not math.isfinite(v):
                out.append(str(v))
            elif isinstance(v, (bool, int, float, str)):
                out.append(v)
            else:
                out.append(str(v))
        return out

    # -- images ----------------------------------------------------------------------------
    def _image(self, row: int, col: int, cell: dict[str, Any]) -> Image:
        if self._table is not None:
            return self._table.data[int(cell["idx"])][col]
        run_dir = self._run_dirs[row // FILE_STRIDE] if self._run_dirs else self._run_dir
        assert run_dir is not None
        return Image._from_file(_media.resolve_in_run(run_dir, cell["path"]), cell)

    def _thumb(self, row: int, col: int, cell: dict[str, Any]) -> dict[str, Any]:
        key = (cell["path"], cell.get("offset")) if cell.get("path") else (row, col)
        hit = self._thumbs.get(key)
        if hit is None:
            try:
                img = self._image(row, col, cell)
                png = thumbnail_png(img, THUMB)
            except (OSError, ValueError) as exc:
                return {"src": "", "w": 0, "h": 0, "caption": f"(missing image: {exc})"}
            w, h = int(cell["width"]), int(cell["height"])
            zoom = min(THUMB / max(w, h), 4.0)
            data = {"png": png} if self._binary else {"src": png_uri(png)}
            hit = {**data, "w": max(1, round(w * zoom)), "h": max(1, round(h * zoom))}
            self._thumbs[key] = hit
            if len(self._thumbs) > 4096:
                self._thumbs.popitem(last=False)
        return {**hit, "caption": cell.get("caption")}

    def _on_custom(self, widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "image":
            return
        col_name = content.get("col")
        reply: dict[str, Any] = {"type": "image", "id": content.get("id")}
        buffers: list[bytes] = []
        try:
            row = int(content.get("row"))
            with self._lock:
                assert self._source is not None
                col = self._source.names.index(col_name)
                cell = self._source.cell(row, col_name)
            img = self._image(row, col, cell)
            png = img.png_bytes()
            if self._binary:
                buffers = [png]
            else:
                reply["src"] = png_uri(png)
            reply["caption"] = img.caption
        except Exception as exc:  # noqa: BLE001 - the view shows the thumbnail instead
            reply["error"] = str(exc)
        self.send(reply, buffers or None)

    # -- display ---------------------------------------------------------------------------
    def _fallback_html(self, n: int = 10) -> str:
        with self._lock:
            return self._fallback_html_locked(n)

    def _fallback_html_locked(self, n: int) -> str:
        assert self._source is not None
        rows = self._source.first_rows(n)
        body = []
        for r in rows:
            tds = []
            for j, (v, kind) in enumerate(zip(r[1:], self._source.kinds, strict=True)):
                if kind == "image" and v is not None:
                    try:
                        v = self._image(r[0], j, v)
                    except (OSError, ValueError):
                        v = None
                elif kind == "html" and v is not None:
                    kind = "str"
                tds.append(f"<td>{cell_html(v, kind)}</td>")
            body.append("<tr>" + "".join(tds) + "</tr>")
        from html import escape

        head = "".join(f"<th>{escape(c)}</th>" for c in self._source.names)
        uid = "".join(c for c in self._uid if c in "0123456789abcdef")
        shown = min(n, self.nrows)
        at = f" (step {self.step})" if self.steps else ""
        return (
            f'<div class="nbt-fallback" data-nbt-fallback="{uid}">{STYLE}{HIDE_DEAD_WIDGET}'
            f'<div class="nbt-more">{escape(self.title)}{at}: first {shown} of {self.nrows} rows</div>'
            f'<table class="nbt-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            "</tbody></table></div>"
        )

    def fallback_bundle(self) -> dict[str, str]:
        """The static snapshot (first rows with thumbnails), every string escaped."""
        try:
            html = self._fallback_html()
        except Exception:  # noqa: BLE001 - the fallback must never break display
            html = ""
        return {"text/html": html, "text/plain": repr(self)}

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, plus the snapshot as ``text/html`` (nbconvert, GitHub, VS Code)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data.update(self.fallback_bundle())
        return bundle

    def _ipython_display_(self) -> None:
        """In IPython: the widget, and right under it the snapshot as its own output, which
        the live view hides (``[data-nbt-fallback=uid]``) and which a reopened notebook,
        nbconvert or GitHub show instead (as the run panel does; see design.md 4)."""
        from IPython import get_ipython
        from IPython.display import display

        count = getattr(get_ipython(), "execution_count", None)
        if count is not None and getattr(self, "_shown_in", None) == count:
            return  # show() already displayed it in this cell: skip the echo of its result
        self._shown_in = count
        data, meta = anywidget.AnyWidget._repr_mimebundle_(self)  # type: ignore[misc]
        data["text/plain"] = repr(self)
        display(data, metadata=meta, raw=True)
        self._fallback_handle = display(self.fallback_bundle(), raw=True, display_id=True)

    def _update_fallback(self) -> None:
        handle = getattr(self, "_fallback_handle", None)
        if handle is not None:
            try:
                handle.update(self.fallback_bundle(), raw=True)
            except Exception:  # noqa: BLE001,S110 - display only; never break the follower
                pass

    def __repr__(self) -> str:
        cols = len(self.columns)
        return f"TableView({self.title!r}: {self.nrows} rows x {cols} columns)"

    def close(self) -> None:
        self._closing = True
        self._unfollow()
        with self._lock:
            if self._source is not None:
                self._source.close()
                self._source = None
        super().close()
