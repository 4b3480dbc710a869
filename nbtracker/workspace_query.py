"""The runs workspace's data: one row per run in an in-memory DuckDB table, and the
filter language of its runs table, parsed into parameterised SQL.

Kept apart from the widget (``nbtracker.widgets.workspace``) so that everything the
workspace shows can be reproduced without a browser: :class:`RunsTable` answers sort,
filter, search and group with DuckDB, and :func:`parse_filter` turns
``config.lr < 0.01 and state = 'finished'`` into ``("config.lr" < ? AND "state" = ?)``
with the values as parameters. Column names only ever come from the table's own list
(quoted by us), values only ever travel as parameters: user text never becomes SQL.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._util import flatten
from .errors import UsageError

# 15 colours that stay apart from each other on white and on a dark theme; a run's colour is a hash of its
# id into this list, so it is the same in every view, session and static snapshot
# 15 run colours told apart on light and dark themes: Tableau's first 9, then 6 picked
# greedily for the largest CIELAB distance to all before (lightness 30-80). Closest pair:
# delta E 27.7 (the earlier set had two purples, #9467bd / #7b4173, and pairs at 15.8).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#637939", "#c5b0d5", "#ff1493", "#a6761d", "#ff9896", "#1b9e77",
)  # fmt: skip


def _slot(run_id: str) -> int:
    digest = hashlib.blake2s(str(run_id).encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % len(PALETTE)


def run_color(run_id: str) -> str:
    """The colour of a run: a hash of its id into :data:`PALETTE` (stable everywhere)."""
    return PALETTE[_slot(run_id)]


def run_colors(run_ids: Sequence[str]) -> dict[str, str]:
    """Colours of runs drawn together (``run_ids`` oldest first): each run's hashed colour,
    except that a run whose colour an older run of the set already has takes the next free
    one (15 colours: with 5 runs two hashes collide about half the time). So a run keeps its
    colour in every view where no older run took it, and lines drawn together differ."""
    used: set[str] = set()
    out: dict[str, str] = {}
    for rid in run_ids:
        i = _slot(rid)
        color = PALETTE[i]
        for k in range(len(PALETTE)):
            if PALETTE[(i + k) % len(PALETTE)] not in used:
                color = PALETTE[(i + k) % len(PALETTE)]
                break
        out[rid] = color
        used.add(color)
    return out


# -- the filter language -----------------------------------------------------------------------
class FilterError(UsageError, ValueError):
    """A filter expression that cannot be read; the message says where and what to write."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<quoted>`(?:[^`]|``)+`)
    | (?P<op><=|>=|!=|<>|==|=|<|>|~|\(|\)|,)
    | (?P<name>[A-Za-z_][A-Za-z0-9_./:\-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false", "like", "contains"}
_CMP = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass
class _Tok:
    kind: str  # num, str, name, op, kw, end
    text: str
    pos: int


def _tokens(expr: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            at = len(expr) - len(expr[pos:].lstrip())
            msg = f"filter: cannot read {expr[at : at + 12]!r} at position {at}"
            raise FilterError(msg)
        kind = m.lastgroup or ""
        text = m.group(kind)
        start = m.start(kind)
        if kind == "name" and text.lower() in _KEYWORDS:
            kind, text = "kw", text.lower()
        elif kind == "quoted":
            kind, text = "name", text[1:-1].replace("``", "`")
        elif kind == "str":
            text = text[1:-1].replace(text[0] * 2, text[0])
        out.append(_Tok(kind, text, start))
        pos = m.end()
    out.append(_Tok("end", "", len(expr)))
    return out


class _Parser:
    """Recursive descent over: or / and / not / comparison; values become parameters."""

    def __init__(self, expr: str, columns: dict[str, str]) -> None:
        self.expr = expr
        self.columns = columns
        self.toks = _tokens(expr)
        self.i = 0
        self.params: list[Any] = []

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, what: str, tok: _Tok | None = None) -> FilterError:
        tok = tok or self.peek()
        got = "the end" if tok.kind == "end" else repr(tok.text)
        return FilterError(f"filter: expected {what} at position {tok.pos}, got {got}")

    def parse(self) -> str:
        if self.peek().kind == "end":
            return ""
        sql = self.or_()
        if self.peek().kind != "end":
            msg = "'and', 'or' or the end"
            raise self.fail(msg)
        return sql

    def or_(self) -> str:
        parts = [self.and_()]
        while self.peek().kind == "kw" and self.peek().text == "or":
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_(self) -> str:
        parts = [self.not_()]
        while self.peek().kind == "kw" and self.peek().text == "and":
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_(self) -> str:
        if self.peek().kind == "kw" and self.peek().text == "not":
            self.take()
            return f"(NOT {self.not_()})"
        if self.peek().kind == "op" and self.peek().text == "(":
            self.take()
            inner = self.or_()
            if not (self.peek().kind == "op" and self.peek().text == ")"):
                msg = "')'"
                raise self.fail(msg)
            self.take()
            return inner
        return self.cmp()

    def column(self) -> tuple[str, str]:
        tok = self.take()
        if tok.kind != "name":
            msg = "a column name (config.lr, summary.loss, state, ...)"
            raise self.fail(msg, tok)
        name = resolve_column(tok.text, self.columns, tok.pos)
        return quote(name), self.columns[name]

    def value(self) -> Any:
        tok = self.take()
        if tok.kind == "num":
            v = float(tok.text)
            return int(v) if v.is_integer() and abs(v) < 2**53 else v
        if tok.kind == "str":
            return tok.text
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.kind == "name":  # a bare word as a value: state = finished
            return tok.text
        msg = "a value (a number or 'text')"
        raise self.fail(msg, tok)

    def bind(self, col: str, kind: str, value: Any) -> str:
        """``?`` for ``value``, cast to the column's kind (numbers compare as numbers)."""
        if kind == "number":
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    msg = f"filter: {col} holds numbers; {value!r} is not a number"
                    raise FilterError(msg) from None
            self.params.append(float(value))
            return col, "?"
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.params.append(value if isinstance(value, str) else _plain(value))
        return col, "?"

    def cmp(self) -> str:
        col, kind = self.column()
        tok = self.take()
        if tok.kind == "op" and tok.text in _CMP:
            c, p = self.bind(col, kind, self.value())
            if kind != "number" and tok.text in ("<", "<=", ">", ">="):
                return f"{c} {_CMP[tok.text]} {p}"
            return f"{c} {_CMP[tok.text]} {p}"
        if (tok.kind == "op" and tok.text == "~") or (
            tok.kind == "kw" and tok.text in ("contains", "like")
        ):
            v = self.value()
            text = str(v)
            if tok.text == "like":
                self.params.append(text)
                return f"CAST({col} AS VARCHAR) ILIKE ?"
            self.params.append("%" + _like_escape(text) + "%")
            return f"CAST({col} AS VARCHAR) ILIKE ? ESCAPE '\\'"
        if tok.kind == "kw" and tok.text == "is":
            neg = self.peek().kind == "kw" and self.peek().text == "not"
            if neg:
                self.take()
            end = self.take()
            if not (end.kind == "kw" and end.text == "null"):
                msg = "null"
                raise self.fail(msg, end)
            return f"{col} IS {'NOT ' if neg else ''}NULL"
        negate = False
        if tok.kind == "kw" and tok.text == "not":
            negate = True
            tok = self.take()
        if tok.kind == "kw" and tok.text == "in":
            opener = self.take()
            if not (opener.kind == "op" and opener.text == "("):
                msg = "'(' after in"
                raise self.fail(msg, opener)
            marks = []
            while True:
                marks.append(self.bind(col, kind, self.value())[1])
                sep = self.take()
                if sep.kind == "op" and sep.text == ")":
                    break
                if not (sep.kind == "op" and sep.text == ","):
                    msg = "',' or ')'"
                    raise self.fail(msg, sep)
            return f"{col} {'NOT ' if negate else ''}IN ({', '.join(marks)})"
        msg = "a comparison (=, !=, <, <=, >, >=, ~, in, is null)"
        raise self.fail(msg, tok)


def _plain(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def quote(name: str) -> str:
    """A column name as a DuckDB identifier (only ever our own column names)."""
    return '"' + name.replace('"', '""') + '"'


def resolve_column(name: str, columns: dict[str, str], pos: int = 0) -> str:
    """The table's column meant by ``name``: itself, or ``summary.<name>`` /
    ``config.<name>`` for a bare metric or parameter name; else a :class:`FilterError`
    listing the closest names."""
    for cand in (name, f"summary.{name}", f"config.{name}"):
        if cand in columns:
            return cand
    lower = {c.lower(): c for c in columns}
    if name.lower() in lower:
        return lower[name.lower()]
    close = difflib.get_close_matches(name, list(columns), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    some = ", ".join(list(columns)[:8])
    msg = f"filter: no column {name!r} (at position {pos}){hint} Columns include: {some}, ..."
    raise FilterError(msg)


def parse_filter(expr: str, columns: dict[str, str]) -> tuple[str, list[Any]]:
    """``(sql, params)`` for a filter expression over ``columns`` (name -> ``number`` or
    ``text``). Grammar: comparisons ``col = v``, ``!=``, ``<``, ``<=``, ``>``, ``>=``,
    ``col ~ 'part'`` (contains, any case), ``col like 'a%'``, ``col in (1, 2)``,
    ``col is [not] null``, joined with ``and`` / ``or`` / ``not`` and parentheses. Names
    with spaces or operators go in backticks: ```summary.val/acc` > 0.9``."""
    p = _Parser(str(expr or ""), columns)
    return p.parse(), p.params


# -- the runs table ---------------------------------------------------------------------------
BASE = ("name", "state", "created", "runtime", "tags", "group", "job_type", "sweep", "run_id")
BASE_KINDS = {"created": "number", "runtime": "number"}


def env_columns(meta: Any) -> dict[str, str]:
    """The environment a run was captured in, as short texts for the runs table (no local
    paths: the program by its name in the repository)."""
    if not isinstance(meta, dict):
        return {}
    out: dict[str, str] = {}
    git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
    if git.get("commit"):
        out["git"] = (f"{git['branch']} @ " if git.get("branch") else "") + str(git["commit"])[:10]
    prog = meta.get("codePath") or (
        str(meta["program"]).replace("\\", "/").rsplit("/", 1)[-1] if meta.get("program") else ""
    )
    if prog:
        out["program"] = str(prog)
    for key in ("host", "python", "gpu"):
        if meta.get(key):
            out[key] = str(meta[key])
    return {k: v[:200] for k, v in out.items()}


def _alerts_cell(store: Any, rec: dict[str, Any]) -> str | None:
    """``"3 · WARN: loss diverged"``: how many alerts a run raised and its latest."""
    from .alerts import read_alerts_file
    from .store import alerts_path

    try:
        path = alerts_path(store.root / str(rec["dir"]))
        got = read_alerts_file(path) if path.exists() else []
    except (KeyError, AttributeError, TypeError, OSError):  # no folder (a team store's row)
        return None
    if not got:
        return None
    last = got[-1]
    return f"{len(got)} · {last.get('level') or 'INFO'}: {str(last.get('title') or '')[:120]}"


def _kind(values: list[Any]) -> str:
    seen = [v for v in values if v is not None]
    if seen and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        return "number"
    return "text"


def _cell(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return v
    return json.dumps(v, default=str)


class RunsTable:
    """Every run of a project (or of a list of runs) as one row in DuckDB: base columns,
    ``config.*`` and ``summary.*`` (flattened; numbers as DOUBLE, the rest as text)."""

    def __init__(
        self,
        store: Any,
        project: str | None = None,
        *,
        run_ids: Sequence[str] | None = None,
        sweep: str | None = None,
    ) -> None:
        from . import query

        self.store = store
        self.project = project
        self.run_ids = None if run_ids is None else [str(r) for r in run_ids]
        self.sweep = sweep
        # ranges brushed on parallel-coordinates axes: {column: (low, high)}; every question
        # below answers for the runs inside them too
        self.brush: dict[str, tuple[float, float]] = {}
        self.con = query.fresh_duck()
        self.columns: dict[str, str] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.loaded_at = 0.0

    def close(self) -> None:
        self.con.close()

    def refresh(self, records: list[dict[str, Any]] | None = None) -> None:
        """Read the runs again (catalog + run folders) and rebuild the table."""
        from . import query

        if records is None:
            records = query.load_runs(self.store, self.project)
        if self.run_ids is not None:
            wanted = set(self.run_ids)
            records = [r for r in records if r.get("id") in wanted]
        if self.sweep is not None:
            records = [r for r in records if _sweep_of(r) == self.sweep]
        self.load(records)

    def load(self, records: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        now = time.time()
        self.records = {str(r["id"]): r for r in records}
        cols: dict[str, list[Any]] = {c: [] for c in BASE}
        cols["project"] = []
        flat_cfg = [flatten(r.get("config") or {}) for r in records]
        flat_sum = [
            {k: v for k, v in flatten(r.get("summary") or {}).items() if _summary_key(k, v)}
            for r in records
        ]
        cfg_keys = _ordered_keys(flat_cfg)
        sum_keys = _ordered_keys(flat_sum)
        for r in records:
            end = r.get("finished_at") or (now if r.get("state") == "running" else None)
            start = r.get("created_at")
            cols["name"].append(str(r.get("name") or r.get("id")))
            cols["state"].append(str(r.get("state") or ""))
            cols["created"].append(float(start) if start else None)
            cols["runtime"].append(max(0.0, float(end) - float(start)) if end and start else None)
            cols["tags"].append(", ".join(str(t) for t in r.get("tags") or []))
            cols["group"].append(r.get("group"))
            cols["job_type"].append(r.get("job_type"))
            cols["sweep"].append(_sweep_of(r))
            cols["run_id"].append(str(r["id"]))
            cols["project"].append(str(r.get("project") or ""))
        extra = [_alerts_cell(self.store, r) for r in records]
        if any(extra):
            cols["alerts"] = extra
        envs = [env_columns(r.get("metadata")) for r in records]
        for k in _ordered_keys(envs):
            cols[f"env.{k}"] = [e.get(k) for e in envs]
        kinds = dict.fromkeys(BASE, "text")
        kinds.update(BASE_KINDS)
        kinds["project"] = "text"
        for name in cols:
            kinds.setdefault(name, "text")  # alerts, env.*
        for prefix, flats, keys in (
            ("config.", flat_cfg, cfg_keys),
            ("summary.", flat_sum, sum_keys),
        ):
            for k in keys:
                vals = [f.get(k) for f in flats]
                kind = _kind(vals)
                name = prefix + k
                kinds[name] = kind
                if kind == "number":
                    cols[name] = [None if v is None or v != v else float(v) for v in vals]
                else:
                    cols[name] = [_cell(v) for v in vals]
        arrays = {
            n: pa.array(v, pa.float64() if kinds[n] == "number" else pa.string())
            for n, v in cols.items()
        }
        table = pa.table(arrays)
        self.con.register("_runs_in", table)
        self.con.execute("CREATE OR REPLACE TABLE runs AS FROM _runs_in")
        self.con.unregister("_runs_in")
        self.columns = kinds
        self.loaded_at = now

    # -- questions the table answers -----------------------------------------------------------
    def where(
        self, filter: str = "", search: str = "", brush: dict[str, Any] | None = None
    ) -> tuple[str, list[Any]]:
        """``("WHERE ...", params)`` of a filter expression, a name search and the brushed
        ranges (default: the table's own :attr:`brush`)."""
        sql, params = parse_filter(filter, self.columns)
        clauses = [sql] if sql else []
        for name, (lo, hi) in (self.brush if brush is None else brush).items():
            col = resolve_column(str(name), self.columns)
            if self.columns[col] != "number":
                msg = f"{col} holds text; only columns of numbers have a range to brush"
                raise FilterError(msg)
            clauses.append(f"{quote(col)} BETWEEN ? AND ?")
            params += [float(lo), float(hi)]
        if search:
            clauses.append("(name ILIKE ? ESCAPE '\\' OR run_id ILIKE ? ESCAPE '\\')")
            pat = "%" + _like_escape(str(search)) + "%"
            params += [pat, pat]
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def order(self, sort: Sequence[tuple[str, bool]] | None) -> str:
        parts = []
        for item in sort or ():
            try:
                name, desc = item
            except (TypeError, ValueError):  # not a [column, descending] pair: ignored
                continue
            col = resolve_column(str(name), self.columns)
            parts.append(f"{quote(col)} {'DESC' if desc else 'ASC'} NULLS LAST")
        parts.append('"created" DESC NULLS LAST, "run_id"')
        return "ORDER BY " + ", ".join(parts)

    def ids(
        self,
        filter: str = "",
        search: str = "",
        sort: Sequence[tuple[str, bool]] | None = None,
        brush: dict[str, Any] | None = None,
    ) -> list[str]:
        """The run ids that pass the filter, search and brush, in sort order."""
        where, params = self.where(filter, search, brush)
        rows = self.con.execute(
            f"SELECT run_id FROM runs {where} {self.order(sort)}", params
        ).fetchall()
        return [r[0] for r in rows]

    def page(
        self,
        columns: Sequence[str],
        filter: str = "",
        search: str = "",
        sort: Sequence[tuple[str, bool]] | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[list[Any]], int]:
        """One page of rows (``run_id`` first, then ``columns``) and the number of runs
        that pass."""
        cols = ["run_id", *[resolve_column(c, self.columns) for c in columns]]
        where, params = self.where(filter, search)
        total = self.con.execute(f"SELECT count(*) FROM runs {where}", params).fetchall()[0][0]
        sel = ", ".join(quote(c) for c in cols)
        rows = self.con.execute(
            f"SELECT {sel} FROM runs {where} {self.order(sort)} LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        ).fetchall()
        return [[_json_safe(v) for v in r] for r in rows], int(total)

    def groups(
        self, by: Sequence[str], filter: str = "", search: str = "", metrics: Sequence[str] = ()
    ) -> tuple[list[str], list[list[Any]]]:
        """Per group of ``by`` columns: count, and mean / min / max of each summary metric
        (``metrics``, default: every numeric summary column). Returns (header, rows)."""
        keys = [resolve_column(c, self.columns) for c in by]
        if not keys:
            return [], []
        nums = [resolve_column(m, self.columns) for m in metrics] or [
            c for c, k in self.columns.items() if c.startswith("summary.") and k == "number"
        ]
        where, params = self.where(filter, search)
        aggs = ["count(*)"]
        head = [*keys, "count"]
        for m in nums:
            aggs += [f"avg({quote(m)})", f"min({quote(m)})", f"max({quote(m)})"]
            head += [f"{m} mean", f"{m} min", f"{m} max"]
        ks = ", ".join(quote(k) for k in keys)
        rows = self.con.execute(
            f"SELECT {ks}, {', '.join(aggs)} FROM runs {where} GROUP BY ALL ORDER BY {ks} NULLS LAST",
            params,
        ).fetchall()
        return head, [[_json_safe(v) for v in r] for r in rows]

    def group_of(self, by: Sequence[str]) -> dict[str, str]:
        """Each run's group label (the ``by`` values joined with " / ")."""
        keys = [resolve_column(c, self.columns) for c in by]
        if not keys:
            return {}
        parts = " || ' / ' || ".join(f"coalesce(CAST({quote(k)} AS VARCHAR), '–')" for k in keys)
        return dict(self.con.execute(f"SELECT run_id, {parts} FROM runs").fetchall())

    def frame(
        self,
        filter: str = "",
        search: str = "",
        sort: Sequence[tuple[str, bool]] | None = None,
        group: Sequence[str] = (),
    ) -> Any:
        """The current view as a pandas DataFrame (grouped: one row per group)."""
        import pandas as pd

        if group:
            head, rows = self.groups(group, filter, search)
            return pd.DataFrame(rows, columns=head)
        where, params = self.where(filter, search)
        return self.con.execute(f"SELECT * FROM runs {where} {self.order(sort)}", params).df()

    def values(self, names: Sequence[str], ids: Sequence[str]) -> list[list[Any]]:
        """``names`` columns of the runs ``ids`` (in that order): parallel coordinates,
        scatter, importance."""
        cols = ", ".join(quote(resolve_column(n, self.columns)) for n in names)
        got = {
            r[0]: list(r[1:])
            for r in self.con.execute(
                f"SELECT run_id, {cols} FROM runs WHERE list_contains(?, run_id)", [list(ids)]
            ).fetchall()
        }
        return [[_json_safe(v) for v in got[i]] for i in ids if i in got]


def _summary_key(k: str, v: Any) -> bool:
    if k.startswith("_"):
        return False
    return not (isinstance(v, str) and v.startswith('{"_type"'))


def _ordered_keys(flats: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for f in flats:
        for k in f:
            if k not in seen:
                seen[k] = None
    return list(seen)


def _sweep_of(rec: dict[str, Any]) -> str | None:
    s = rec.get("sweep_id") or rec.get("sweep")
    return None if s is None else str(s)


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# -- parameter importance ---------------------------------------------------------------------
def importance(table: RunsTable, metric: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    """For each numeric config parameter: its correlation with ``metric`` over the runs
    ``ids`` and a random-forest importance (scikit-learn), as W&B's importance panel shows.
    Sorted by importance. Needs at least 3 runs with the metric."""
    import numpy as np

    target = resolve_column(metric, table.columns)
    params = [c for c, k in table.columns.items() if c.startswith("config.") and k == "number"]
    if not params:
        return []
    rows = table.values([target, *params], ids)
    data = np.array([[np.nan if v is None else float(v) for v in r] for r in rows], dtype=float)
    if data.size == 0:
        return []
    data = data[np.isfinite(data[:, 0])]
    if len(data) < 3:
        return []
    y, x = data[:, 0], data[:, 1:]
    keep = [j for j in range(x.shape[1]) if np.isfinite(x[:, j]).sum() >= 2]
    if not keep:
        return []
    x = x[:, keep]
    names = [params[j] for j in keep]
    col_mean = np.nanmean(x, axis=0)
    x = np.where(np.isfinite(x), x, col_mean)
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1)
    forest.fit(x, y)
    out = []
    for j, name in enumerate(names):
        col = x[:, j]
        corr = 0.0
        if col.std() > 0 and y.std() > 0:
            corr = float(np.corrcoef(col, y)[0, 1])
        out.append(
            {
                "param": name,
                "importance": float(forest.feature_importances_[j]),
                "correlation": corr,
            }
        )
    out.sort(key=lambda d: -d["importance"])
    return out
