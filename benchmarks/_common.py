"""Shared harness for the nbtracker speed benchmarks.

Every measurement runs each tool in its own fresh subprocess (``python <script> --worker
<name> ...``), so imports, threads and memory never leak from one tool into another. The
driver interleaves the tools round by round (rotating the order) and reports the median
over rounds, because this machine is noisy (up to 1.8x run to run).

A worker prints exactly one line starting with ``RESULT `` followed by a JSON object;
everything else it prints (peers are chatty) is ignored unless the worker fails.
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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULT_TAG = "RESULT "


# -- environment for peers -----------------------------------------------------------------
def peer_env(tmp: Path) -> dict[str, str]:
    """Environment for a worker: every tool writes under ``tmp`` and nothing goes online."""
    env = dict(os.environ)
    # Never let anything read the user's own settings or touch the network.
    for k in list(env):
        if k.startswith(("WANDB_", "NBTRACKER_", "MLFLOW_", "TRACKIO_")):
            del env[k]
    env.update(
        {
            "HOME": str(tmp / "home"),
            "XDG_CACHE_HOME": str(tmp / "cache"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "HF_HOME": str(tmp / "hf"),
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TRACKIO_DIR": str(tmp / "trackio"),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "DO_NOT_TRACK": "1",
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "WANDB_DIR": str(tmp / "wandb"),
            "WANDB_CACHE_DIR": str(tmp / "wandb-cache"),
            "WANDB_CONFIG_DIR": str(tmp / "wandb-config"),
            "WANDB_DATA_DIR": str(tmp / "wandb-data"),
            "WANDB_DISABLE_GIT": "true",
            "WANDB_DISABLE_CODE": "true",
            "WANDB_CONSOLE": "off",
            "MLFLOW_TRACKING_URI": (tmp / "mlruns").as_uri(),
            "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
            "MLFLOW_ALLOW_FILE_STORE": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "NBTRACKER_DIR": str(tmp / "nbruns"),
        }
    )
    for d in ("home", "cache", "config", "hf", "trackio", "wandb", "nbruns"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    return env


def quiet_peers() -> None:
    """Inside a worker: silence peers' logging and warnings (they go to stderr anyway)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


# -- worker side ---------------------------------------------------------------------------
def nbt_wait_durable() -> float:
    """Wait until nbtracker's finished runs are durable: last rows and final record on disk
    (its finish() hands that to a thread); return the seconds waited."""
    t = time.perf_counter()
    try:
        from nbtracker.store import wait_for_durable
    except ImportError:
        return 0.0
    wait_for_durable(timeout=300)
    return time.perf_counter() - t


def nbt_wait() -> float:
    """Wait until nbtracker's finished runs are durable and also compacted and indexed in
    the catalog (all background work); return the seconds waited."""
    t = time.perf_counter()
    try:
        from nbtracker.store import wait_for_background
    except ImportError:
        return 0.0
    wait_for_background(timeout=300)
    return time.perf_counter() - t


def emit(result: dict[str, Any]) -> None:
    result["t_emit"] = time.time()
    sys.stdout.flush()
    print(RESULT_TAG + json.dumps(result), flush=True)


