"""Damage stays local and repair salvages: a truncated, empty or foreign history file, a
lost or torn run.json, a catalog path that is a folder, a read-only store. Real files,
real DuckDB, real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import nbtracker
from nbtracker import segments
from nbtracker.cli import cli
from nbtracker.errors import StorageWarning


def write_segment(hdir: Path, name: str, rows: list[tuple]) -> Path:
    """A history segment as the writer makes it: ``(step, ts, key, value, text)`` rows."""
    import pyarrow as pa

    hdir.mkdir(parents=True, exist_ok=True)
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    table = pa.table([pa.array(c, t.type) for c, t in zip(cols, segments._schema(), strict=True)],
                     schema=segments._schema())  # fmt: skip
    path = hdir / name
    segments.write_parquet_atomic(table, path)
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def cli_run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def two_runs(init, root):
    """Run A: two history files (two writers: a run and its resume), steps 0-49 and
    50-99; run B: one file, steps 0-99."""
    run = init(id="A", config={"lr": 0.1}, tags=["t"])
    for i in range(50):
        run.log({"loss": float(i), "note": f"n{i}"})
    run.finish()
    run = init(id="A", resume="allow", reinit="finish_previous")
    for i in range(50):
        run.log({"loss": float(50 + i), "note": f"n{50 + i}"})
    run.finish()
    run = init(id="B", reinit="finish_previous")
    for i in range(100):
        run.log({"loss": float(i)})
    run.finish()
    nbtracker.finish()
    from nbtracker.store import wait_for_background

    wait_for_background()
    return root


def files_of(api, path: str) -> list[Path]:
    return sorted(segments.list_files(api.run(path).dir / "history")[0])


def second_file(api) -> Path:
    """Run A's file that holds steps 50-99."""
    for f in files_of(api, "p/A"):
        con = duckdb.connect()
        lo = con.execute("SELECT min(step) FROM read_parquet(?)", [str(f)]).fetchone()[0]
        con.close()
        if lo == 50:
            return f
    raise AssertionError("no file with steps 50-99")


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign", "footer"])
def test_a_damaged_history_file_is_skipped_by_every_reader(two_runs, api, damage) -> None:
    assert len(files_of(api, "p/A")) == 2
    bad = second_file(api)
    if damage == "truncated":
        truncate(bad)
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "foreign":  # a Parquet file, but not a history file
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": [1, 2]}), bad)
    else:  # the footer's bytes garbled, its PAR1 marks intact
        data = bytearray(bad.read_bytes())
        n = int.from_bytes(data[-8:-4], "little")
        for i in range(len(data) - 8 - n + 4, len(data) - 12):
            data[i] ^= 0x5A
        bad.write_bytes(bytes(data))

    with pytest.warns(StorageWarning, match=bad.name):
        df = nbtracker.sql(
            "SELECT run_id, count(*) AS n FROM history WHERE key = 'loss' GROUP BY 1 ORDER BY 1",
            root=str(api.store.root),
        )
    assert df.to_dict("records") == [{"run_id": "A", "n": 50}, {"run_id": "B", "n": 100}]
    # the verdict is remembered: later reads neither warn again nor fail
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = api.run("p/A")
        h = run.history(samples=None)
        assert h["_step"].tolist() == list(range(50))
        assert h["loss"].tolist() == [float(i) for i in range(50)]
        assert h["note"].tolist() == [f"n{i}" for i in range(50)]
        assert len(run.history(samples=10)) <= 12
        rows = list(run.scan_history())
        assert [r["_step"] for r in rows] == list(range(50))
        assert len(api.run("p/B").history(samples=None)) == 100
        assert len(api.runs("p")) == 2


@pytest.mark.parametrize("damage", ["foreign", "footer"])
def test_when_the_only_history_file_is_damaged(init, root, damage) -> None:
    """DuckDB reads the first file's footer as the SQL view is made: damage there too."""
    run = init(id="solo")
    run.log({"x": 1.0})
    run.finish()
    from nbtracker.store import wait_for_background

    wait_for_background()
    api = nbtracker.Api(root)
    (only,) = files_of(api, "p/solo")
    if damage == "foreign":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": [1, 2]}), only)
    else:
        data = bytearray(only.read_bytes())
        n = int.from_bytes(data[-8:-4], "little")
        for i in range(len(data) - 8 - n + 4, len(data) - 12):
            data[i] ^= 0x5A
        only.write_bytes(bytes(data))
    with pytest.warns(StorageWarning, match=only.name):
        assert api.sql("SELECT count(*) AS n FROM history")["n"][0] == 0
    h = api.run("p/solo").history(samples=None)
    assert len(h) == 0 and list(h.columns) == ["_step", "_timestamp", "_runtime"]
    assert list(api.run("p/solo").scan_history()) == []


