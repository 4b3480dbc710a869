"""A training process on its own "machine" for tests/test_team.py: its own local root,
committing to the team store in NBTRACKER_STORE.

    python team_writer.py ROOT PROJECT RUN_ID STEPS [--sleep S] [--progress FILE]

Step i logs {"a": i, "b": i / 2}; the last step written is noted in FILE (one line).
"""

from __future__ import annotations

import argparse
import os
import time

import nbtracker

p = argparse.ArgumentParser()
p.add_argument("root")
p.add_argument("project")
p.add_argument("run_id")
p.add_argument("steps", type=int)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--progress")
args, _ = p.parse_known_args()  # extra arguments: seen by the metadata capture

run = nbtracker.init(project=args.project, id=args.run_id, dir=args.root, config={"seed": 1})
for i in range(args.steps):
    run.log({"a": i, "b": i / 2})
    if args.progress and i % 10 == 0:
        tmp = args.progress + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(str(i))
        os.replace(tmp, args.progress)
    if args.sleep:
        time.sleep(args.sleep)
run.summary["done"] = True
run.finish()
