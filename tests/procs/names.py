"""Logs one run per awkward name: project, run name, tags, config key and history key.

    python names.py ROOT NAMES_JSON

NAMES_JSON: ``{"names": [...], "ids": {name: run id}}``. For each name ``s``:
``init(project=s, name=s, id=ids.get(s), tags=[s, "plain"], config={s: i})``, three
steps of ``{s: step, "x": 2 * step}``, a ``Table`` under key ``s + "-table"``,
``finish()``.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    root, names_file = sys.argv[1:3]
    import nbtracker

    with open(names_file, encoding="utf-8") as fh:
        spec = json.load(fh)
    for i, s in enumerate(spec["names"]):
        run = nbtracker.init(
            project=s, name=s, id=spec["ids"].get(s), tags=[s, "plain"], config={s: i}, dir=root
        )
        for step in range(3):
            run.log({s: float(step), "x": 2.0 * step})
        run.log({s + "-table": nbtracker.Table(columns=["c"], data=[[s]])})
        run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
