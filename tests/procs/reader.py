"""A reading process for tests/test_reliability.py: reads one project in a loop (runs,
full and down-sampled history, SQL) while other processes write it, until STOP exists.

    python reader.py ROOT PROJECT STOP OUT_JSON

Any exception is printed with its traceback and ends the process with status 1. What a
user would see go wrong without an exception (a run's history shrinking between two
reads, a gap in the steps, a wrong value) is collected in OUT_JSON["problems"].
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    root, project, stop, out = sys.argv[1:5]
    import nbtracker

    seen: dict[str, int] = {}
    problems: list[str] = []
    iterations = 0
    states: dict[str, list[str]] = {}
    last_pass = False
    while True:
        if os.path.exists(stop):
            last_pass = True  # one more full pass after the writers are done
        runs = nbtracker.Api(root).runs(project)
        for r in runs:
            st = states.setdefault(r.id, [])
            if not st or st[-1] != r.state:
                st.append(r.state)
            full = r.history(samples=None)
            n = len(full)
            steps = full["_step"].tolist()
            if steps != list(range(n)):
                problems.append(f"{r.id}: steps not 0..{n - 1}: {steps[:5]}...{steps[-5:]}")
            if n and not (full["a"] == full["_step"]).all():
                problems.append(f"{r.id}: column a differs from _step")
            if n < seen.get(r.id, 0):
                problems.append(f"{r.id}: history went back from {seen[r.id]} to {n} rows")
            seen[r.id] = max(n, seen.get(r.id, 0))
            r.history(samples=100, keys=["a", "e"])
        nbtracker.sql(
            "SELECT run_id, count(*) FROM history WHERE project = ? GROUP BY run_id",
            [project],
            root=root,
        )
        iterations += 1
        if last_pass:
            break
        time.sleep(0.05)
    with open(out, "w") as fh:
        json.dump(
            {"iterations": iterations, "rows": seen, "problems": problems, "states": states}, fh
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