def test_a_damage_found_only_while_reading_is_skipped_too(two_runs, api) -> None:
    """A file that passes the footer check but fails when DuckDB reads it (here: a
    'history' file whose row group is cut off: rewritten so the footer still parses)."""
    bad = second_file(api)
    data = bad.read_bytes()
    n = int.from_bytes(data[-8:-4], "little")
    footer = data[-8 - n :]
    body = bytearray(data[: -8 - n])
    for i in range(4, len(body)):  # garble every data page, keep the footer
        body[i] = 0xFF
    bad.write_bytes(bytes(body) + footer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = api.run("p/A").history(samples=None)
        df = api.sql("SELECT count(*) AS n FROM history WHERE run_id = 'B'")
    assert h["_step"].tolist() == list(range(50))
    assert df["n"][0] == 100
    assert any(
        issubclass(w.category, StorageWarning) and bad.name in str(w.message) for w in caught
    )


def test_cli_history_and_sql_warn_and_go_on(two_runs, api) -> None:
    bad = second_file(api)
    truncate(bad)
    root = str(two_runs)
    out = cli_run("history", "p/A", "--root", root, "--csv")
    assert out.exit_code == 0, out.output
    assert "Traceback" not in out.output
    assert f"warning: nbtracker skips the history file {bad}" in out.output
    assert len([x for x in out.output.splitlines() if x[:1].isdigit()]) == 50
    out = cli_run("sql", "SELECT count(*) AS n FROM history", "--root", root, "--csv")
    assert out.exit_code == 0 and out.output.splitlines()[1] == "200"  # A: 50 steps x 2 keys


def test_repair_moves_damaged_files_aside_and_compacts_the_rest(init, api, root) -> None:
    run = init(id="C")
    run.log({"x": 1.0})
    run.finish()
    from nbtracker.store import wait_for_background

    wait_for_background()
    hdir = api.run("p/C").dir / "history"
    for f in hdir.iterdir():
        f.unlink()
    # what a killed process leaves: single segments, never compacted; one of them torn
    ts = 1.8e9
    write_segment(hdir, segments.segment_name(1, 1, "w1"), [(0, ts, "x", 0.0, None)])
    torn = write_segment(hdir, segments.segment_name(2, 2, "w1"), [(1, ts, "x", 1.0, None)])
    write_segment(hdir, segments.segment_name(3, 3, "w1"), [(2, ts, "x", 2.0, None)])
    truncate(torn, 0.7)
    (hdir / ".h-00000004-00000004-w1.parquet.999.tmp").write_bytes(b"half")

    out = cli_run("repair", "--root", str(root))
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    rel = api.run("p/C").dir.relative_to(root)
    aside = root / rel / "damaged" / "history" / torn.name
    assert (
        f"moved aside {rel}/history/{torn.name} -> {rel}/damaged/history/{torn.name}" in out.output
    )
    assert f"not recovered: {rel}/history/{torn.name}: its rows are lost" in out.output
    assert "removed 1 temp files" in out.output
    assert aside.exists() and aside.stat().st_size > 0  # moved, never deleted
    assert [p.name for p in hdir.iterdir()] == [segments.segment_name(1, 3, "w1")]  # compacted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = nbtracker.Api(root).run("p/C").history(samples=None)
    assert h["_step"].tolist() == [0, 2] and h["x"].tolist() == [0.0, 2.0]
    again = cli_run("repair", "--root", str(root))
    assert again.exit_code == 0 and "indexed 1 runs" in again.output


@pytest.mark.parametrize("catalog", ["current", "older"])
def test_a_torn_run_json_keeps_the_run_visible_and_repair_rebuilds_it(
    two_runs, api, root, catalog
) -> None:
    rdir = api.run("p/A").dir
    before = json.loads((rdir / "run.json").read_text())
    if catalog == "older":  # a catalog written by an older version: fewer columns
        con = duckdb.connect(str(api.store.catalog.path))
        con.execute("ALTER TABLE runs DROP COLUMN error")
        con.close()
    truncate(rdir / "run.json")
    with pytest.warns(StorageWarning, match="run.json"):
        runs = nbtracker.Api(root).runs("p")
    assert sorted(r.id for r in runs) == ["A", "B"]  # A from the catalog's row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StorageWarning)
        a = nbtracker.Api(root).run("p/A")
        assert a.config == {"lr": 0.1} and a.state == "finished"
        assert len(a.history(samples=None)) == 100

    out = cli_run("repair", "--root", str(root))
    assert out.exit_code == 0, out.output
    assert f"rebuilt {rdir.relative_to(root)}/run.json (run.json not valid JSON" in out.output
    assert (rdir / "damaged" / "run.json").exists()
    rec = json.loads((rdir / "run.json").read_text())
    assert rec["id"] == "A" and rec["project"] == "p" and rec["state"] == "finished"
    assert rec["config"] == {"lr": 0.1} and rec["tags"] == ["t"]
    assert rec["last_step"] == before["last_step"] == 99
    assert rec["history_keys"] == {"loss": "float", "note": "str"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = nbtracker.Api(root).run("p/A")
        assert a.summary["loss"] == 99.0 and a.name == before["name"]
        assert a.history(samples=None)["note"].iloc[-1] == "n99"


@pytest.mark.parametrize("damage", ["empty", "missing"])
def test_a_lost_run_json_without_a_catalog_is_rebuilt_from_history(init, root, damage) -> None:
    for rid in ("A", "sibling"):
        run = init(project="My Project", id=rid, reinit="finish_previous")
        for i in range(10):
            run.log({"acc": i / 10, "epoch": i, "label": "x" if i % 2 else "y"})
        run.finish()
    nbtracker.finish()
    from nbtracker.store import wait_for_background

    wait_for_background()
    api = nbtracker.Api(root)
    rdir = api.run("My Project/A").dir
    assert rdir.name.startswith("A~") and rdir.parent.name.startswith("My_Project~")
    api.store.catalog.path.unlink()
    if damage == "empty":
        (rdir / "run.json").write_bytes(b"")
    else:
        (rdir / "run.json").unlink()

    out = cli_run("repair", "--root", str(root))
    assert out.exit_code == 1, out.output  # the config could not be recovered: said so
    assert "rebuilt runs/" in out.output and "not recovered:" in out.output
    assert "config, notes and define_metric rules are lost" in out.output
    rec = json.loads((rdir / "run.json").read_text())
    assert rec["id"] == "A" and rec["project"] == "My Project"  # names recovered
    assert rec["state"] == "crashed" and rec["last_step"] == 9
    assert rec["history_keys"] == {"acc": "float", "epoch": "int", "label": "str"}
    assert rec["summary"]["acc"] == 0.9 and rec["summary"]["epoch"] == 9
    a = nbtracker.Api(root).run("My Project/A")
    h = a.history(samples=None)
    assert h["epoch"].tolist() == list(range(10)) and str(h["epoch"].dtype) == "int64"
    assert len(nbtracker.Api(root).runs("My Project")) == 2


def test_catalog_path_that_is_a_folder(two_runs, root) -> None:
    cat = root / "nbtracker.duckdb"
    cat.unlink()
    cat.mkdir()
    (cat / "something").write_text("the user's")
    api = nbtracker.Api(root)
    assert sorted(r.id for r in api.runs("p")) == ["A", "B"]  # readers use the folders
    out = cli_run("repair", "--root", str(root))
    assert out.exit_code == 1
    assert "is a folder, not a DuckDB file" in out.output and "Traceback" not in out.output
    assert (cat / "something").read_text() == "the user's"
    out = cli_run("runs", "p", "--root", str(root), "--csv")
    assert out.exit_code == 0 and out.output.count("\n") == 3


def test_cli_storage_errors_are_messages(tmp_path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "runs").write_text("a file where the runs folder should be")
    for args in (["runs"], ["repair"], ["sql", "SELECT 1"]):
        out = cli_run(*args, "--root", str(root))
        assert out.exit_code == 1, (args, out.output)
        assert "Error: Not a directory" in out.output and "Traceback" not in out.output


def _read_only(root: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``root`` read-only: a read-only bind mount in a mount namespace
    of its own when we are root (root ignores file modes), plain permissions otherwise."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=120)
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(root)], check=True)
    if not shutil.which("unshare"):
        pytest.skip("unshare is needed to make a read-only store as root")
    script = (
        f'mount --bind "{root}" "{root}" && mount -o remount,ro,bind "{root}" && '
        f'touch "{root}/probe" 2>/dev/null && exit 99; exec "$@"'
    )
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *command],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    if proc.returncode == 99 or "mount:" in proc.stderr or "unshare:" in proc.stderr:
        pytest.skip(f"no read-only bind mount here: {proc.stderr.strip()[:200]}")
    return proc


def test_repair_and_reads_on_a_read_only_store(two_runs, api, root) -> None:
    truncate(second_file(api))
    cmd = [sys.executable, "-m", "nbtracker"]
    proc = _read_only(root, [*cmd, "repair", "--root", str(root)])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "could not be moved aside" in proc.stderr and "Read-only file system" in proc.stderr
    assert "could not write the catalog" in proc.stderr
    assert "Error: repair left" in proc.stderr
    proc = _read_only(root, [*cmd, "history", "p/A", "--root", str(root), "--csv"])
    assert proc.returncode == 0, proc.stderr
    assert "warning: nbtracker skips the history file" in proc.stderr
    assert len(proc.stdout.splitlines()) == 51  # header + the 50 readable steps
