"""A training process for tests/test_reliability.py: logs 5 floats per step, forever or
for a fixed number of steps, and publishes its progress through a shared memory map.

    python logger.py ROOT PROJECT RUN_ID PROGRESS [--steps N] [--sleep S]
                     [--merge-after K] [--touch-config S] [--finish]

PROGRESS is a file mapped with MAP_SHARED: what the process writes there is in the page
cache at once and survives a SIGKILL, so the test knows exactly which steps were logged
(not only which were flushed). Layout (little-endian)::

    int64 phase       0 starting, 1 init() returned, 2 about to call finish(),
                      3 finish() returned, 4 about to exit
    int64 last_step   the last step whose log() call returned (-1: none)
    double t[i]       time.time() right after log() of step i returned

Every step logs ``{"a": i, "b": i / 2, "c": -i, "d": i % 7, "e": 1 / (i + 1)}`` as floats,
so a reader can check each value, not only the count. ``--touch-config S`` changes the
config every S seconds, which makes the run rewrite its catalog entry at each heartbeat
(so that kills also land in the middle of catalog writes).
"""

from __future__ import annotations

import argparse
import mmap
import os
import struct
import sys
import time

HEADER = 16


def row(i: int) -> dict[str, float]:
    return {"a": float(i), "b": i / 2, "c": -float(i), "d": float(i % 7), "e": 1.0 / (i + 1)}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("project")
    p.add_argument("run_id")
    p.add_argument("progress")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--sleep", type=float, default=0.001)
    p.add_argument("--merge-after", type=int, default=0)
    p.add_argument("--touch-config", type=float, default=0.0)
    p.add_argument("--finish", action="store_true")
    a = p.parse_args()

    size = HEADER + 8 * a.steps
    fd = os.open(a.progress, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, size)
    mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    struct.pack_into("<qq", mm, 0, 0, -1)

    import nbtracker

    if a.merge_after:
        # merge history segments every K flushes instead of every 64, so that kills land
        # during mid-run compactions too (the same code path, only more often)
        import nbtracker.writer

        nbtracker.writer.MERGE_AFTER_FILES = a.merge_after

    run = nbtracker.init(project=a.project, dir=a.root, id=a.run_id)
    struct.pack_into("<q", mm, 0, 1)
    log, now, sleep, pack = run.log, time.time, time.sleep, struct.pack_into
    touch = a.touch_config
    next_touch = now() + touch if touch else float("inf")
    for i in range(a.steps):
        log(row(i))
        if now() >= next_touch:
            run.config.update({"tick": i}, allow_val_change=True)
            next_touch += touch
        pack("<d", mm, HEADER + 8 * i, now())
        pack("<q", mm, 8, i)
        if a.sleep:
            sleep(a.sleep)
    struct.pack_into("<q", mm, 0, 2)
    if a.finish:
        run.finish()
        struct.pack_into("<q", mm, 0, 3)
    struct.pack_into("<q", mm, 0, 4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
