"""Which engine carries the team store: commit throughput with several writer processes,
and read speed, for three maintained engines with their own transactions (issue 14).

- ``pgparquet``: the catalog is a PostgreSQL table; each commit writes one zstd Parquet
  object through a pyarrow filesystem and inserts its row in one PostgreSQL transaction
  (``ON CONFLICT DO NOTHING`` on the segment id: a repeated commit is a no-op).
- ``ducklake``: DuckLake with its catalog in PostgreSQL; each commit is one ``INSERT``
  through DuckDB. Needs duckdb==1.5.5 plus the PyPI-repackaged ``duckdb-extension-ducklake``
  and ``duckdb-extension-postgres-scanner`` 1.5.5: pass ``--ducklake-python`` (a venv with
  exactly those; the project's own venv has duckdb 2.x, for which no build exists).
- ``iceberg``: Apache Iceberg through pyiceberg's SQL catalog on PostgreSQL; each commit is
  one ``table.append`` (optimistic concurrency: a conflicting commit is retried).

Every engine gets its own fresh PostgreSQL database (pgserver starts PostgreSQL 16) and a
local data path (object storage is the same for all three; moto would measure moto).
Each of ``--procs`` processes commits ``--commits`` segments of ``--rows`` rows (one run
per process, long layout step/key/value). Reported: commits/s over all processes, failed
commits, retries, then a reader's read of one run's rows and of all rows (median of 5, on
an open connection: each read asks the catalog for the current state) and what opening
that connection cost (imports excluded for none: a fresh process pays them all).

Usage (pgserver and psycopg come with the ``test`` extra; pyiceberg and sqlalchemy are for
this benchmark only)::

    .venv/bin/pip install pyiceberg sqlalchemy
    python3 -m venv /tmp/dl-venv && /tmp/dl-venv/bin/pip install duckdb==1.5.5 \
        duckdb-extension-ducklake==1.5.5 duckdb-extension-postgres-scanner==1.5.5 \
        'psycopg[binary]' pyarrow
    .venv/bin/python benchmarks/bench_team_engines.py [--procs 4] [--commits 20] \
        --ducklake-python /tmp/dl-venv/bin/python
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT = "RESULT "


def _segment(run: str, seq: int, rows: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    n = rows // 5
    steps = [seq * n + i for i in range(n) for _ in range(5)]
    keys = [f"k{j}" for _ in range(n) for j in range(5)]
    vals = [float(i) for i in range(len(steps))]
    return pa.table(
        {
            "run_id": pa.array([run] * len(steps)),
            "step": pa.array(steps, pa.int64()),
            "key": pa.array(keys),
            "value": pa.array(vals, pa.float64()),
        }
    )


# -- workers (one process each) -----------------------------------------------------------
def worker_pgparquet(args: argparse.Namespace) -> dict:
    import psycopg
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs = pafs.LocalFileSystem()
    fails = 0
    t0 = time.perf_counter()
    with psycopg.connect(args.uri, autocommit=False) as con:
        for seq in range(args.commits):
            tbl = _segment(args.run, seq, args.rows)
            key = f"{args.run}/h-{seq}.parquet"
            path = f"{args.data}/{key}"
            fs.create_dir(os.path.dirname(path), recursive=True)
            with fs.open_output_stream(path) as out:
                pq.write_table(tbl, out, compression="zstd")
            try:
                with con.transaction():
                    con.execute(
                        "INSERT INTO segments (seg_id, run_id, path, nrows) VALUES (%s,%s,%s,%s)"
                        " ON CONFLICT (seg_id) DO NOTHING",
                        (key, args.run, path, tbl.num_rows),
                    )
            except Exception:  # noqa: BLE001
                fails += 1
    return {"seconds": time.perf_counter() - t0, "fails": fails, "retries": 0}


def _ducklake_con(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import duckdb
    import duckdb_extension_ducklake
    import duckdb_extension_postgres_scanner

    con = duckdb.connect(config={"autoinstall_known_extensions": "false"})
    for mod, name in (
        (duckdb_extension_postgres_scanner, "postgres_scanner"),
        (duckdb_extension_ducklake, "ducklake"),
    ):
        (ext,) = Path(mod.__file__).parent.glob(f"extensions/*/{name}.duckdb_extension")
        con.execute(f"LOAD '{ext}'")
    con.execute(f"ATTACH 'ducklake:postgres:{args.libpq}' AS lake (DATA_PATH '{args.data}/')")
    return con


def worker_ducklake(args: argparse.Namespace) -> dict:
    con = _ducklake_con(args)
    fails = retries = 0
    t0 = time.perf_counter()
    for seq in range(args.commits):
        seg = _segment(args.run, seq, args.rows)  # noqa: F841 - read by DuckDB by name
        for attempt in range(20):
            try:
                con.execute("INSERT INTO lake.history SELECT * FROM seg")
                break
            except Exception:  # noqa: BLE001 - a conflicting commit: DuckLake says retry
                retries += 1
                time.sleep(0.01 * (attempt + 1))
        else:
            fails += 1
    return {"seconds": time.perf_counter() - t0, "fails": fails, "retries": retries}


def _iceberg_catalog(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "team",
        uri=args.sa_uri,
        warehouse=f"file://{args.data}",
    )


def worker_iceberg(args: argparse.Namespace) -> dict:
    from pyiceberg.exceptions import CommitFailedException

    cat = _iceberg_catalog(args)
    fails = retries = 0
    t0 = time.perf_counter()
    for seq in range(args.commits):
        seg = _segment(args.run, seq, args.rows)
        for attempt in range(50):
            try:
                cat.load_table("nbt.history").append(seg)
                break
            except CommitFailedException:
                retries += 1
                time.sleep(0.01 * (attempt + 1))
        else:
            fails += 1
    return {"seconds": time.perf_counter() - t0, "fails": fails, "retries": retries}


# -- set-up and reads (driver side, or the ducklake python) -------------------------------
def setup(engine: str, args: argparse.Namespace) -> None:
    if engine == "pgparquet":
        import psycopg

        with psycopg.connect(args.uri, autocommit=True) as con:
            con.execute(
                "CREATE TABLE segments (seg_id text PRIMARY KEY, run_id text, path text,"
                " nrows int, committed_at timestamptz DEFAULT now())"
            )
    elif engine == "ducklake":
        con = _ducklake_con(args)
        con.execute(
            "CREATE TABLE lake.history (run_id VARCHAR, step BIGINT, key VARCHAR, value DOUBLE)"
        )
    elif engine == "iceberg":
        cat = _iceberg_catalog(args)
        cat.create_namespace("nbt")
        cat.create_table("nbt.history", schema=_segment("x", 0, 5).schema)


def read(engine: str, args: argparse.Namespace) -> dict:
    """Median seconds to read one run's rows and all rows; row count (must be complete)."""

    def timed(fn):  # type: ignore[no-untyped-def]
        out, times = None, []
        for _ in range(5):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return out, statistics.median(times)

    t_open = time.perf_counter()
    if engine == "pgparquet":
        import psycopg
        import pyarrow.parquet as pq

        pg = psycopg.connect(args.uri, autocommit=True)

        def one() -> int:
            sql = "SELECT path FROM segments WHERE run_id = %s"
            paths = [r[0] for r in pg.execute(sql, ("r0",))]
            return pq.ParquetDataset(paths).read().num_rows

        def every() -> int:
            paths = [r[0] for r in pg.execute("SELECT path FROM segments")]
            return pq.ParquetDataset(paths).read().num_rows

    elif engine == "ducklake":
        con = _ducklake_con(args)

        def one() -> int:
            sql = "SELECT * FROM lake.history WHERE run_id='r0'"
            return con.execute(sql).fetch_arrow_table().num_rows

        def every() -> int:
            return con.execute("SELECT * FROM lake.history").fetch_arrow_table().num_rows

    else:
        from pyiceberg.expressions import EqualTo

        cat = _iceberg_catalog(args)

        def one() -> int:
            tbl = cat.load_table("nbt.history")  # the latest snapshot, as a reader needs
            return tbl.scan(row_filter=EqualTo("run_id", "r0")).to_arrow().num_rows

        def every() -> int:
            return cat.load_table("nbt.history").scan().to_arrow().num_rows

    t_open = time.perf_counter() - t_open

    n_one, t_one = timed(one)
    n_all, t_all = timed(every)
    return {"one_run_rows": n_one, "one_run_s": t_one, "all_rows": n_all, "all_s": t_all,
            "open_s": t_open}  # fmt: skip


