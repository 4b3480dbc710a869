"""Holds the catalog open read-write, as the ``duckdb`` CLI does, for a while.

    python holder.py CATALOG SECONDS READY

Opens CATALOG with a plain ``duckdb.connect`` (read-write, no nbtracker involved), runs
a query, creates READY, keeps the connection for SECONDS, then closes it.
"""

from __future__ import annotations

import sys
import time

import duckdb


def main() -> int:
    path, seconds, ready = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    con = duckdb.connect(path)
    n = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    with open(ready, "w") as fh:
        fh.write(str(n))
    time.sleep(seconds)
    con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