def rss_mb() -> float:
    """Resident memory of this process now (VmRSS), in MB (10^6 bytes)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def hwm_mb() -> float:
    """Peak resident memory of this process (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def children_count() -> int:
    """Number of live child processes of this process (wandb spawns helpers)."""
    try:
        me = os.getpid()
        n = 0
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    parts = f.read().rsplit(")", 1)[1].split()
                if int(parts[1]) == me:
                    n += 1
            except OSError:
                continue
        return n
    except OSError:
        return -1


# -- driver side ---------------------------------------------------------------------------
def run_worker(
    script: Path,
    args: Sequence[str],
    *,
    timeout: float = 600,
    python: str | None = None,
) -> dict[str, Any]:
    """Run ``python script --worker ...`` in a fresh process with its own temp dir."""
    tmp = Path(tempfile.mkdtemp(prefix="nbt-bench-"))
    try:
        env = peer_env(tmp)
        cmd = [python or sys.executable, str(script), "--tmp", str(tmp), *args]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, env=env, cwd=str(tmp), capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        wall = time.perf_counter() - t0
        t_done = time.time()
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_TAG):
                res = json.loads(line[len(RESULT_TAG) :])
                res.setdefault("process_wall_s", wall)
                if "t_emit" in res:  # interpreter shutdown: atexit hooks, helper processes
                    res["exit_s"] = t_done - res.pop("t_emit")
                return res
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)[-600:]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def interleaved(
    jobs: dict[str, Callable[[], dict[str, Any]]],
    rounds: int,
    *,
    log: Callable[[str], None] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run each job ``rounds`` times, interleaved (order rotated every round)."""
    names = list(jobs)
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)] if names else []
        for name in order:
            t0 = time.perf_counter()
            res = jobs[name]()
            out[name].append(res)
            if log:
                status = res.get("error") or "ok"
                log(
                    f"  round {r + 1}/{rounds} {name:28s} {time.perf_counter() - t0:6.1f} s  {status}"
                )
    return out


def med(results: Iterable[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in results if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def spread(results: Iterable[dict[str, Any]], key: str) -> str:
    vals = [r[key] for r in results if isinstance(r.get(key), (int, float))]
    if len(vals) < 2:
        return ""
    return f"{min(vals):.3g}–{max(vals):.3g}"


def first_error(results: Iterable[dict[str, Any]]) -> str | None:
    for r in results:
        if r.get("error"):
            return str(r["error"])
    return None


def fmt(x: float | None, unit: str = "", digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 1000:
        s = f"{x:,.0f}"
    elif abs(x) >= 100:
        s = f"{x:.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.{digits - 1}f}" if abs(x) >= 1 else f"{x:.{digits}g}"
    return f"{s} {unit}".strip()


def ratio(peer: float | None, ours: float | None) -> str:
    if peer is None or ours is None or ours == 0:
        return "n/a"
    return f"{peer / ours:.1f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (readable as plain text too)."""
    cols = list(zip(*([list(headers)] + [list(r) for r in rows]), strict=False))
    widths = [max(len(str(c)) for c in col) for col in cols]

    def line(cells: Sequence[str]) -> str:
        return (
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)) + " |"
        )

    out = [line(headers), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def check(
    label: str, value: float | None, op: str, target: float, unit: str = ""
) -> tuple[str, bool | None]:
    """Return a printable target line and whether it passed (None when not measured)."""
    if value is None:
        return f"[n/a ] {label}: not measured (target {op} {target:g}{unit})", None
    ok = value <= target if op == "<=" else value >= target
    return f"[{verdict(ok)}] {label}: {value:.3g}{unit} (target {op} {target:g}{unit})", ok


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller counts, 1 round (smoke test)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per tool (default 3, quick 1)")
    p.add_argument("--tools", default=None, help="comma-separated subset of tools to run")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--keys", type=int, default=5, help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help=argparse.SUPPRESS)
    return p


def importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def say(msg: str = "") -> None:
    """Progress lines go to stderr so stdout holds only the report."""
    print(msg, file=sys.stderr, flush=True)


def header(title: str, args: argparse.Namespace, rounds: int) -> str:
    import platform

    return (
        f"## {title}\n\n"
        f"python {platform.python_version()} ({sys.executable}), {os.cpu_count()} cores, "
        f"{'QUICK mode, ' if args.quick else ''}{rounds} round(s), median reported; "
        f"each tool in a fresh subprocess, tools interleaved.\n"
    )


def versions(mods: Iterable[str]) -> str:
    import importlib.metadata as md

    parts = []
    for m in mods:
        try:
            parts.append(f"{m} {md.version(m)}")
        except md.PackageNotFoundError:
            parts.append(f"{m} (not installed)")
    return ", ".join(parts)
