"""Logging a prediction table: 1,000 rows, one 28x28 image, pred, target and 10 scores each.

The W&B quickstart's table, timed in nbtracker, wandb (offline) and trackio, each in its
own fresh subprocess (tools interleaved, median of rounds). Each worker gets the same data:
float32 images in 0..1 (``img * 255`` is passed, as in the quickstart; trackio only takes
uint8 arrays, so it gets ``(img * 255).astype(uint8)``, converted inside the timed loop).

Each worker logs two tables (steps 0 and 1) and then finishes. Reported per tool:

* build: creating the 1,000 ``Image`` objects and ``add_data`` rows,
* log: the ``log({"predictions_table": table})`` call,
* finish: ``finish()`` until the run is durable (nbtracker: plus its background work),
* total: build + log + finish (the figure compared across tools),
* next table: build + log of a second table (new pixels) in the same process, i.e. the
  steady state of a loop that logs a table every epoch (imports and warm-up done),
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
    import numpy as np

    images, predicted, labels, probs = make_data(n)
    res: dict[str, object] = {}
    second = np.ascontiguousarray(images[:, :, ::-1])  # new pixels for the 2nd table
    if tool == "nbtracker":
        import nbtracker as tr

        run = tr.init(project="bench", dir=str(tmp / "nbruns"))

        def build(imgs):  # type: ignore[no-untyped-def]
            table = tr.Table(columns=COLUMNS)
            for img, pred, targ, prob in zip(imgs, predicted, labels, probs, strict=True):
                table.add_data(tr.Image(img[0] * 255), pred, targ, *prob)
            return table

        def log(table, step):  # type: ignore[no-untyped-def]
            run.log({"predictions_table": table}, step=step)

        def finish() -> None:
            run.finish()
            C.nbt_wait()

    elif tool == "wandb-offline":
        import wandb as tr

        run = tr.init(project="bench", mode="offline", dir=str(tmp / "wandb"))

        def build(imgs):  # type: ignore[no-untyped-def]
            table = tr.Table(columns=COLUMNS)
            for img, pred, targ, prob in zip(imgs, predicted, labels, probs, strict=True):
                table.add_data(tr.Image(img[0] * 255), pred, targ, *prob)
            return table

        def log(table, step):  # type: ignore[no-untyped-def]
            run.log({"predictions_table": table}, step=step)

        def finish() -> None:
            run.finish()

    elif tool == "trackio":
        import trackio as tr

        tr.init(project="bench", name="r1", embed=False)

        def build(imgs):  # type: ignore[no-untyped-def]
            rows = []
            for img, pred, targ, prob in zip(imgs, predicted, labels, probs, strict=True):
                u8 = (img[0] * 255).astype("uint8")
                rows.append([tr.Image(u8), int(pred), int(targ), *map(float, prob)])
            return tr.Table(columns=COLUMNS, data=rows)

        def log(table, step):  # type: ignore[no-untyped-def]
            tr.log({"predictions_table": table}, step=step)

        def finish() -> None:
            tr.finish()

    else:
        msg = f"unknown tool {tool}"
        raise SystemExit(msg)
    t0 = time.perf_counter()
    table = build(images)
    t1 = time.perf_counter()
    log(table, 0)
    t2 = time.perf_counter()
    table = build(second)
    t3 = time.perf_counter()
    log(table, 1)
    t4 = time.perf_counter()
    finish()
    t5 = time.perf_counter()
    if tool == "nbtracker":
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
        stats = [dir_stats(tmp / d) for d in ("wandb", "wandb-data", "wandb-cache")]
        files, size = sum(s[0] for s in stats), sum(s[1] for s in stats)
    else:
        files, size = dir_stats(tmp / "trackio")
    res.update({
        "build_s": t1 - t0, "log_s": t2 - t1, "next_s": t4 - t2, "next_build_s": t3 - t2,
        "finish_s": t5 - t4,
        "total_s": (t2 - t0) + (t5 - t4), "build_log_s": t2 - t0, "files": files,
        "bytes": size, "n": n,
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
    ours_next = C.med(res.get("nbtracker", []), "next_s")
    rows = []
    for name, results in res.items():
        err = C.first_error(results)
        if err:
            rows.append([name, "error: " + err[:80], "", "", "", "", ""])
            continue
        total = C.med(results, "total_s")
        nxt = C.med(results, "next_s")
        rows.append([
            name, C.fmt(C.med(results, "build_s"), "s"), C.fmt(C.med(results, "log_s"), "s"),
            C.fmt(C.med(results, "finish_s"), "s"), C.fmt(total, "s") + f" ({C.spread(results, 'total_s')})",
            "1.0x" if name == "nbtracker" else C.ratio(total, ours),
            C.fmt(nxt, "s"), "1.0x" if name == "nbtracker" else C.ratio(nxt, ours_next),
            f"{C.med(results, 'files'):.0f} files, {C.med(results, 'bytes') / 1e6:.2f} MB",
        ])  # fmt: skip
    out.append(C.table(
        ["tool", "build", "log", "finish", "total (1st table)", "peer / ours",
         "next table", "peer / ours", "on disk (2 tables)"], rows))  # fmt: skip
    for name in missing:
        out.append(f"\n{name}: not installed in this venv (use .bench-venv for peers)")
    nbt = res.get("nbtracker", [])
    if nbt and not C.first_error(nbt):
        out.append(
            f"\nread back as DataFrame: images='image' {C.fmt(C.med(nbt, 'read_image_s'), 's')}, "
            f"images='pil' {C.fmt(C.med(nbt, 'read_pil_s'), 's')}\n"
        )
        for label, key in (("1st table", "build_log_s"), ("next table", "next_s")):
            value = C.med(nbt, key)
            line, _ = C.check(f"nbtracker build + log, {label}", value, "<=", TARGET_S, " s")
            out.append(line)
        for peer in ("wandb-offline", "trackio"):
            for label, key, mine in (("1st", "total_s", ours), ("next", "next_s", ours_next)):
                theirs = C.med(res.get(peer, []), key)
                if theirs is not None and mine is not None:
                    ok = mine <= theirs
                    out.append(
                        f"[{C.verdict(ok)}] {label} table no slower than {peer}: "
                        f"{mine:.3g} s vs {theirs:.3g} s"
                    )
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    main()
