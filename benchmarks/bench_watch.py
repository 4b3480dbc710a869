"""watch() overhead on a small CPU model: training time with and without watch, nbtracker
vs wandb (offline), side by side.

Each worker trains the same MLP (64-256-256-10, batch 128, SGD) for ``--n`` steps, logging
the loss every step, and reports the training loop's wall time (init and finish excluded).
Tools: nbtracker / wandb, each without watch and with ``watch(model, log=..., log_freq=...)``.
Reported: each tool's watch/plain ratio and the watch overhead per step, nbtracker vs wandb.

Run with a Python that has torch (and wandb for the peer), e.g. the bench venv:
``.bench-venv/bin/python benchmarks/bench_watch.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

TOOLS = ("nbtracker", "nbtracker+watch", "wandb", "wandb+watch")


def worker(name: str, n: int, log: str, log_freq: int) -> None:
    c.quiet_peers()
    import torch

    torch.set_num_threads(1)  # a shared 2-core machine: threads only add noise
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )  # fmt: skip
    x = torch.randn(128, 64, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    lossf = torch.nn.CrossEntropyLoss()
    if name.startswith("nbtracker"):
        import nbtracker as tracker
    else:
        import wandb as tracker  # type: ignore[no-redef]
    run = tracker.init(project="bench-watch")
    if name.endswith("+watch"):
        tracker.watch(model, log=log, log_freq=log_freq)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        loss = lossf(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({"loss": loss.item()})
    loop = time.perf_counter() - t0
    cpu = time.process_time() - c0  # steadier than wall time on a shared machine
    run.finish()
    c.nbt_wait_durable()
    c.emit({"loop_s": loop, "per_step_us": loop / n * 1e6, "cpu_per_step_us": cpu / n * 1e6})


def alternate(name: str, n: int, log: str, log_freq: int, blocks: int = 8) -> None:
    """One process, one run: blocks of ``n`` steps alternately without and with watch
    (unwatch between); CPU time per block. The ratio of the medians is watch's own cost,
    free of process start-up and of the machine's load swings between processes."""
    c.quiet_peers()
    import torch

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )  # fmt: skip
    x = torch.randn(128, 64, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    lossf = torch.nn.CrossEntropyLoss()
    if name.startswith("nbtracker"):
        import nbtracker as tracker
    else:
        import wandb as tracker  # type: ignore[no-redef]
    run = tracker.init(project="bench-watch")
    plain, watched = [], []
    for b in range(2 * blocks):
        on = b % 2 == 1
        if on:
            tracker.watch(model, log=log, log_freq=log_freq)
        c0 = time.process_time()
        for _ in range(n):
            loss = lossf(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.log({"loss": loss.item()})
        (watched if on else plain).append((time.process_time() - c0) / n * 1e6)
        if on:
            tracker.unwatch(model)
    run.finish()
    c.nbt_wait_durable()
    import statistics

    c.emit({"plain_us": statistics.median(plain[1:]), "watch_us": statistics.median(watched[1:]),
            "ratio": statistics.median(w / p for p, w in zip(plain[1:], watched[1:], strict=True))})  # fmt: skip


def main() -> None:
    p = c.base_parser(__doc__.splitlines()[0])
    p.add_argument("--log", default="gradients")
    p.add_argument("--log-freq", type=int, default=100)
    p.add_argument("--alternate", action="store_true",
                   help="one process per tool, blocks with and without watch alternated")  # fmt: skip
    args = p.parse_args()
    n = args.n or (300 if args.quick else 3000)
    if args.worker and args.worker.startswith("alt:"):
        alternate(args.worker[4:], n, args.log, args.log_freq)
        return
    if args.worker:
        worker(args.worker, n, args.log, args.log_freq)
        return
    if args.alternate:
        _alternate_main(args, n)
        return
    rounds = args.rounds or (1 if args.quick else 3)
    tools = args.tools.split(",") if args.tools else list(TOOLS)
    if not c.importable("wandb"):
        tools = [t for t in tools if not t.startswith("wandb")]
    os.environ["PYTHONPATH"] = str(c.REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    me = Path(__file__).resolve()
    extra = ["--n", str(n), "--log", args.log, "--log-freq", str(args.log_freq)]
    jobs = {t: (lambda t=t: c.run_worker(me, ["--worker", t, *extra])) for t in tools}
    res = c.interleaved(jobs, rounds, log=c.say)
    print(
        c.header(
            f"watch() overhead: {n} steps, log={args.log!r}, log_freq={args.log_freq}", args, rounds
        )
    )
    print(c.versions(["torch", "wandb"]) + "\n")
    rows = []
    for t in tools:
        err = c.first_error(res[t])
        rows.append([t, err[:60] if err else c.fmt(c.med(res[t], "per_step_us"), " us"),
                     c.spread(res[t], "per_step_us"), c.fmt(c.med(res[t], "cpu_per_step_us"), " us"),
                     c.spread(res[t], "cpu_per_step_us")])  # fmt: skip
    print(c.table(["tool", "wall per step", "range", "CPU per step", "range"], rows))
    # ratios on CPU time (the process's own work; wall time swings with the machine's load)
    m = {t: c.med(res[t], "cpu_per_step_us") for t in tools}
    out = []
    for base in ("nbtracker", "wandb"):
        if m.get(base) and m.get(base + "+watch"):
            ratio = m[base + "+watch"] / m[base]
            out.append(
                f"{base}: watch/plain = {ratio:.3f} (+{m[base + '+watch'] - m[base]:.1f} us/step)"
            )
    if all(m.get(k) for k in ("nbtracker", "nbtracker+watch", "wandb", "wandb+watch")):
        ours = m["nbtracker+watch"] - m["nbtracker"]
        theirs = m["wandb+watch"] - m["wandb"]
        out.append(f"watch overhead per step, nbtracker vs wandb: {ours:.1f} vs {theirs:.1f} us")
        out.append(
            f"training with watch, wandb / nbtracker: {m['wandb+watch'] / m['nbtracker+watch']:.2f}x"
        )
    print("\n" + "\n".join(out))


def _alternate_main(args: Any, n: int) -> None:
    tools = ["nbtracker", "wandb"] if c.importable("wandb") else ["nbtracker"]
    os.environ["PYTHONPATH"] = str(c.REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    me = Path(__file__).resolve()
    extra = ["--n", str(n), "--log", args.log, "--log-freq", str(args.log_freq)]
    res = {t: c.run_worker(me, ["--worker", "alt:" + t, *extra]) for t in tools}
    print(f"## watch() cost, alternating blocks of {n} steps in one process (CPU time, median "
          f"of 7 pairs), log={args.log!r}, log_freq={args.log_freq}\n")  # fmt: skip
    rows = [[t, r.get("error", "")[:60] or c.fmt(r["plain_us"], " us"), c.fmt(r.get("watch_us"), " us"),
             f"{r['ratio']:.3f}" if "ratio" in r else ""] for t, r in res.items()]  # fmt: skip
    print(c.table(["tool", "plain per step", "watched per step", "watched / plain"], rows))


if __name__ == "__main__":
    main()
