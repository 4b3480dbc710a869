"""The runs workspace in Chromium (JupyterLab, offline): time from running the cell to the
first paint (table rows and a chart with points), for a project of N runs (default 1,000,
20 config + 20 summary columns) and for the overlay of 100 runs x 10,000 steps x 4 metrics
(all 100 drawn: until every chart holds 100 lines).

End to end as a user sees it: the kernel's work (reading the runs, the table, the
series), the messages, and the drawing. The library push is warmed by a first small
workspace. Uses the browser test tier's server and Chromium (tests/browser/nbt_browser.py)::

    .venv/bin/python benchmarks/bench_workspace_paint.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

MAKE = r"""
import sys, time, nbtracker
from nbtracker.store import wait_for_background
root, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(3):
    run = nbtracker.init(project="warm", dir=root, config={"a": i})
    run.log({"loss": 1.0}); run.finish()
for i in range(n):
    run = nbtracker.init(project="paint", dir=root, name=f"run-{i}",
                         config={**{f"p{j}": (i * 7 + j) % 13 / 13 for j in range(19)}, "opt": "ab"[i % 2]})
    for s in range(5):
        run.log({"loss": 1 / (s + 1 + i % 5), "acc": s / 5})
    run.summary.update({f"m{j}": (i * 3 + j) % 11 / 11 for j in range(18)})
    run.finish()
for r in range(100 if steps else 0):
    run = nbtracker.init(project="overlay", dir=root, config={"seed": r})
    for s in range(steps):
        run.log({"loss": 1 / (s + 1 + r), "acc": s / steps, "lr": 0.1, "val/loss": 2 / (s + 1)})
    run.finish()
wait_for_background()
"""

WAIT_PAINT = """([want, lines]) => {
  const ws = [...document.querySelectorAll('[data-testid="nbt-workspace"]')].pop();
  if (!ws) return false;
  if (ws.querySelectorAll('[data-testid="nbt-ws-row"]').length < 1) return false;
  const charts = [...ws.querySelectorAll('[data-testid="nbt-ws-chart"]')];
  if (charts.length < want) return false;
  return charts.every((c) => Number(c.dataset.points) > 0 && Number(c.dataset.lines) >= lines);
}"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=10_000)
    a = ap.parse_args()
    from nbt_browser import CHROMIUM, CHROMIUM_FLAGS, JupyterServer, Lab
    from playwright.sync_api import sync_playwright

    server = JupyterServer()
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", MAKE, str(server.data_dir), str(a.runs), str(a.steps)],
        check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    print(f"created {a.runs} runs + 100 x {a.steps} steps in {time.perf_counter() - t0:.0f} s")
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            lab = Lab(server, browser)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            cells = [
                "import nbtracker\nws0 = nbtracker.compare('warm')",
                "import time\nt0 = time.perf_counter()\nws = nbtracker.compare('paint')\n"
                "print(f'kernel {time.perf_counter() - t0:.3f} s')",
                "t0 = time.perf_counter()\nws2 = nbtracker.compare('overlay', max_visible=100)\n"
                "print(f'kernel {time.perf_counter() - t0:.3f} s')",
            ]
            nb = lab.open(page, "paint", cells)
            nb.run(0)
            page.wait_for_function(WAIT_PAINT, arg=[1, 1], timeout=60_000)
            for cell, what, want, lines in ((1, f"{a.runs:,} runs", 2, 1), (2, "overlay", 4, 100)):
                if cell == 2 and not a.steps:
                    continue
                t = time.perf_counter()
                nb.run(cell, wait=False)
                page.wait_for_function(
                    f"() => {{ const w = [...document.querySelectorAll('[data-testid=\"nbt-workspace\"]')]; return w.length >= {cell + 1}; }}",
                    timeout=120_000,
                )  # fmt: skip
                page.wait_for_function(
                    WAIT_PAINT, arg=[want, lines], timeout=120_000, polling="raf"
                )
                total = time.perf_counter() - t
                nb.wait_done(cell)
                kernel = [x for x in nb.output_text(cell).splitlines() if x.startswith("kernel ")]
                print(f"{what}: cell run -> painted {total:.2f} s ({kernel[-1] if kernel else ''})")
            lab.screenshot(nb.output(2).first, "bench-workspace-overlay-100")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
