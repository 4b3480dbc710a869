"""Holds the catalog for a while, the way another program would.

    python holder.py duckdb CATALOG SECONDS READY
    python holder.py flock LOCKFILE SECONDS READY

``duckdb``: opens CATALOG with a plain ``duckdb.connect`` (read-write, as the ``duckdb``
CLI does, no nbtracker involved), runs a query and keeps the connection open.
``flock``: takes the exclusive lock nbtracker's catalog writers take (as another
nbtracker process does while it rewrites the catalog, e.g. ``nbtracker repair``).
Either way it creates READY once it holds, then lets go after SECONDS or as soon as a
file named READY + ".release" appears, whichever comes first.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time


def main() -> int:
    mode, path, seconds, ready = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    if mode == "duckdb":
        import duckdb

        held = duckdb.connect(path)
        note = str(held.execute("SELECT count(*) FROM runs").fetchone()[0])
    else:
        held = open(path, "a+")  # noqa: SIM115
        fcntl.flock(held, fcntl.LOCK_EX)
        note = "locked"
    with open(ready, "w") as fh:
        fh.write(note)
    deadline = time.monotonic() + seconds
    release = ready + ".release"
    while time.monotonic() < deadline and not os.path.exists(release):
        time.sleep(0.01)
    held.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
