"""Cost of what a run captures by itself (system metrics, console, environment).

Three measurements, each worker in its own fresh subprocess, rounds interleaved (this
machine is noisy, so ratios taken side by side count, not absolute times):

* **sampler**: CPU time of the whole process while the training thread sleeps, with the
  capture on (default settings: a sample every 15 s) minus the same run with it off, over
  the same wall time, as a share of one core (target <= 0.5 %). Also the capture thread's
  own CPU time per sample, measured at a 1 s interval (psutil + the segment write).
* **log()**: mean µs per ``log()`` of 5 floats, 100k steps (``--quick`` 20k), capture on
  vs off (ratio), timed after the one-off environment snapshot (its CPU time is reported
  apart); and ``finish()`` until durable.
* **print()**: µs per ``print()`` of a short line to a pipe, capture on vs off (ratio).

Usage::

    .venv/bin/python benchmarks/bench_capture.py [--quick] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

OFF = {"x_disable_stats": True, "console": "off", "x_disable_meta": True}


def worker(kind: str, capture: bool, arg: float) -> dict[str, float]:
    import nbtracker

    settings = None if capture else OFF
    if kind == "idle":  # arg: seconds of sleep
        run = nbtracker.init(project="bench", settings=settings)
        time.sleep(2.5)  # past the first sample and the environment snapshot
        c0, t0 = time.process_time(), time.monotonic()
        th0 = run._capture.cpu_seconds if run._capture else 0.0
        n0 = run._capture.samples if run._capture else 0
        time.sleep(arg)
        cpu, wall = time.process_time() - c0, time.monotonic() - t0
        th = (run._capture.cpu_seconds - th0) if run._capture else 0.0
        n = (run._capture.samples - n0) if run._capture else 0
        env_cpu = run._capture.env_cpu_seconds if run._capture else 0.0
        run.finish()
        return {"cpu": cpu, "wall": wall, "thread_cpu": th, "samples": n, "env_cpu": env_cpu}
    if kind == "per_sample":  # the capture thread's CPU per sample, at a 1 s interval
        run = nbtracker.init(project="bench", settings={"x_stats_sampling_interval": 1.0})
        time.sleep(2.5)
        th0, n0 = run._capture.cpu_seconds, run._capture.samples
        time.sleep(arg)
        th, n = run._capture.cpu_seconds - th0, run._capture.samples - n0
        run.finish()
        return {"thread_cpu": th, "samples": n}
    if kind == "log":  # arg: steps
        n = int(arg)
        rows = [{"loss": 1 / (i + 1), "acc": i * 1e-6, "lr": 0.1, "g": 2.0, "v": 3.0}
                for i in range(n)]  # fmt: skip
        run = nbtracker.init(project="bench", settings=settings)
        time.sleep(2.0)  # past the one-off environment snapshot (reported apart)
        t0 = time.perf_counter()
        for r in rows:
            run.log(r)
        t1 = time.perf_counter()
        run.finish()
        from nbtracker.store import wait_for_durable

        wait_for_durable()
        t2 = time.perf_counter()
        return {"us": (t1 - t0) / n * 1e6, "finish_s": t2 - t1}
    if kind == "print":  # arg: lines
        n = int(arg)
        run = nbtracker.init(project="bench", settings=settings)
        time.sleep(2.0)  # past the one-off environment snapshot (reported apart)
        out = sys.stdout
        t0 = time.perf_counter()
        for i in range(n):
            print("step", i, "loss 0.123")
        out.flush()
        dt = time.perf_counter() - t0
        run.finish()
        return {"us": dt / n * 1e6}
    raise ValueError(kind)


def spawn(kind: str, capture: bool, arg: float, root: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NBTRACKER_"))}
    env["NBTRACKER_DIR"] = root
    cmd = [sys.executable, __file__, "--worker", kind, str(int(capture)), str(arg)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=300)
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    if res.returncode or not line:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(line[-1][7:])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", nargs=3)
    ap.add_argument("--only", default="idle,log,print", help="comma-separated parts")
    a = ap.parse_args()
    if a.worker:
        kind, cap, arg = a.worker
        print("RESULT " + json.dumps(worker(kind, cap == "1", float(arg))), flush=True)
        return
    idle_s = 10.0 if a.quick else 20.0
    steps = 20_000 if a.quick else 100_000
    lines = 20_000 if a.quick else 100_000
    got: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="nbt-bench-capture-") as root:
        for r in range(a.rounds):
            parts = a.only.split(",")
            order = [(k, c) for k in ("idle", "log", "print") if k in parts for c in (True, False)]
            if r % 2:
                order.reverse()
            for kind, cap in order:
                arg = {"idle": idle_s, "log": steps, "print": lines}[kind]
                got.setdefault(f"{kind}-{'on' if cap else 'off'}", []).append(
                    spawn(kind, cap, arg, root)
                )
            if "idle" in parts:
                got.setdefault("per_sample", []).append(spawn("per_sample", True, 8.0, root))

    def med(name: str, field: str) -> float:
        return statistics.median(x[field] for x in got[name])

    if "idle-on" in got:
        report_idle(got, idle_s)
    if "log-on" in got:
        on, off = med("log-on", "us"), med("log-off", "us")
        fon, foff = med("log-on", "finish_s"), med("log-off", "finish_s")
        print(f"log() of 5 floats x {steps:,}, mean per call (loop only): capture on {on:.2f} us, "
              f"off {off:.2f} us, ratio {on / off:.2f}; finish() until durable: on {fon:.3f} s, "
              f"off {foff:.3f} s")  # fmt: skip
    if "print-on" in got:
        on, off = med("print-on", "us"), med("print-off", "us")
        print(f"print() to a pipe x {lines:,}: capture on {on:.2f} us, off {off:.2f} us, "
              f"ratio {on / off:.2f}")  # fmt: skip


def report_idle(got: dict[str, list[dict[str, float]]], idle_s: float) -> None:
    extra = [x["cpu"] / x["wall"] for x in got["idle-on"]]
    base = [x["cpu"] / x["wall"] for x in got["idle-off"]]
    share = statistics.median(e - b for e, b in zip(extra, base, strict=True)) * 100
    per = statistics.median(x["thread_cpu"] / max(1, x["samples"]) for x in got["per_sample"])
    print(f"sampler, idle {idle_s:.0f} s, default 15 s interval: process CPU with capture "
          f"{statistics.median(extra) * 100:.3f}% of a core, without {statistics.median(base) * 100:.3f}%; "
          f"the capture's share {share:.3f}% (target <= 0.5%)")  # fmt: skip
    env = statistics.median(x["env_cpu"] for x in got["idle-on"])
    print(
        f"one-off environment snapshot at init (git, requirements, ...): {env * 1e3:.0f} ms "
        "CPU in the capture thread"
    )
    print(f"capture thread per sample (1 s interval): {per * 1e3:.2f} ms CPU -> "
          f"{per / 15 * 100:.4f}% of a core at 15 s, {per / 1 * 100:.2f}% at 1 s")  # fmt: skip


if __name__ == "__main__":
    main()
