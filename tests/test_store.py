"""Storage layout: run folders, atomic segments, compaction, the DuckDB catalog, repair."""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq

import nbtracker
from nbtracker import segments
from nbtracker.store import Store, wait_for_background


def test_layout_and_compaction(init, root) -> None:
    run = init(project="proj", id="r1")
    for i in range(100):
        run.log({"a": i})
        if i % 25 == 0:
            run._writer.flush_rows()  # several segments
    assert len(list((run.dir / "history").glob("h-*.parquet"))) >= 3
    run.finish()
    wait_for_background()  # compaction runs after finish() returns
    files = list((run.dir / "history").glob("h-*.parquet"))
    assert len(files) == 1
    table = pq.read_table(files[0])
    assert table.column_names == ["step", "ts", "key", "value", "text"]
    assert table.num_rows == 100
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    rec = json.loads((run.dir / "run.json").read_text())
    assert rec["state"] == "finished" and rec["history_keys"] == {"a": "int"}


def test_superseded_segments_are_ignored(tmp_path) -> None:
    import pyarrow as pa

    h = tmp_path / "history"
    h.mkdir()
    t = segments.rows_to_long([0, 1], [0.0, 0.0], [{"a": 1}, {"a": 2}], {})
    for name in ("h-00000001-00000001.parquet", "h-00000002-00000002.parquet",
                 "h-00000001-00000002.parquet"):  # fmt: skip
        pq.write_table(t if "1-00000002" in name else pa.table(t.to_pydict()).slice(0, 1), h / name)
    effective, superseded, nxt = segments.list_files(h)
    assert [p.name for p in effective] == ["h-00000001-00000002.parquet"]
    assert len(superseded) == 2 and nxt == 3


def test_catalog_is_a_real_duckdb_file(init, root) -> None:
    run = init(config={"lr": 0.1, "opt": {"m": 0.9}}, tags=["x"])
    run.log({"acc": 0.5})
    run.finish()
    wait_for_background()  # indexing runs after finish() returns
    con = duckdb.connect(str(root / "nbtracker.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT state FROM runs").fetchall() == [("finished",)]
        assert sorted(con.execute("SELECT key, num FROM config").fetchall()) == [
            ("lr", 0.1),
            ("opt.m", 0.9),
        ]
        assert con.execute("SELECT tag FROM tags").fetchall() == [("x",)]
        assert ("acc", 0.5) in con.execute("SELECT key, num FROM summary").fetchall()
    finally:
        con.close()


def test_repair_rebuilds_a_deleted_or_damaged_catalog(init, root) -> None:
    for i in range(3):
        init(id=f"r{i}", reinit="finish_previous").log({"x": i})
    nbtracker.finish()
    store = Store(root)
    nbtracker.Api(root).runs()
    store.catalog.path.write_bytes(b"garbage, not a database")
    assert len(nbtracker.Api(root).runs("p")) == 3  # readers fall back to the run folders
    assert store.repair() == 3
    con = duckdb.connect(str(store.catalog.path), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (3,)
    con.close()


def test_storage_trouble_is_one_warning_and_rows_are_kept(init) -> None:
    import warnings

    from nbtracker.errors import StorageWarning

    run = init()
    run.log({"x": 1})
    run._writer.flush_rows()
    hdir = run.dir / "history"
    aside = run.dir / "history-aside"
    hdir.rename(aside)
    hdir.write_text("a file where the folder should be")  # every segment write now fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.log({"x": 2})
        run._writer.flush_rows()
        run.log({"x": 3})
        run._writer.flush_rows()
    hdir.unlink()
    aside.rename(hdir)
    storage = [w for w in caught if issubclass(w.category, StorageWarning)]
    assert len(storage) == 1 and "kept in memory and retried" in str(storage[0].message)
    run.finish()
    h = nbtracker.Api(run._store.root).run(f"p/{run.id}").history(samples=None)
    assert h["x"].tolist() == [1, 2, 3]


def _history_rows(run_dir) -> list[tuple]:  # type: ignore[no-untyped-def]
    wait_for_background()  # finish() writes the last rows in the background
    files = segments.list_files(run_dir / "history")[0]
    con = duckdb.connect()
    try:
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        return con.execute(
            f"SELECT step, key, CAST(value AS VARCHAR), text FROM read_parquet([{listing}]) "
            "ORDER BY key, step"
        ).fetchall()
    finally:
        con.close()


def test_both_flush_paths_write_the_same_history(init, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Segments go through DuckDB from numpy arrays; a flush past COLD_MAX_VALUES goes
    through pyarrow. Both keep every value exactly: NaN, inf, bools, ints, text, rows with
    other keys, a key whose kind changes."""
    import math

    from nbtracker import writer

    def log_all(run) -> None:  # type: ignore[no-untyped-def]
        for i in range(300):
            run.log({"loss": 1 / (i + 1), "n": i, "ok": i % 2 == 0, "tag": f"t{i % 3}"})
        run.log({"loss": math.nan, "n": 3, "ok": True, "tag": "x"})
        run.log({"loss": math.inf, "extra": -math.inf})
        run.log({"mixed": 1})
        run.flush()  # pyarrow turns a key's numbers into text when a flush also has text
        run.log({"mixed": "one"})
        run.finish()

    duck = init(name="duck")
    log_all(duck)
    monkeypatch.setattr(writer, "COLD_MAX_VALUES", 10)
    arrow = init(name="arrow", reinit="create_new")
    log_all(arrow)
    rows = _history_rows(duck.dir)
    assert rows == _history_rows(arrow.dir) and len(rows) == 300 * 4 + 4 + 2 + 2
    assert (300, "loss", "nan", None) in rows and (301, "extra", "-inf", None) in rows
    assert (302, "mixed", "1.0", None) in rows and (303, "mixed", None, "one") in rows
    assert (0, "ok", "1.0", None) in rows and (2, "tag", None, "t2") in rows
    keys = [json.loads((r.dir / "run.json").read_text())["history_keys"] for r in (duck, arrow)]
    assert keys[0] == keys[1] and keys[0]["mixed"] == "str" and keys[0]["ok"] == "bool"


def test_duckdb_flush_keeps_each_values_kind_within_one_flush(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    run.log({"mixed": 1})
    run.log({"mixed": "one", "b": True})
    run.log({"mixed": 2.5, "b": 3})
    run.finish()
    assert _history_rows(run.dir) == [
        (1, "b", "1.0", None), (2, "b", "3.0", None),
        (0, "mixed", "1.0", None), (1, "mixed", None, "one"), (2, "mixed", "2.5", None),
    ]  # fmt: skip
