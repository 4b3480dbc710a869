"""A reader on its own "machine" for tests/test_team.py: reads the team store in
NBTRACKER_STORE until the file STOP exists, checking that what it sees only grows and is
always exact; prints one line per read ("runs rows") and "ok" at the end.

    python team_reader.py PROJECT STOP
"""

from __future__ import annotations

import os
import sys
import time

import nbtracker

project, stop = sys.argv[1], sys.argv[2]
best: dict[str, int] = {}
reads = 0
while True:
    last = os.path.exists(stop)
    api = nbtracker.Api()
    total = 0
    for run in api.runs(project):
        h = run.history(samples=None)
        n = len(h)
        if n:
            steps = h["_step"].tolist()
            assert steps == list(range(n)), f"{run.id}: steps not 0..{n - 1} (gap or duplicate)"
            assert h["a"].tolist() == [float(i) for i in steps], run.id
        assert n >= best.get(run.id, 0), f"{run.id}: {n} rows after {best[run.id]}"
        best[run.id] = n
        total += n
    reads += 1
    print(f"read {reads}: {len(best)} runs {total} rows", flush=True)
    if last:
        break
    time.sleep(0.2)
print("ok", flush=True)
