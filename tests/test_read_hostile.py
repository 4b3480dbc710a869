"""Hostile keys and values read back through history(), scan_history() and SQL; streamed
full reads; a stored run's summary saved through update(). Real files, real DuckDB."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import nbtracker
from nbtracker import query, segments
from nbtracker._util import atomic_write_json
from nbtracker.errors import NbtrackerWarning


def on_disk(run_dir: Path, rows: list[tuple], key_types: dict[str, str]) -> None:
    """Add a history segment (as an older writer could have written it) to a finished
    run, and its key types to run.json."""
    import pyarrow as pa

    hdir = run_dir / "history"
    cols = list(zip(*rows, strict=True))
    schema = segments._schema()
    table = pa.table(
        [pa.array(c, f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
    )
    segments.write_parquet_atomic(table, hdir / segments.segment_name(1, 1, "old"))
    rec = json.loads((run_dir / "run.json").read_text())
    rec["history_keys"] = {**rec.get("history_keys", {}), **key_types}
    rec["last_step"] = max(rec.get("last_step", -1), max(r[0] for r in rows))
    atomic_write_json(run_dir / "run.json", rec)


def a_run(init, root, rid: str = "h"):
    from nbtracker.store import wait_for_background

    run = init(id=rid)
    run.log({"x": 1})
    run.finish()
    wait_for_background()
    return nbtracker.Api(root).run(f"p/{rid}").dir


def sql(root, statement: str, params=None):
    return nbtracker.sql(statement, params, root=str(root))


def test_logged_system_keys_read_back_under_their_own_label(init, root) -> None:
    rdir = a_run(init, root)
    ts = 1.8e9
    on_disk(rdir, [(5, ts, "_step", 42.0, None), (5, ts, "_runtime", 7.5, None),
                   (5, ts, "_timestamp", 1.0, None), (5, ts, "x", 2.0, None)],
            {"_step": "int", "_runtime": "float", "_timestamp": "float"})  # fmt: skip
    run = nbtracker.Api(root).run("p/h")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = run.history(samples=None)
    said = sorted(str(w.message) for w in caught if issubclass(w.category, NbtrackerWarning))
    assert len(said) == 3 and "'_step' clashes" in said[1] and "'_step (logged)'" in said[1]
    assert list(h.columns) == ["_step", "_timestamp", "_runtime", "_runtime (logged)",
                               "_step (logged)", "_timestamp (logged)", "x"]  # fmt: skip
    assert h["_step"].tolist() == [0, 5]  # the system column is the real step
    last = h.iloc[-1]
    assert last["_step (logged)"] == 42 and last["_runtime (logged)"] == 7.5 and last["x"] == 2
    with pytest.warns(NbtrackerWarning):
        rows = list(run.scan_history())
    assert rows[-1]["_step"] == 5 and rows[-1]["_step (logged)"] == 42
    assert rows[0] == {"_step": 0, "_runtime": rows[0]["_runtime"],
                       "_timestamp": rows[0]["_timestamp"], "x": 1}  # fmt: skip
    with pytest.warns(NbtrackerWarning):
        assert run.history(keys=["_step"], samples=None)["_step (logged)"].tolist()[-1] == 42
    df = sql(root, "SELECT step, value FROM history WHERE key = '_step'")
    assert df.to_dict("records") == [{"step": 5, "value": 42.0}]


def test_an_int_key_beyond_int64_reads_back_as_floats(init, root) -> None:
    rdir = a_run(init, root)
    big = float(2**63) * 4
    on_disk(rdir, [(1, 1.8e9, "big", big, None), (2, 1.8e9, "big", 3.0, None)], {"big": "int"})
    run = nbtracker.Api(root).run("p/h")
    h = run.history(samples=None)
    assert h["big"].dtype == "float64" and h["big"].tolist()[1:] == [big, 3.0]
    assert [r.get("big") for r in run.scan_history()] == [None, big, 3.0]
    assert h["x"].dtype == "Int64"  # an int key with gaps: nullable ints, as before
    assert sql(root, "SELECT max(value) AS m FROM history WHERE key = 'big'")["m"][0] == big


def test_a_key_logged_as_number_text_float_and_bool_reads_back_every_value(init, root) -> None:
    run = init(id="m")
    for v in (1, "text", 2.5, True):
        run.log({"m": v})
    run.finish()
    api = nbtracker.Api(root)
    stored = api.run("p/m")
    assert stored._rec["history_keys"]["m"] == "str"
    h = stored.history(samples=None)
    assert h["m"].dtype == object
    assert h["m"].tolist() == [1, "text", 2.5, 1]  # numbers as numbers (True stored as 1)
    assert [type(v) for v in h["m"]] == [float, str, float, float]
    assert [r["m"] for r in stored.scan_history()] == [1, "text", 2.5, 1]
    assert len(stored.history(samples=2, keys=["m"])) == 4
    df = sql(root, "SELECT value, text FROM history WHERE key = 'm' ORDER BY step")
    assert df["text"].tolist()[1] == "text" and df["value"].tolist()[2] == 2.5


def test_logged_lists_read_back_as_lists(init, root) -> None:
    run = init(id="l")
    run.log({"short": [0.1, 0.2], "n": 1})
    run.log({"n": 2})
    run.log({"short": ["a", None]})
    run.finish()
    stored = nbtracker.Api(root).run("p/l")
    assert stored.history(samples=None)["short"].tolist() == [[0.1, 0.2], None, ["a", None]]
    assert [r.get("short") for r in stored.scan_history()] == [[0.1, 0.2], None, ["a", None]]


@pytest.mark.parametrize("key", ["", "a\x00b", "sp ace", "ü/ñ.x", '"q"', "PIVOT", "step"])
def test_odd_key_names_read_back_under_their_own_names(init, root, key) -> None:
    run = init(id="k")
    for i in range(3):
        run.log({key: float(i), "other": i})
    run.finish()
    stored = nbtracker.Api(root).run("p/k")
    h = stored.history(samples=None)
    assert h[key].tolist() == [0.0, 1.0, 2.0]
    assert h["other"].tolist() == [0, 1, 2]
    assert stored.history(keys=[key], samples=None)[key].tolist() == [0.0, 1.0, 2.0]
    assert [r[key] for r in stored.scan_history()] == [0.0, 1.0, 2.0]
    assert [r[key] for r in stored.scan_history(keys=[key])] == [0.0, 1.0, 2.0]
    df = sql(root, "SELECT count(*) AS n FROM history WHERE key = ?", [key])
    assert df["n"][0] == 3


def test_scan_history_rows_hold_what_was_logged(init, root) -> None:
    run = init(id="s")
    run.log({"a": 1, "b": 0.5})
    run.log({"a": 2})
    run.log({"b": float("nan"), "flag": True})
    run.log({"t": "hello"})
    run.finish()
    stored = nbtracker.Api(root).run("p/s")
    rows = list(stored.scan_history())
    strip = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    assert strip[0] == {"a": 1, "b": 0.5}
    assert strip[1] == {"a": 2}
    assert set(strip[2]) == {"b", "flag"} and math.isnan(strip[2]["b"]) and strip[2]["flag"] is True
    assert strip[3] == {"t": "hello"}
    for r in rows:
        assert all(v is not pd.NA for v in r.values())
        assert type(r["_step"]) is int and type(r["_runtime"]) is float
    assert [type(s.get("a")) for s in strip] == [int, int, type(None), type(None)]
    asked = list(stored.scan_history(keys=["a", "b", "never"]))
    assert [r["a"] for r in asked] == [1, 2, None]  # steps with one of the keys
    assert [r["never"] for r in asked] == [None, None, None]
    assert math.isnan(asked[2]["b"]) and asked[1]["b"] is None
    h = stored.history(samples=None)
    assert h["flag"].dtype == "boolean" and h["a"].dtype == "Int64"


def test_scan_history_streams_in_windows(init, root, monkeypatch) -> None:
    """Rows come a window of steps at a time (here windows of ~1,000 values, so many): the
    same rows as history(samples=None), in order, across gaps in the steps and through a
    window that must be split (a step range far denser than the first window guessed)."""
    monkeypatch.setattr(query, "SCAN_ROWS", 1_000)
    run = init(id="w")
    for i in range(3_000):
        row = {"loss": 1 / (i + 1)}
        if i % 7 == 0:
            row["val"] = float(i)
        run.log(row)
    for i in range(5):
        run.log({"loss": -1.0, "val": float(i)}, step=1_000_000 + i)  # a jump in the steps
    run.log({f"k{i}": i for i in range(3_000)}, step=2_000_000)  # one very wide step
    run.finish()
    stored = nbtracker.Api(root).run("p/w")
    calls = []
    real = query.window

    def counting(*a, **kw):
        out = real(*a, **kw)
        calls.append(out is None)  # None: too many rows, read as narrower windows
        return out

    monkeypatch.setattr(query, "window", counting)
    rows = list(stored.scan_history(page_size=10))
    assert len(calls) >= 6 and any(calls)  # many windows, some split
    steps = [r["_step"] for r in rows]
    assert steps == [*range(3_000), *range(1_000_000, 1_000_005), 2_000_000]
    assert len(stored.scan_history()) == len(rows)
    monkeypatch.setattr(query, "window", real)
    full = stored.history(samples=None)
    for r, (_, f) in zip(rows[:3_005], full.iterrows(), strict=False):
        assert r["loss"] == f["loss"]
        assert r.get("val", "absent") == ("absent" if pd.isna(f["val"]) else f["val"])
    assert rows[-1]["k2999"] == 2999 and "loss" not in rows[-1]
    part = list(stored.scan_history(keys=["val"], min_step=100, max_step=1_000_002))
    assert [r["val"] for r in part][:2] == [105.0, 112.0] and part[-1]["val"] == 2.0


def test_summary_edits_write_through(init, root) -> None:
    run = init(id="u")
    run.log({"acc": 0.5})
    run.finish()
    api = nbtracker.Api(root)
    stored = api.run("p/u")
    stored.summary["best"] = 0.93
    stored.summary.update()  # wandb's way to save it
    assert nbtracker.Api(root).run("p/u").summary["best"] == 0.93
    stored.summary.update({"extra": 1})
    assert stored.summary._json_dict["extra"] == 1
    again = nbtracker.Api(root).run("p/u")
    assert (
        again.summary["best"] == 0.93
        and again.summary["extra"] == 1
        and again.summary["acc"] == 0.5
    )
    again.summary["best"] = 0.95
    again.update()
    assert [
        r.id for r in nbtracker.Api(root).runs("p", filters={"summary_metrics.best": 0.95})
    ] == ["u"]
    # the catalog itself holds the new values (no run.json fallback involved)
    con = duckdb.connect(str(api.store.catalog.path), read_only=True)
    try:
        got = dict(con.execute("SELECT key, num FROM summary WHERE run_id = 'u'").fetchall())
    finally:
        con.close()
    assert got["best"] == 0.95 and got["extra"] == 1
    assert sql(root, "SELECT value FROM summary WHERE key = 'best'")["value"][0] == 0.95
    assert json.loads((stored.dir / "run.json").read_text())["summary"]["best"] == 0.95


def test_reads_stay_quiet_on_clean_runs(init, root) -> None:
    run = init(id="q")
    for i in range(20):
        run.log({"a": i, "b": str(i)})
    run.finish()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stored = nbtracker.Api(root).run("p/q")
        stored.history()
        list(stored.scan_history())
        sql(root, "SELECT * FROM history")


def test_text_that_looks_like_a_number_among_many_numeric_rows_stays_text(init, root) -> None:
    """Rows of the same numeric keys go through a fast all-numbers writer; one row whose
    value is the text "2.5" (and another key's text "nan") must still read back as text."""
    run = init(id="t")
    for i in range(2000):
        m = "2.5" if i == 700 else i * 0.5
        n = "nan" if i == 1500 else float(i)
        run.log({"m": m, "n": n})
    run.finish()
    h = nbtracker.Api(root).run("p/t").history(samples=None)
    assert len(h) == 2000
    assert h["m"][700] == "2.5" and isinstance(h["m"][700], str)
    assert h["n"][1500] == "nan" and isinstance(h["n"][1500], str)
    assert h["m"][699] == 349.5 and h["n"][1499] == 1499.0 and h["m"][1999] == 999.5


@pytest.mark.parametrize("rows", [10, 3000])  # a few values / the all-numbers writer
def test_an_int_beyond_2_53_is_stored_rounded_with_a_warning(init, root, rows) -> None:
    """History values are doubles: an int beyond 2**53 cannot come back exact, and the
    user is told so (once, naming the key) instead of finding other digits later."""
    from nbtracker.errors import ValueConversionWarning

    key = f"big_id_{rows}"  # (one warning per key and process)
    run = init(id=f"r{rows}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(rows):
            run.log({key: 2**60 + i, "small": i})
        run.finish()
        nbtracker.Api(root).run(f"p/r{rows}")  # waits until the rows are stored
    said = [str(w.message) for w in caught if issubclass(w.category, ValueConversionWarning)]
    assert sum(repr(key) in m and "2**53" in m for m in said) == 1, said
    assert not any("'small'" in m for m in said)
    h = nbtracker.Api(root).run(f"p/r{rows}").history(samples=None)
    assert len(h) == rows and h["small"].tolist() == list(range(rows))
    assert abs(int(h[key].iloc[-1]) - (2**60 + rows - 1)) <= 256  # the nearest double
