"""Cost of the static-snapshot refresh while a run goes (issue 10): log() of 5 floats for
8 s with a live RunPanel whose snapshot is refreshed every ``interval`` seconds (the panel
uses 30 s; 1 s magnifies the cost 30x) against never; prints µs per log() and the cost of
one refresh. Run side by side, interleaved::

    for iv in 1 1e9 1 1e9; do NBTRACKER_DIR=$(mktemp -d) .venv/bin/python \\
        benchmarks/bench_snapshot_refresh.py $iv; done
"""

import sys
import time

import nbtracker
from nbtracker.widgets import run_panel
from nbtracker.widgets.run_panel import RunPanel


class Handle:
    """Stands in for the display handle of the snapshot output; counts updates."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, data: dict, raw: bool = False) -> None:
        self.n += 1


def main() -> None:
    iv = float(sys.argv[1])
    run_panel.FALLBACK_INTERVAL_S = iv
    run = nbtracker.init(project="b", name="b")
    panel = RunPanel.for_run(run, show_tables=False)
    panel.send = lambda msg, buffers=None: None
    handle = panel._fallback_handle = Handle()
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < 8:
        for _ in range(100):
            run.log({"loss": 1 / (i + 1), "acc": i * 1e-6, "lr": 0.1, "gn": 1.0, "vl": 2.0})
            i += 1
    dt = time.perf_counter() - t0
    run.finish()  # one more snapshot update
    print(f"interval={iv} refreshes={handle.n} us_per_log={dt / i * 1e6:.2f} logs={i}")
    c = time.perf_counter()
    panel.fallback_bundle(final=True)
    print(f"one refresh {1000 * (time.perf_counter() - c):.0f} ms")


if __name__ == "__main__":
    main()
