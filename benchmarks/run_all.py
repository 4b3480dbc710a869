"""Run every nbtracker speed benchmark and print one report (Markdown).

Usage (from the repository root, after ``bash benchmarks/setup_peers.sh``)::

    .bench-venv/bin/python benchmarks/run_all.py            # full: about 10-15 minutes
    .bench-venv/bin/python benchmarks/run_all.py --quick    # smoke test: about 2 minutes
    .bench-venv/bin/python benchmarks/run_all.py --only log,read --out report.md

Each benchmark runs every tool side by side in fresh subprocesses, interleaved, and
reports medians over rounds plus ratios (peer / nbtracker). Progress goes to stderr,
the report to stdout (and to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import bench_lifecycle  # noqa: E402
import bench_log  # noqa: E402
import bench_read  # noqa: E402
import bench_table  # noqa: E402

BENCHES = {"log": bench_log, "lifecycle": bench_lifecycle, "read": bench_read, "table": bench_table}


def _git_state() -> str:
    """Commit of the checkout, and whether nbtracker/ has uncommitted changes (the bench venv
    installs nbtracker editable, so workers run whatever is in the tree)."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "nbtracker"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"git {head}" + (" + uncommitted changes in nbtracker/" if dirty else " (clean)")


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller counts, 1 round")
    p.add_argument("--rounds", type=int, default=None, help="rounds per tool (default 3; quick 1)")
    p.add_argument("--only", default=None, help="comma-separated subset of: " + ", ".join(BENCHES))
    p.add_argument("--out", default=None, help="also write the report to this file")
    args = p.parse_args()
    names = args.only.split(",") if args.only else list(BENCHES)
    passthrough = (["--quick"] if args.quick else []) + (
        ["--rounds", str(args.rounds)] if args.rounds else []
    )
    started = dt.datetime.now(dt.timezone.utc)
    parts = [
        "# nbtracker benchmarks\n",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
        f"- python: {platform.python_version()} ({sys.executable})",
        f"- command: `{Path(sys.executable).name} benchmarks/run_all.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- versions: {C.versions(['nbtracker', 'trackio', 'wandb', 'mlflow', 'duckdb', 'pyarrow', 'pandas'])}",
        f"- nbtracker code: {_git_state()}",
        f"- load average at start: {_loadavg()} (other work on the machine skews absolute figures; "
        "ratios are taken side by side, interleaved)",
        "",
    ]
    t0 = time.perf_counter()
    for name in names:
        C.say(f"== {name} ==")
        t = time.perf_counter()
        try:
            parts.append(BENCHES[name].main(passthrough))
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            parts.append(f"## {name}\n\nERROR: {exc!r}\n")
        C.say(parts[-1])  # show each section as soon as it is done
        C.say(f"== {name} done in {time.perf_counter() - t:.0f} s ==")
    parts.append(
        f"_total time {time.perf_counter() - t0:.0f} s; load average at end: {_loadavg()}_\n"
    )
    verdicts = [
        line
        for part in parts
        for line in part.splitlines()
        if line.startswith(("[PASS]", "[FAIL]", "[n/a"))
    ]
    parts.insert(9, "## Summary of targets\n\n" + "\n".join(f"    {v}" for v in verdicts) + "\n")
    text = "\n".join(parts)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
