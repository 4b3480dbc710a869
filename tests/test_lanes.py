"""Background lanes (nbtracker/_lanes.py): the threads every run's background work shares."""

from __future__ import annotations

import threading
import time
import warnings

from nbt_testutil import wait_until

from nbtracker._lanes import Lane


def test_periodic_job_wake_up_and_cancel() -> None:
    lane = Lane("test-periodic")
    ticks: list[float] = []
    job = lane.every(lambda: ticks.append(time.monotonic()) or 0.05, 0.0, name="tick")
    wait_until(lambda: len(ticks) >= 3, timeout=10)
    job.cancel(wait=True)
    n = len(ticks)
    time.sleep(0.3)
    assert len(ticks) == n  # cancelled: never again

    later: list[int] = []
    slow = lane.every(lambda: later.append(1) or 10.0, 10.0, name="slow")
    time.sleep(0.2)
    assert later == []  # due in 10 s
    slow.set()  # as log() does when rows pile up: now
    wait_until(lambda: later == [1], timeout=5)
    slow.cancel()


def test_a_failing_job_warns_once_and_keeps_its_rhythm() -> None:
    lane = Lane("test-failing")
    calls: list[int] = []

    def bad() -> float:
        calls.append(1)
        raise ValueError("disk on fire")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = lane.every(bad, 0.0, name="bad job", period=0.05)
        wait_until(lambda: len(calls) >= 3, timeout=10)
        job.cancel(wait=True)
    said = [str(w.message) for w in caught if "bad job" in str(w.message)]
    assert len(said) == 1 and "disk on fire" in said[0]
    ok: list[int] = []
    lane.soon(lambda: ok.append(1), name="after")  # the lane lives on
    wait_until(lambda: ok == [1], timeout=5)


def test_cancel_with_wait_waits_for_a_run_in_progress() -> None:
    lane = Lane("test-cancel")
    started, release, done = threading.Event(), threading.Event(), []

    def long() -> None:
        started.set()
        release.wait(5)
        done.append(1)

    job = lane.soon(long, name="long")
    assert started.wait(5)
    threading.Timer(0.2, release.set).start()
    job.cancel(wait=True)
    assert done == [1]  # returned only once the run in progress had ended
