"""Full reads of a big run: time and peak memory of the reader.

The run has 2,000,000 steps x 5 keys (10M rows). To save time it is not logged: one
compacted history segment is written directly (the schema and layout ``compact()``
produces: ``step BIGINT, ts DOUBLE, key VARCHAR, value DOUBLE, text VARCHAR``, sorted by
``(key, step)``, zstd, 65,536-row groups) into a run made by ``init()`` / ``finish()``,
whose ``run.json`` then gets the segment's ``last_step`` and key types.

Each read runs in a fresh process, which first imports pandas, pyarrow, duckdb and
nbtracker (a notebook has them loaded) and notes its RSS; the figures are the read's wall
time (and CPU time, steadier on a busy machine) and the process's peak RSS (``VmHWM``), with the
RSS before the read beside it.

Reads:

* ``history``: ``Api().run(p).history(samples=None)`` (every row, a wide DataFrame)
* ``scan``: ``for row in Api().run(p).scan_history(): ...`` (every row as a dict)
* ``scan_keys``: ``scan_history(keys=["loss"])``
* ``sampled``: ``history(samples=1000)``
* ``sql``: ``nbtracker.sql("SELECT key, count(*), avg(value) FROM history GROUP BY 1")``

Usage::

    .venv/bin/python benchmarks/bench_read_big.py [--steps 2000000] [--reads history,scan] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEYS = ("acc", "grad_norm", "loss", "lr", "val_loss")
READS = ("history", "scan", "scan_keys", "sampled", "sql")


def build(root: Path, steps: int) -> str:
    """Make the run (``init``/``finish``), then put the big segment in its history folder."""
    import duckdb

    import nbtracker
    from nbtracker import segments
    from nbtracker.store import wait_for_background

    run = nbtracker.init(dir=str(root), project="big", id="r", config={"lr": 1e-3})
    run.log(dict.fromkeys(KEYS, 0.0))
    run.finish()
    wait_for_background()
    hdir = run.dir / "history"
    for p in hdir.iterdir():
        p.unlink()
    out = hdir / segments.segment_name(1, 1)
    con = duckdb.connect()
    keys = ", ".join(f"('{k}')" for k in KEYS)
    con.execute(
        f"""COPY (SELECT s AS step, 1.8e9 + s * 0.001 AS ts, k AS key,
                         CASE k WHEN 'loss' THEN 1.0 / (s + 1) WHEN 'acc' THEN s / {steps}
                                ELSE sin(s / 1000.0) END AS value,
                         CAST(NULL AS VARCHAR) AS text
                  FROM range({steps}) t(s), (VALUES {keys}) k(k) ORDER BY key, step)
            TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 65536)"""
    )
    con.close()
    rec_path = run.dir / "run.json"
    rec = json.loads(rec_path.read_text())
    rec["last_step"] = steps - 1
    rec["history_keys"] = dict.fromkeys(KEYS, "float")
    rec["summary"]["_step"] = steps - 1
    from nbtracker._util import atomic_write_json

    atomic_write_json(rec_path, rec)
    return "big/r"


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (``VmHWM``: peak RSS of this program;
    ``ru_maxrss`` would carry the parent's peak across fork + exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker(root: str, path: str, what: str) -> dict[str, float]:
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    import nbtracker

    before = _status_mb("VmRSS")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    api = nbtracker.Api(root)
    n = 0
    if what == "history":
        n = len(api.run(path).history(samples=None))
    elif what == "scan":
        for _ in api.run(path).scan_history():
            n += 1
    elif what == "scan_keys":
        for _ in api.run(path).scan_history(keys=["loss"]):
            n += 1
    elif what == "sampled":
        n = len(api.run(path).history(samples=1000))
    elif what == "sql":
        n = len(
            nbtracker.sql("SELECT key, count(*), avg(value) FROM history GROUP BY 1", root=root)
        )
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    peak = _status_mb("VmHWM")
    return {
        "rows": n,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(peak),
        "rss_before_mb": round(before),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2_000_000)
    ap.add_argument("--reads", default=",".join(READS))
    ap.add_argument("--root", help="reuse (or build once into) this folder")
    ap.add_argument("--rounds", type=int, default=1, help="repeat each read; median time")
    ap.add_argument("--worker", nargs=3, metavar=("ROOT", "PATH", "WHAT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(*args.worker)), flush=True)
        return
    tmp = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="nbt-bigread-"))
    try:
        if not (tmp / "runs").exists():
            t0 = time.perf_counter()
            code = (
                f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                f"import bench_read_big as b; b.build(__import__('pathlib').Path({str(tmp)!r}), {args.steps})"
            )
            subprocess.run([sys.executable, "-c", code], check=True)  # keeps this process small
            print(
                f"built {args.steps:,} steps x {len(KEYS)} keys in {time.perf_counter() - t0:.1f} s"
            )
        results: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):  # rounds interleaved: this machine's load drifts
            for what in args.reads.split(","):
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", str(tmp), "big/r", what],
                    capture_output=True, text=True, check=False,
                    env={**os.environ, "PYTHONWARNINGS": "ignore"},
                )  # fmt: skip
                line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                if not line:
                    print(f"{what:10s} FAILED\n{out.stderr[-2000:]}")
                    continue
                results.setdefault(what, []).append(json.loads(line[0][7:]))
        for what, rs in results.items():
            wall = statistics.median(r["wall_s"] for r in rs)
            cpu = statistics.median(r["cpu_s"] for r in rs)
            peak = max(r["peak_rss_mb"] for r in rs)
            print(
                f"{what:10s} {wall:7.2f} s (CPU {cpu:6.2f} s; median of {len(rs)})  "
                f"peak RSS {peak:6.0f} MB "
                f"(before the read {rs[0]['rss_before_mb']:.0f} MB)  rows {rs[0]['rows']:,}"
            )
    finally:
        if not args.root:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
