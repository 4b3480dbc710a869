"""Where nbtracker's time goes in the slow paths the benchmarks flag (diagnostic, not a
benchmark): the writer thread during a tight ``log()`` loop, ``finish()``'s background
compaction, and the down-sampled history read.

It uses nbtracker internals (``run._buffer``, ``run._writer``, ``nbtracker.query``), so
it may need updating when those change. Usage::

    .bench-venv/bin/python benchmarks/profile_nbtracker.py [--steps 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def top(pr: cProfile.Profile, n: int = 14) -> str:
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(n)
    lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument(
        "--keep", default=None, help="build (or reuse) the data here instead of a temp dir"
    )
    args = p.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nbt-prof-"))
    import nbtracker as nbt
    import nbtracker._state as state

    try:
        # 1. tight loop: does the writer keep up?
        print(f"## 1. {args.steps:,} log() calls of 4 floats in a tight loop (fresh process)\n")
        run = nbt.init(project="proj", id=f"big{int(time.time())}", dir=str(root))
        rss0 = C.rss_mb()
        t0 = time.perf_counter()
        samples = []
        for i in range(args.steps):
            x = 1.0 / (i + 1)
            run.log(
                {
                    "loss": x + (0.5 if i % 9973 == 0 else 0.0),
                    "acc": 1 - x,
                    "lr": 1e-3,
                    "grad_norm": x * 3,
                }
            )
            if i % (args.steps // 10 or 1) == 0:
                samples.append(
                    (
                        i,
                        time.perf_counter() - t0,
                        C.rss_mb() - rss0,
                        len(run._buffer),
                        run._writer.flushes,
                    )
                )
        loop = time.perf_counter() - t0
        print(
            C.table(
                ["step", "t s", "RSS growth MB", "rows buffered", "segments flushed"],
                [[f"{a:,}", f"{b:.2f}", f"{c:.0f}", f"{d:,}", str(e)] for a, b, c, d, e in samples],
            )
        )
        print(
            f"\nloop {loop:.2f} s; at the end {len(run._buffer):,} rows still buffered, "
            f"{run._writer.flushes} segments written, RSS +{C.rss_mb() - rss0:.0f} MB\n"
        )

        # 2. finish(): run the background work synchronously so cProfile sees it
        print("## 2. finish(): flush + compaction + catalog, profiled synchronously\n")
        state.exiting = True  # makes finalize_background run in this thread
        pr = cProfile.Profile()
        t = time.perf_counter()
        pr.enable()
        run.finish()
        pr.disable()
        state.exiting = False
        print(
            f"finish until durable: {(time.perf_counter() - t) * 1e3:.0f} ms, RSS now +{C.rss_mb() - rss0:.0f} MB, "
            f"peak {C.hwm_mb():.0f} MB\n"
        )
        print(top(pr))

        # 3. the down-sampled history read, piece by piece
        print("\n## 3. history(keys=['loss'], samples=1000)\n")
        import duckdb  # noqa: F401
        import pandas  # noqa: F401

        from nbtracker import query

        api = nbt.Api(root=str(root))
        r = api.run(f"proj/{run.id}")
        t = time.perf_counter()
        h = r.history(keys=["loss"], samples=1000)
        print(f"history(): {(time.perf_counter() - t) * 1e3:.0f} ms, shape {h.shape}")
        pr = cProfile.Profile()
        pr.enable()
        r.history(keys=["loss"], samples=1000)
        pr.disable()
        print(top(pr, 10))
        files = query.history_files(api.store, r.dir)
        print(f"\nfiles: {[(os.path.basename(f), os.path.getsize(f)) for f in files]}")
        con = query.duck()
        rows = []

        def timed(label: str, sql: str, params: list) -> None:  # type: ignore[type-arg]
            t = time.perf_counter()
            con.execute(sql, params).fetchall()
            rows.append([label, f"{(time.perf_counter() - t) * 1e3:.1f}"])

        timed(
            "count(DISTINCT step) WHERE key in [loss]",
            "SELECT count(DISTINCT step) FROM read_parquet(?) WHERE list_contains(?, key)",
            [files, ["loss"]],
        )
        timed(
            "count(*) WHERE key = 'loss'",
            "SELECT count(*) FROM read_parquet(?) WHERE key = 'loss'",
            [files],
        )
        t = time.perf_counter()
        steps = query.downsample_steps(con, files, ["loss"], 1000)
        rows.append(
            [
                "downsample_steps() (min/max per bucket -> steps)",
                f"{(time.perf_counter() - t) * 1e3:.1f}",
            ]
        )
        timed(
            "read rows WHERE list_contains(steps, step)",
            "SELECT step, ts, key, value FROM read_parquet(?) WHERE list_contains(?, key) AND list_contains(?, step)",
            [files, ["loss"], steps],
        )
        n = max(1, args.steps)
        timed(
            "one pass: buckets with arg_min/arg_max + values",
            "SELECT step * 500 // ? AS b, arg_min(step, value), min(value), arg_max(step, value), max(value) "
            "FROM read_parquet(?) WHERE key = 'loss' GROUP BY b",
            [n, files],
        )
        print()
        print(C.table(["query (one DuckDB connection)", "ms"], rows))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
