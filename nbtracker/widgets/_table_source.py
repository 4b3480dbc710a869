"""Where a TableView's rows live and how they are queried: a private in-memory DuckDB.

A source is a view over one or more logged Parquet files (copied into memory in the
background, after which sorts run on the copy, 2-5x faster), or an Arrow table for a
table in memory. The connection is locked with ``enable_external_access=false``, so only
the source's own files stay readable. Filters are DuckDB expressions over the columns
(``pred != target``, ``score_3 > 0.5 AND name ILIKE '%cat%'``), parsed as one
expression through the relational API, never spliced into a statement.

Row ids (column ``__nbt_row``) are ``file index * 10**12 + row in file``: stable and
unique, and the file index says which run folder an image path is relative to.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .._util import sql_ident, sql_literal

ROW = "__nbt_row"
FILE_STRIDE = 10**12
_TEXT_KINDS = ("str", "list", "dict", "html", "mixed")


def _connect() -> Any:
    import duckdb

    return duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})


def _lock_down(con: Any, allowed: list[str] | None = None) -> None:
    if allowed:
        con.execute("SET allowed_paths = ?", [allowed])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class TableSource:
    """One table's rows in DuckDB: ``names`` and ``kinds`` of its columns, ``nrows``."""

    def __init__(self, con: Any, names: list[str], kinds: list[str | None]) -> None:
        self.con: Any = con
        self.names, self.kinds = names, kinds
        self.src = "t"  # the view over the files, then "t_mem" once copied into memory
        self.nrows = int(con.execute("SELECT count(*) FROM t").fetchall()[0][0])
        self._copier: threading.Thread | None = None
        self._copier_cursor: Any = None

    @classmethod
    def from_files(
        cls, paths: list[Path], labels: list[str] | list[int] | None = None, label_col: str = "run"
    ) -> TableSource:
        """One file, or several (one per run or per step, with a ``run`` or ``step``
        column first telling them apart: text labels, or integers for steps)."""
        from ..data_types._arrow import read_meta

        con = _connect()
        names: list[str] = []
        kinds: list[str | None] = []
        for p in paths:
            for c in read_meta(p, con)["columns"]:
                if c["name"] not in names:
                    names.append(c["name"])
                    kinds.append(c["type"])
                elif kinds[names.index(c["name"])] is None:
                    kinds[names.index(c["name"])] = c["type"]
        files = "[" + ", ".join(sql_literal(str(p)) for p in paths) + "]"
        src = (
            "CASE filename "
            + " ".join(f"WHEN {sql_literal(str(p))} THEN {i}" for i, p in enumerate(paths))
            + " END"
        )
        extra = ""
        if labels is not None:
            label = (
                "CASE filename "
                + " ".join(
                    f"WHEN {sql_literal(str(p))} THEN "
                    + (str(int(lab)) if isinstance(lab, int) else sql_literal(str(lab)))
                    for p, lab in zip(paths, labels, strict=True)
                )
                + " END"
            )
            col = label_col if label_col not in names else f"__{label_col}"
            extra = f", {label} AS {sql_ident(col)}"
            kind = "number" if labels and isinstance(labels[0], int) else "str"
            names, kinds = [col, *names], [kind, *kinds]
        con.execute(
            f"CREATE VIEW t AS SELECT * EXCLUDE (filename, file_row_number){extra}, "
            f"CAST({src} AS BIGINT) * {FILE_STRIDE} + file_row_number AS {ROW} "
            f"FROM read_parquet({files}, filename = true, file_row_number = true, "
            "union_by_name = true)"
        )
        _lock_down(con, [str(p) for p in paths])
        return cls(con, names, kinds)

    @classmethod
    def from_arrow(cls, arrow: Any, names: list[str], kinds: list[str | None]) -> TableSource:
        """An Arrow table (with a ``__nbt_row`` column) copied into DuckDB."""
        con = _connect()
        con.register("src", arrow)
        con.execute("CREATE TABLE t AS SELECT * FROM src")
        con.unregister("src")
        _lock_down(con)
        return cls(con, names, kinds)

    # -- the in-memory copy ------------------------------------------------------------------
    def start_copy(self) -> None:
        """Copy the rows into memory in a thread; queries use the copy once it is there.
        Start it after the first page, so that the two do not share the CPU."""
        cur = self.con.cursor()
        # Not a daemon: a thread killed inside DuckDB at interpreter exit aborts the process.
        self._copier = threading.Thread(
            target=self._materialize, args=(cur,), name="nbtracker-table-copy"
        )
        self._copier_cursor = cur
        self._copier.start()

    def _materialize(self, cur: Any) -> None:
        try:
            cur.execute("CREATE TABLE t_mem AS SELECT * FROM t")
        except Exception:  # noqa: BLE001 - interrupted or closed meanwhile: keep the view
            return
        finally:
            try:
                cur.close()
            except Exception:  # noqa: BLE001,S110
                pass
        if self.con is not None:
            self.src = "t_mem"

    def close(self) -> None:
        """Stop a running copy, then close the connection (DuckDB refuses to close a busy one)."""
        copier = self._copier
        if copier is not None and copier.is_alive():
            try:
                self._copier_cursor.interrupt()
            except Exception:  # noqa: BLE001,S110
                pass
            copier.join(timeout=10)
        self._copier = None
        if self.con is not None:
            try:
                self.con.close()
            except Exception:  # noqa: BLE001,S110 - still busy: dropped with the object
                pass
            self.con = None

    # -- queries -----------------------------------------------------------------------------
    def _relation(self, q: dict[str, Any]) -> Any:
        rel = self.con.table(self.src)
        expr = str(q.get("filter") or "").strip()
        if expr:
            rel = rel.filter(expr)
        text = str(q.get("search") or "").strip()
        if text:
            pat = sql_literal(
                "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            parts = [
                f"CAST({sql_ident(n)} AS VARCHAR) ILIKE {pat} ESCAPE '\\'"
                for n, k in zip(self.names, self.kinds, strict=True)
                if k in _TEXT_KINDS
            ] + [
                f"{sql_ident(n)}.caption ILIKE {pat} ESCAPE '\\'"
                for n, k in zip(self.names, self.kinds, strict=True)
                if k == "image"
            ]
            rel = rel.filter(" OR ".join(parts) if parts else "false")
        return rel

    def page(self, q: dict[str, Any], page_size: int) -> tuple[list[tuple[Any, ...]], int, int]:
        """``(rows, total, page)`` for a query ``{sort, desc, filter, search, page}``: the
        rows (row id first, then every column) of the page, clamped to the last one.

        Raises ``duckdb.Error``, ``ValueError`` or ``TypeError`` for a bad filter.
        """
        rel = self._relation(q)
        total = rel.aggregate("count(*)").fetchall()[0][0]
        last = max(0, (total - 1) // page_size)
        page = min(max(0, int(q.get("page") or 0)), last)
        sort = q.get("sort")
        order = f"{ROW}"
        if sort in self.names and self.kinds[self.names.index(sort)] != "image":
            way = "DESC" if q.get("desc") else "ASC"
            order = f"{sql_ident(sort)} {way} NULLS LAST, {ROW}"
        cols = ", ".join([ROW, *(sql_ident(n) for n in self.names)])
        rows = rel.order(order).limit(page_size, page * page_size).project(cols).fetchall()
        return rows, total, page

    def cell(self, row: int, column: str) -> Any:
        """The value of one cell, by row id."""
        return self.con.execute(
            f"SELECT {sql_ident(column)} FROM {self.src} WHERE {ROW} = ?", [row]
        ).fetchall()[0][0]

    def first_rows(self, n: int) -> list[tuple[Any, ...]]:
        """The first ``n`` rows in file order, row id first."""
        return self.con.execute(
            f"SELECT {ROW}, {', '.join(sql_ident(c) for c in self.names)} FROM {self.src} "
            f"ORDER BY {ROW} LIMIT {int(n)}"
        ).fetchall()
