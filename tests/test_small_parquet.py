"""nbtracker's own small Parquet writer (a short run's rows): the files it writes read back
equal, with the history column types, through DuckDB and pyarrow, and their step statistics
are trusted by both readers (range filters skip by them)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtracker import _parquet

finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
rows = st.lists(
    st.tuples(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
        st.one_of(st.none(), finite_or_not),
        st.one_of(st.none(), texts),
    ),
    min_size=1,
    max_size=300,
)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


@settings(max_examples=60, deadline=None)
@given(rows)
def test_rows_read_back_equal_through_duckdb_and_pyarrow(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("pq") / "seg.parquet"
    cols = [list(c) for c in zip(*data, strict=True)]
    path.write_bytes(_parquet.history_bytes(*cols))
    con = duckdb.connect()
    types = con.execute("SELECT name, type FROM parquet_schema(?) WHERE num_children IS NULL",
                        [str(path)]).fetchall()  # fmt: skip
    assert types == [("step", "INT64"), ("ts", "DOUBLE"), ("key", "BYTE_ARRAY"),
                     ("value", "DOUBLE"), ("text", "BYTE_ARRAY")]  # fmt: skip
    desc = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    assert [(d[0], d[1]) for d in desc] == [("step", "BIGINT"), ("ts", "DOUBLE"),
        ("key", "VARCHAR"), ("value", "DOUBLE"), ("text", "VARCHAR")]  # fmt: skip
    back = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    arrow = [tuple(r.values()) for r in pq.read_table(path).to_pylist()]
    for got in (back, arrow):
        assert len(got) == len(data)
        for want, row in zip(data, got, strict=True):
            assert all(_same(w, g) for w, g in zip(want, row, strict=True)), (want, row)
    steps = cols[0]
    st_ = pq.ParquetFile(path).metadata.row_group(0).column(0).statistics
    assert st_.has_min_max and (st_.min, st_.max) == (min(steps), max(steps))
    assert _duckdb_step_stats(con, path) == (min(steps), max(steps))
    lo = sorted(steps)[len(steps) // 2]
    assert con.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE step >= ?", [str(path), lo]
    ).fetchone()[0] == sum(s >= lo for s in steps)


def test_values_that_do_not_fit_raise_and_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnicodeEncodeError):
        _parquet.history_bytes([0], [0.0], ["k"], [None], ["\udcff"])
    with pytest.raises(struct.error):
        _parquet.history_bytes([2**63], [0.0], ["k"], [1.0], [None])
    with pytest.raises(ValueError, match="different lengths"):
        _parquet.history_bytes([0, 1], [0.0], ["k"], [1.0], [None])


def test_a_short_run_written_by_it_reads_back_and_compacts_with_duckdb_files(tmp_path) -> None:
    """A run's first flush of a few values (our writer) and a later big one (DuckDB) merge
    into one file at finish and read back as logged."""
    import nbtracker

    run = nbtracker.init(project="p", dir=tmp_path, config={"a": 1})
    run.log({"loss": 0.5, "name": "first", "flag": True})
    run.flush()  # the small flush now: its own segment
    for i in range(1, 400):
        run.log({"loss": 1.0 / i, "n": i})
    run.finish()
    h = nbtracker.Api(root=tmp_path).run(f"p/{run.id}").history(samples=None)
    assert len(h) == 400
    first = h.iloc[0]
    assert (first["name"], bool(first["flag"]), first["loss"]) == ("first", True, 0.5)
    assert h.iloc[399]["n"] == 399


@pytest.mark.parametrize(("n", "k"), [(1, 1), (7, 3), (300, 257)])
def test_numeric_rows_read_back_equal_with_nan_inf_and_many_keys(tmp_path: Path, n, k) -> None:
    """The writer's path for the usual training rows (same numeric keys): every value comes
    back bit for bit (NaN, infinities, -0.0), keys with any text, step statistics trusted;
    257 keys need two bytes per dictionary index."""
    import numpy as np

    rng = np.random.default_rng(7)
    steps = np.arange(100, 100 + n, dtype=np.int64)
    stamps = 1.7e9 + np.arange(n) * 0.25
    values = rng.standard_normal((n, k))
    values.flat[:4] = [np.nan, np.inf, -np.inf, -0.0][: values.size]
    names = [f"m{j}/é ✓" for j in range(k)]
    path = tmp_path / "seg.parquet"
    _parquet.write_numeric_history(path, steps, stamps, names, values.T)
    got = (
        duckdb.connect()
        .execute("SELECT step, ts, key, value, text FROM read_parquet(?)", [str(path)])
        .fetchall()
    )
    want = {(int(steps[i]), names[j]): (float(stamps[i]), float(values[i, j]))
            for i in range(n) for j in range(k)}  # fmt: skip
    assert len(got) == n * k
    for step, ts, key, value, text in got:
        w_ts, w_value = want.pop((step, key))
        assert text is None and ts == w_ts and _same(value, w_value)
    assert not want
    arrow = pq.read_table(path)
    assert arrow.num_rows == n * k and arrow.schema.field("key").type == "string"
    st_ = pq.ParquetFile(path).metadata.row_group(0).column(0).statistics
    assert st_.has_min_max and (st_.min, st_.max) == (100, 99 + n)
    assert _duckdb_step_stats(duckdb.connect(), path) == (100, 99 + n)


def _duckdb_step_stats(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[int, int]:
    """The step column's min and max as DuckDB's parquet_metadata() reports them (what
    the overlay reads to pick a bucket width), both the old and the newer fields."""
    ((lo, hi, lo_v, hi_v),) = con.execute(
        "SELECT stats_min, stats_max, stats_min_value, stats_max_value "
        "FROM parquet_metadata(?) WHERE path_in_schema = 'step'",
        [str(path)],
    ).fetchall()
    assert (lo, hi) == (lo_v, hi_v)
    return int(lo), int(hi)


def test_a_finished_runs_only_big_file_of_ours_is_compressed(tmp_path: Path) -> None:
    """One flush of many numeric rows leaves one uncompressed file of ours: finishing the
    run rewrites it compressed (zstd), values intact."""
    import nbtracker
    from nbtracker.store import history_segments, wait_for_background

    run = nbtracker.init(project="p", dir=tmp_path)
    for i in range(8000):
        run.log({"a": i * 0.5, "b": 1.0 / (i + 1)})
    run.finish()
    wait_for_background()
    (only,) = history_segments(run.dir)
    assert not _parquet.worth_compressing(only)
    assert pq.ParquetFile(only).metadata.row_group(0).column(0).compression == "ZSTD"
    h = nbtracker.Api(root=tmp_path).run(f"p/{run.id}").history(samples=None)
    assert len(h) == 8000 and h["a"].iloc[-1] == 3999.5 and h["b"].iloc[0] == 1.0
