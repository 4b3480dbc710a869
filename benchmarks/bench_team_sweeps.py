"""Sweeps across machines (issue 14 point 2): the cost of a trial when the sweep lives in a
team store (optuna's RDB storage in PostgreSQL, advisory lock per trial) next to a local
sweep (optuna journal file, file lock), in one process, rounds interleaved.

Each round: a random sweep, one in-process agent, ``--trials`` trials of a function that
logs one value; ms per trial (agent start to end / trials), and for the team sweep how long
``team.wait()`` then took to commit the last runs. PostgreSQL 16 runs locally (pgserver,
Unix socket): network latency to a real server is not in these figures.

Usage::

    .venv/bin/python benchmarks/bench_team_sweeps.py [--trials 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import nbtracker  # noqa: E402
from nbtracker import team  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from pg_testutil import PG, pg_folder

    os.environ["NBTRACKER_SILENT"] = "1"
    pg = PG(pg_folder())
    try:
        url = pg.url(pg.new_db())
        cfg = {"method": "random", "metric": {"name": "loss", "goal": "minimize"},
               "parameters": {"x": {"min": 0.0, "max": 1.0}}}  # fmt: skip

        def train() -> None:
            nbtracker.init()
            nbtracker.log({"loss": nbtracker.config.x})

        for r in range(args.rounds):
            for label, store in (("local", None), ("team", url)):
                root = tempfile.mkdtemp(prefix="nbt-bts-")
                os.environ["NBTRACKER_CACHE"] = f"{root}/cache"
                sweep_id = nbtracker.sweep(cfg, project="b", dir=root, store=store)
                t0 = time.perf_counter()
                nbtracker.agent(sweep_id, function=train, count=args.trials, dir=root, store=store)
                per = (time.perf_counter() - t0) / args.trials * 1000
                extra = ""
                if store is not None:
                    t1 = time.perf_counter()
                    team.wait(60)
                    extra = f", then {time.perf_counter() - t1:.2f} s until committed"
                print(f"round {r + 1} {label:5s}: {per:.0f} ms per trial{extra}", flush=True)
    finally:
        pg.close()


if __name__ == "__main__":
    main()
