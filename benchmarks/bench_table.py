"""Logging a prediction table: 1,000 rows, one 28x28 image, pred, target and 10 scores each.

The W&B quickstart's table, timed in nbtracker, wandb (offline) and trackio, each in its
own fresh subprocess (tools interleaved, median of rounds). Each worker gets the same data:
float32 images in 0..1 (``img * 255`` is passed, as in the quickstart; trackio only takes
uint8 arrays, so it gets ``(img * 255).astype(uint8)``, converted inside the timed loop).

Reported per tool:

* build: creating the 1,000 ``Image`` objects and ``add_data`` rows,
* log: the ``log({"predictions_table": table})`` call,
* finish: ``finish()`` until the run is durable (nbtracker: plus its background work),
* total: build + log + finish (the figure compared across tools),
* nbtracker only: reading the table back as a DataFrame (``images="pil"`` and ``"image"``).

Target (issue 5): nbtracker build + log <= 1 s, and total no slower than W&B offline and
trackio. Run with the peer venv for the comparison, or any venv for nbtracker alone::

    .bench-venv/bin/python benchmarks/bench_table.py [--quick] [--rounds 3] [--tools nbtracker]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

SCRIPT = Path(__file__).resolve()
TOOLS = {"nbtracker": "nbtracker", "wandb-offline": "wandb", "trackio": "trackio"}
TARGET_S = 1.0
COLUMNS = ["image", "pred", "target"] + [f"score_{i}" for i in range(10)]


def make_data(n: int):  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.random((n, 1, 28, 28), dtype=np.float32)
    images[:, :, :6] = 0.0  # some flat area, as in real digits
    probs = rng.dirichlet(np.ones(10), n).astype(np.float32)
    return images, probs.argmax(1), rng.integers(0, 10, n), probs


def dir_stats(path: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return files, size


def worker(tool: str, n: int, tmp: Path) -> dict[str, object]:
    C.quiet_peers()
    images, predicted, labels, probs = make_data(n)
    res: dict[str, object] = {}
    if tool == "nbtracker":
        import nbtracker as tr

        run = tr.init(project="bench", dir=str(tmp / "nbruns"))
        t0 = time.perf_counter()
        table = tr.Table(columns=COLUMNS)
        for img, pred, targ, prob in zip(images, predicted, labels, probs, strict=True):
            table.add_data(tr.Image(img[0] * 255), pred, targ, *prob)
        t1 = time.perf_counter()
        run.log({"predictions_table": table}, commit=False)
        t2 = time.perf_counter()
        run.finish()
        C.nbt_wait()
        t3 = time.perf_counter()
        from nbtracker import media

        t = time.perf_counter()
        df = media.load_table(run.dir, "predictions_table", images="image")
        res["read_image_s"] = time.perf_counter() - t
        t = time.perf_counter()
        df = media.load_table(run.dir, "predictions_table", images="pil")
        res["read_pil_s"] = time.perf_counter() - t
        assert len(df) == n
        files, size = dir_stats(run.dir / "media")
    elif tool == "wandb-offline":
        import wandb as tr

        run = tr.init(project="bench", mode="offline", dir=str(tmp / "wandb"))
        t0 = time.perf_counter()
        table = tr.Table(columns=COLUMNS)
        for img, pred, targ, prob in zip(images, predicted, labels, probs, strict=True):
            table.add_data(tr.Image(img[0] * 255), pred, targ, *prob)
        t1 = time.perf_counter()
        run.log({"predictions_table": table}, commit=False)
        t2 = time.perf_counter()
        run.finish()
        t3 = time.perf_counter()
        stats = [dir_stats(tmp / d) for d in ("wandb", "wandb-data", "wandb-cache")]
        files, size = sum(s[0] for s in stats), sum(s[1] for s in stats)
    elif tool == "trackio":
        import trackio as tr

        tr.init(project="bench", name="r1", embed=False)
        t0 = time.perf_counter()
        rows = []
        for img, pred, targ, prob in zip(images, predicted, labels, probs, strict=True):
            u8 = (img[0] * 255).astype("uint8")
            rows.append([tr.Image(u8), int(pred), int(targ), *map(float, prob)])
        table = tr.Table(columns=COLUMNS, data=rows)
        t1 = time.perf_counter()
        tr.log({"predictions_table": table})
        t2 = time.perf_counter()
        tr.finish()
        t3 = time.perf_counter()
        files, size = dir_stats(tmp / "trackio")
    else:
        msg = f"unknown tool {tool}"
        raise SystemExit(msg)
    res.update({
        "build_s": t1 - t0, "log_s": t2 - t1, "finish_s": t3 - t2, "total_s": t3 - t0,
        "build_log_s": t2 - t0, "files": files, "bytes": size, "n": n,
    })  # fmt: skip
    return res


def main(argv: list[str] | None = None) -> str:
    p = C.base_parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    if args.worker:
        C.emit(worker(args.worker, args.n, Path(args.tmp)))
        return ""
    rounds = args.rounds or (1 if args.quick else 3)
    n = args.n or 1000
    wanted = args.tools.split(",") if args.tools else list(TOOLS)
    jobs, missing = {}, []
    for name in wanted:
        if not C.importable(TOOLS[name]):
            missing.append(name)
            continue
        jobs[name] = lambda name=name: C.run_worker(SCRIPT, ["--worker", name, "--n", str(n)])
    C.say(f"bench_table: {', '.join(jobs)} x {rounds} round(s), {n} rows")
    res = C.interleaved(jobs, rounds, log=C.say)
    out = [C.header(f"Logging a {n}-row table with 28x28 images (bench_table.py)", args, rounds)]
    out.append(C.versions(["nbtracker", "wandb", "trackio", "pillow"]) + "\n")
    ours = C.med(res.get("nbtracker", []), "total_s")
    rows = []
    for name, results in res.items():
        err = C.first_error(results)
        if err:
            rows.append([name, "error: " + err[:80], "", "", "", "", ""])
            continue
        total = C.med(results, "total_s")
        rows.append([
            name, C.fmt(C.med(results, "build_s"), "s"), C.fmt(C.med(results, "log_s"), "s"),
            C.fmt(C.med(results, "finish_s"), "s"), C.fmt(total, "s") + f" ({C.spread(results, 'total_s')})",
            "1.0x" if name == "nbtracker" else C.ratio(total, ours),
            f"{C.med(results, 'files'):.0f} files, {C.med(results, 'bytes') / 1e6:.2f} MB",
        ])  # fmt: skip
    out.append(C.table(["tool", "build", "log", "finish", "total", "peer / ours", "on disk"], rows))
    for name in missing:
        out.append(f"\n{name}: not installed in this venv (use .bench-venv for peers)")
    nbt = res.get("nbtracker", [])
    if nbt and not C.first_error(nbt):
        out.append(
            f"\nread back as DataFrame: images='image' {C.fmt(C.med(nbt, 'read_image_s'), 's')}, "
            f"images='pil' {C.fmt(C.med(nbt, 'read_pil_s'), 's')}\n"
        )
        line, _ = C.check("nbtracker build + log", C.med(nbt, "build_log_s"), "<=", TARGET_S, " s")
        out.append(line)
        for peer in ("wandb-offline", "trackio"):
            theirs = C.med(res.get(peer, []), "total_s")
            if theirs is not None and ours is not None:
                ok = ours <= theirs
                out.append(
                    f"[{C.verdict(ok)}] total no slower than {peer}: {ours:.3g} s vs {theirs:.3g} s"
                )
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    main()
