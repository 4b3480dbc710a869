"""How ``init()`` joins a sweep: the run gets the trial's id, project and parameters (locked in
its config), carries ``sweep_id``, and reports the sweep metric at hyperband's brackets.

An in-process agent sets :data:`current`; a program started by a CLI agent finds its trial
in the environment (``NBTRACKER_SWEEP_ID`` / ``WANDB_SWEEP_ID`` plus the trial's
parameters in ``NBTRACKER_SWEEP_PARAMS``).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
import time
import warnings
from typing import Any

from ..errors import NbtrackerWarning

ENV_PARAMS = "NBTRACKER_SWEEP_PARAMS"  # JSON: {"sweep", "project", "trial", "trial_id", "config"}


RECHECK_S = 60.0  # a running run that passed a band is checked again this often (W&B: minutes)


class SweepWarning(NbtrackerWarning):
    """A sweep run ignored something the code asked for (another project, a config change
    of a swept parameter)."""


class StopRun(SystemExit):
    """Raised from ``log()`` when hyperband stops the run at a bracket. A ``SystemExit``
    (code 0), so ``except Exception`` in training code does not swallow it: an in-process
    agent catches it and goes on; a program started by a CLI agent ends quietly."""


class TrialContext:
    """The trial the next ``init()`` belongs to."""

    def __init__(self, sweep_id: str, project: str, root: str | None, trial_number: int,
                 trial_id: int, run_id: str, config: dict[str, Any], brackets: list[int],
                 metric: str | None, sweep: Any = None, store_url: Any = None) -> None:  # fmt: skip
        self.sweep_id, self.project, self.root = sweep_id, project, root
        self.store_url = store_url  # the team store of a team sweep (its runs go there)
        self.trial_number, self.trial_id, self.run_id = trial_number, trial_id, run_id
        self.config, self.brackets, self.metric = config, brackets, metric
        self._sweep = sweep
        self.used = False
        self.run: Any = None
        self.stopped_at: int | None = None

    def env(self) -> dict[str, str]:
        """The environment a program started for this trial gets."""
        payload = {"sweep": self.sweep_id, "project": self.project, "trial": self.trial_number,
                   "trial_id": self.trial_id, "config": self.config,
                   "brackets": self.brackets, "metric": self.metric,
                   "team": self.store_url is not None}  # fmt: skip
        out = {
            "NBTRACKER_SWEEP_ID": self.sweep_id, "WANDB_SWEEP_ID": self.sweep_id,
            "NBTRACKER_RUN_ID": self.run_id, "WANDB_RUN_ID": self.run_id,
            "NBTRACKER_PROJECT": self.project, "WANDB_PROJECT": self.project,
            ENV_PARAMS: json.dumps(payload),
        }  # fmt: skip
        if self.root:
            out["NBTRACKER_DIR"] = self.root
        if self.store_url is not None:  # the program commits its run and asks hyperband there
            out["NBTRACKER_STORE"] = self.store_url.secret_url()
        return out

    def sweep(self) -> Any:
        if self._sweep is None:
            from ..store import Store
            from .study import SweepStudy

            self._sweep = SweepStudy.open(Store(self.root), f"{self.project}/{self.sweep_id}",
                                          url=self.store_url)  # fmt: skip
        return self._sweep

    # -- the init() hook -------------------------------------------------------------------
    def before_init(self, project: Any, run_id: Any) -> tuple[str, str]:
        self.used = True
        if project is not None and str(project) != self.project:
            warnings.warn(
                f"init(project={project!r}) ignored: this run belongs to sweep {self.sweep_id} "
                f"in project {self.project!r}",
                SweepWarning,
                stacklevel=4,
            )
        if run_id is not None and str(run_id) != self.run_id:
            warnings.warn(
                f"init(id={run_id!r}) ignored: the sweep agent named this run {self.run_id}",
                SweepWarning,
                stacklevel=4,
            )
        return self.project, self.run_id

    def apply_config(self, cfg: Any) -> None:
        """Sweep values win over init(config=...) and stay: a later change warns."""
        cfg.lock(self.config)

    def attach(self, run: Any) -> None:
        """Mark the new run as the trial's (before its first record is written)."""
        self.run = run
        run._rec["sweep_id"] = self.sweep_id
        run._rec["sweep_trial"] = self.trial_number
        if self.brackets and self.metric:
            run.subscribe(_BandWatch(self, run, self.brackets, self.metric))