def _worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker")
    p.add_argument("--setup")
    p.add_argument("--read")
    for name in ("uri", "libpq", "sa_uri", "data", "run"):
        p.add_argument(f"--{name}")
    p.add_argument("--commits", type=int)
    p.add_argument("--rows", type=int)
    args = p.parse_args(argv)
    if args.setup:
        setup(args.setup, args)
        print(RESULT + "{}")
    elif args.read:
        print(RESULT + json.dumps(read(args.read, args)))
    else:
        fn = {"pgparquet": worker_pgparquet, "ducklake": worker_ducklake, "iceberg": worker_iceberg}
        print(RESULT + json.dumps(fn[args.worker](args)))


def _call(python: str, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [python, __file__, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _result(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=600)
    for line in out.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    raise RuntimeError(f"worker failed (exit {p.returncode}):\n{err[-3000:]}")


def main() -> None:
    if "--worker" in sys.argv or "--setup" in sys.argv or "--read" in sys.argv:
        _worker_main(sys.argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--commits", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--engines", default="pgparquet,ducklake,iceberg")
    ap.add_argument("--ducklake-python", default=os.environ.get("NBT_DUCKLAKE_PYTHON"))
    args = ap.parse_args()

    import pgserver

    tmp = Path(tempfile.mkdtemp(prefix="nbt-team-engines-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    rows = []
    try:
        for engine in args.engines.split(","):
            python = sys.executable
            if engine == "ducklake":
                if not args.ducklake_python:
                    print("ducklake: skipped (pass --ducklake-python, a venv with duckdb==1.5.5)")
                    continue
                python = args.ducklake_python
            if engine == "iceberg" and not all(
                importlib.util.find_spec(m) for m in ("pyiceberg", "sqlalchemy")
            ):
                print("iceberg: skipped (pip install pyiceberg sqlalchemy in this venv)")
                continue
            db = f"bench_{engine}"
            server.psql(f"CREATE DATABASE {db};")
            sock = server.get_postmaster_info().socket_dir
            uri = f"postgresql://postgres@/{db}?host={sock}"
            common = [
                "--uri", uri,
                "--libpq", f"dbname={db} user=postgres host={sock}",
                "--sa_uri", f"postgresql+psycopg://postgres@/{db}?host={sock}",
                "--data", str(tmp / f"data-{engine}"),
            ]  # fmt: skip
            (tmp / f"data-{engine}").mkdir()
            _result(_call(python, ["--setup", engine, *common]))
            t0 = time.perf_counter()
            procs = [
                _call(python, ["--worker", engine, "--run", f"r{i}",
                               "--commits", str(args.commits), "--rows", str(args.rows), *common])
                for i in range(args.procs)
            ]  # fmt: skip
            res = [_result(p) for p in procs]
            wall = time.perf_counter() - t0
            total = args.procs * args.commits
            fails = sum(r["fails"] for r in res)
            rd = _result(_call(python, ["--read", engine, *common]))
            expect = (total - fails) * (args.rows // 5 * 5)
            rows.append(
                {
                    "engine": engine,
                    "commits_per_s": (total - fails) / max(r["seconds"] for r in res),
                    "wall_s_incl_start": wall,
                    "failed": fails,
                    "retries": sum(r["retries"] for r in res),
                    "rows_complete": rd["all_rows"] == expect,
                    "read_one_run_ms": rd["one_run_s"] * 1000,
                    "read_all_ms": rd["all_s"] * 1000,
                    "open_ms": rd["open_s"] * 1000,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.procs} processes x {args.commits} commits x {args.rows} rows")
    print(f"{'engine':<10} {'commits/s':>10} {'failed':>7} {'retries':>8} {'complete':>9} "
          f"{'read 1 run ms':>14} {'read all ms':>12} {'open ms':>8}")  # fmt: skip
    for r in rows:
        print(
            f"{r['engine']:<10} {r['commits_per_s']:>10.1f} {r['failed']:>7} {r['retries']:>8} "
            f"{r['rows_complete']!s:>9} {r['read_one_run_ms']:>14.1f} {r['read_all_ms']:>12.1f} "
            f"{r['open_ms']:>8.1f}"
        )


if __name__ == "__main__":
    main()
