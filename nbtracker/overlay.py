"""Read layer for many runs at once: the runs workspace's overlay (:func:`envelopes`) and
the overview a finished long run keeps for it (:func:`write_overview`).

The single-run half (a live run's or a folder's series, a zoom range) is
:mod:`nbtracker.feed`; both follow the one down-sampling rule of :mod:`nbtracker.sampling`
and read files through the same damage-tolerant helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .feed import _read_files, _segments
from .sampling import DEFAULT_BUCKETS, Envelope, bucket_width

OVERVIEW_BUCKETS = 1024  # buckets per key in a finished run's overview (workspace: 256)
OVERVIEW_MIN_BYTES = 64 * 1024  # smaller histories are read whole (fast enough)


def write_overview(rdir: Path) -> Path | None:
    """After a run finished: its history reduced to at most ``OVERVIEW_BUCKETS`` buckets
    per key (the points :class:`Envelope` keeps), in one small Parquet file beside it, so
    that overlaying hundreds of long runs reads buckets instead of every row. A cache:
    readers use it only while the history files are the ones it was built from (a resumed
    or repaired run reads its files again); nothing is lost without it."""
    import os

    from .sampling import BUCKET_AGGS, FINITE_COLS
    from .store import history_signature, overview_path, stale_overviews

    files = _segments(Path(rdir))
    if not files or sum(os.path.getsize(f) for f in files) < OVERVIEW_MIN_BYTES:
        return None  # (before any pyarrow import: short runs never pay for it)
    import pyarrow.parquet as pq

    sig = history_signature(files)

    def build(con: Any, fl: list[str]) -> Any:
        top = con.execute(
            "SELECT max(TRY_CAST(stats_max AS BIGINT)) FROM parquet_metadata(?) "
            "WHERE path_in_schema = 'step'",
            [fl],
        ).fetchall()[0][0]
        w0 = bucket_width(0, int(top or 0), OVERVIEW_BUCKETS)
        tbl = con.sql(
            f"WITH h AS (SELECT key, step, ts, value, {FINITE_COLS} FROM read_parquet(?) "
            f"WHERE value IS NOT NULL) SELECT key, step // ? AS b, {BUCKET_AGGS} "
            "FROM h GROUP BY ALL ORDER BY key, b",
            params=[fl, w0],
        ).to_arrow_table()
        return tbl, w0, int(top or 0)

    tbl, w0, top = _read_files(files, build)
    path = overview_path(rdir, sig, w0, top)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(tbl, tmp)
    os.replace(tmp, path)
    for old in stale_overviews(rdir, keep=path):
        old.unlink(missing_ok=True)
    return path


def envelopes(
    runs: list[tuple[Path, float]], keys: list[str] | None, max_buckets: int = DEFAULT_BUCKETS
) -> list[dict[str, Envelope]]:
    """The envelopes of ``keys`` for many runs at once (the runs workspace's overlay):
    ``runs`` is ``[(run folder, created_at), ...]``; returns one ``{key: Envelope}`` per
    run (``keys`` None: every key holding numbers), by the rule of
    :mod:`nbtracker.sampling`, on one bucket width for every run (the longest run's), so
    the overlaid lines share their x grid.

    Finished long runs are read from their overview (:func:`write_overview`: buckets,
    merged here to the wider width in one DuckDB scan); the others from their history
    files, reduced per run, key and bucket in one parallel scan. Damaged files are skipped
    with one warning each."""
    from .store import find_overview, history_signature

    out: list[dict[str, Envelope]] = [{} for _ in runs]
    if keys == []:
        return out
    raw: dict[str, int] = {}  # history file -> run index
    ovs: dict[str, tuple[int, int]] = {}  # overview file -> (run index, its width)
    top = 0
    for i, (rdir, _) in enumerate(runs):
        files = _segments(Path(rdir))
        if not files:
            continue
        try:
            found = find_overview(rdir, history_signature(files))
        except OSError:  # a file went away meanwhile (compaction): read the files
            found = None
        if found is not None:
            ovs[str(found[0])] = (i, found[1])
            top = max(top, found[2])
        else:
            for f in files:
                raw[str(f)] = i
    if raw:
        top = max(top, _top_step(list(raw)))
    w = bucket_width(0, top, max_buckets)
    for f, (i, w0) in list(ovs.items()):
        if w0 > w:  # built coarser than asked for: the run's files instead
            del ovs[f]
            for g in _segments(Path(runs[i][0])):
                raw[str(g)] = i
    t0 = [float(c or 0.0) for _, c in runs]
    if ovs:
        import duckdb

        from . import query

        con = query.duck()
        try:
            got = _bucket_reader(ovs, keys, w, merge=True)(con, list(ovs))
            _fill(out, got, w, max_buckets, t0)
        except (OSError, ValueError, duckdb.Error):  # an overview went bad (it is only a
            # cache): those runs are read from their history files, which say it all
            for i, _w0 in ovs.values():
                out[i] = {}
                for g in _segments(Path(runs[i][0])):
                    raw[str(g)] = i
        finally:
            con.close()
    if raw:
        owner = {f: (i, 0) for f, i in raw.items()}
        _fill(out, _read_files(list(raw), _bucket_reader(owner, keys, w, merge=False)), w,
              max_buckets, t0)  # fmt: skip
    if keys is None:  # first-logged order is not known here: the run's own order by name
        return [dict(sorted(e.items())) for e in out]
    rank = {k: i for i, k in enumerate(keys)}
    return [dict(sorted(e.items(), key=lambda kv: rank.get(kv[0], 1 << 30))) for e in out]


def _top_step(files: list[str]) -> int:
    def top(con: Any, fl: list[str]) -> int:
        got = con.execute(  # the footers' statistics: no data read
            "SELECT max(TRY_CAST(stats_max AS BIGINT)) FROM parquet_metadata(?) "
            "WHERE path_in_schema = 'step'",
            [fl],
        ).fetchall()[0][0]
        return int(got or 0)

    return _read_files(files, top)  # type: ignore[no-any-return]


def _bucket_reader(
    owner: dict[str, tuple[int, int]], keys: list[str] | None, w: int, merge: bool
) -> Any:
    """``fn(con, files)`` for :func:`_read_files`: the buckets of ``w`` steps of every
    run and key in ``files`` (history files, or overviews when ``merge``), sorted."""
    from .sampling import BUCKET_AGGS, BUCKET_MERGE, FINITE_COLS

    def read(con: Any, fl: list[str]) -> Any:
        if not fl:
            return None
        run_of = [owner[f][0] for f in fl]
        pick = "" if keys is None else " AND list_contains(?, key)"
        params: list[Any] = [run_of, fl, fl, *([] if keys is None else [keys])]
        r = "list_extract(?, list_position(?, filename)) AS r"
        if merge:  # b * w0 // w: every overview has its own (power of two) width w0
            widths = [owner[f][1] for f in fl]
            sql = (
                f"SELECT {r}, key, b * list_extract(?, list_position(?, filename)) // ? AS b, "
                f"{BUCKET_MERGE} FROM read_parquet(?, filename = true) WHERE true{pick} "
                "GROUP BY ALL ORDER BY r, key, b"
            )
            params = [run_of, fl, widths, fl, w, fl, *([] if keys is None else [keys])]
        else:
            sql = (
                f"WITH h AS (SELECT {r}, key, step, ts, value, {FINITE_COLS} "
                f"FROM read_parquet(?, filename = true) WHERE value IS NOT NULL{pick}) "
                f"SELECT r, key, step // ? AS b, {BUCKET_AGGS} FROM h GROUP BY ALL "
                "ORDER BY r, key, b"
            )
            params.append(w)
        return con.execute(sql, params).fetchnumpy()

    return read


def _fill(
    out: list[dict[str, Envelope]], got: Any, w: int, max_buckets: int, t0: list[float]
) -> None:
    """Envelopes from sorted bucket rows (``r, key`` then :data:`BUCKET_COLS`)."""
    import numpy as np

    from .sampling import BUCKET_COLS

    if got is None or not len(got["r"]):
        return
    r = np.asarray(got["r"], dtype=np.int64)
    key = np.asarray(got["key"], dtype=object)
    cut = np.flatnonzero((r[1:] != r[:-1]) | (key[1:] != key[:-1])) + 1
    cols = []
    for name in BUCKET_COLS:
        col = got[name]
        if name.endswith("_t"):  # seconds since the run was created
            col = col - np.asarray(t0, dtype=np.float64)[r]
        cols.append(col.tolist())  # masked (NULL) entries become None
    rows = list(zip(*cols, strict=True))
    for a, b in zip([0, *cut.tolist()], [*cut.tolist(), len(r)], strict=True):
        out[int(r[a])][str(key[a])] = Envelope.from_buckets(w, rows[a:b], max_buckets)