class _BandWatch:
    """A run hook: counts logged values of the sweep metric (finite numbers only, as W&B
    counts them) and asks hyperband at each band whether the run goes on; raises
    :class:`StopRun` when it does not."""

    def __init__(self, ctx: TrialContext, run: Any, brackets: list[int], metric: str) -> None:
        self.ctx, self.run, self.metric, self.n = ctx, run, metric, 0
        self.bands = frozenset(brackets)
        self.lo, self.hi = math.inf, -math.inf  # the best so far, for either goal
        self.passed: tuple[int, float] | None = None  # the last band passed, value there
        self.recheck_at = 0.0

    def __call__(self, event: str, payload: Any) -> None:
        run = self.run
        if event != "row":
            return
        value = payload[1].get(self.metric)
        cls = value.__class__
        if cls is not float and cls is not int:
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                return
        value = float(value)
        if not math.isfinite(value):
            return
        self.n += 1
        self.lo, self.hi = min(self.lo, value), max(self.hi, value)
        if self.ctx.stopped_at is not None:
            return
        at_band = self.n in self.bands
        if not at_band and (self.passed is None or time.monotonic() < self.recheck_at):
            return
        try:
            sweep = self.ctx.sweep()
            best = self.hi if (sweep.metric or {}).get("goal") == "maximize" else self.lo
            if at_band:
                keep = sweep.band_keeps(self.ctx.trial_id, self.n, value, best)
                self.passed = (self.n, value)
            else:  # W&B's later check against the last band passed
                band, at = self.passed  # type: ignore[misc]
                strict = sweep.config["early_terminate"].get("strict") is not False
                keep = sweep.band_still_keeps(self.ctx.trial_number, band, at if strict else best)
        except Exception as exc:  # noqa: BLE001 - early termination never breaks training
            warnings.warn(
                f"nbtracker: hyperband check failed ({exc!r})", SweepWarning, stacklevel=2
            )
            return
        finally:
            self.recheck_at = time.monotonic() + RECHECK_S
        if keep:
            return
        self.ctx.stopped_at = self.n
        run._rec["stopped_early"] = {"iteration": self.n, "value": value}
        where = "" if at_band else f", checked again against bracket {self.passed[0]}"  # type: ignore[index]
        print(
            f"nbtracker: hyperband stopped run {run.id} at iteration {self.n} of "
            f"{self.metric} ({value:g} is outside the top of its bracket{where})",
            file=sys.stderr,
        )
        raise StopRun(0)


current: TrialContext | None = None  # set by an in-process agent around the user's function
quiet_panels = False  # an agent's sweep view shows the runs: init() shows no panel of its own
_env_used = False


def context_for_init() -> TrialContext | None:
    """The trial an ``init()`` call joins, or None (called by ``init()``)."""
    global _env_used
    if current is not None:
        return None if current.used else current
    raw = os.environ.get(ENV_PARAMS)
    if not raw or _env_used:
        return None
    sweep_id = os.environ.get("NBTRACKER_SWEEP_ID") or os.environ.get("WANDB_SWEEP_ID")
    try:
        p = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(p, dict) or p.get("sweep") != sweep_id:
        return None
    _env_used = True  # only the process's first run is the trial's
    run_id = os.environ.get("NBTRACKER_RUN_ID") or os.environ.get("WANDB_RUN_ID") or ""
    url = None
    if p.get("team"):
        from .. import team

        url = team.resolve(None)
    return TrialContext(str(sweep_id), str(p["project"]), os.environ.get("NBTRACKER_DIR"),
                        int(p["trial"]), int(p["trial_id"]), run_id, p.get("config") or {},
                        list(p.get("brackets") or []), p.get("metric"), store_url=url)  # fmt: skip
