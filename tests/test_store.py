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
        assert sorted(con.execute("SELECT key, num FROM config").fetchall()) == [("lr", 0.1), ("opt.m", 0.9)]
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
