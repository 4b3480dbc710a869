"""``nbtracker sweep | agent | sweeps``: the command-line side of sweeps (thin, over the API)."""

from __future__ import annotations

import sys
from typing import Any

import click


def register(cli: Any, root_option: Any, output_options: Any, emit: Any) -> None:
    """Add the sweep commands to the ``nbtracker`` click group."""

    @cli.command("sweep")
    @click.argument("config_yaml", type=click.Path(exists=True, dir_okay=False))
    @click.option("--project", help="Project of the sweep (default: the config's project).")
    @click.option("--entity", help="Stored with the sweep.")
    @click.option("--name", help="Name of the sweep (default: the config's name).")
    @root_option
    def sweep_cmd(config_yaml: str, project: str | None, entity: str | None,
                  name: str | None, root: str | None) -> None:  # fmt: skip
        """Create a sweep from a W&B sweep YAML file; print its id and the agent command.

        With --store (or $NBTRACKER_STORE) the sweep is created in the team store, and the
        agent command, runnable on any machine, names the store without its password
        (agents read it from PGPASSWORD or ~/.pgpass).

        \b
        Example:
          nbtracker sweep --project sweep-demo-cli config.yaml
          nbtracker sweep --store postgresql://me@db.lab/nbt config.yaml
        """
        from .. import team
        from . import _created_in_team, _load_config, sweep, team_password_hint

        config = dict(_load_config(config_yaml) or {})
        if name:
            config["name"] = name
        url = team.resolve(_store_arg())
        sweep_id = sweep(config, entity=entity, project=project, dir=root, store=url)
        from ..store import Store
        from .study import SweepStudy

        st = SweepStudy.open(Store(root), sweep_id, url=_created_in_team.get(sweep_id))
        click.echo(f"Created sweep with ID: {sweep_id}")
        click.echo(f"Run sweep agent with: nbtracker agent {_quote(st.agent_path)}")
        if url is not None and team_password_hint(url):
            click.echo("The password is not shown: give each agent PGPASSWORD=... or a "
                       "~/.pgpass line for this server.")  # fmt: skip

    @cli.command("agent")
    @click.argument("sweep_path")
    @click.option("--count", type=click.IntRange(min=0), default=None,
                  help="Make at most N runs (default: until the sweep is done).")  # fmt: skip
    @click.option("--project", help="Project of the sweep (when the id alone is ambiguous).")
    @click.option("--entity", help="Accepted for W&B compatibility; ignored.")
    @root_option
    def agent_cmd(sweep_path: str, count: int | None, project: str | None,
                  entity: str | None, root: str | None) -> None:  # fmt: skip
        """Run a sweep's program, one run after another (SWEEP_PATH: [entity/]project/id,
        or <store-url>/project/id for a sweep in a team store).

        Each run gets its parameters as --key=value arguments and WANDB_SWEEP_ID /
        NBTRACKER_SWEEP_ID in its environment. Start several agents to run in parallel, on
        one machine or (team store) on several; each writes its runs under --root first.

        \b
        Example:
          nbtracker agent --count 4 sweep-demo-cli/abc123de
          PGPASSWORD=... nbtracker agent postgresql://me@db.lab/nbt/sweep-demo-cli/abc123de
        """
        from . import agent

        try:
            made = agent(sweep_path, project=project, count=count, dir=root,
                         store=_store_arg())  # fmt: skip
        except KeyboardInterrupt:
            click.echo("interrupted: the current run was marked failed; the sweep can be "
                       "resumed with another agent", err=True)  # fmt: skip
            sys.exit(130)
        click.echo(f"agent made {made} runs")

    @cli.command("sweeps")
    @click.argument("project", required=False)
    @root_option
    @output_options
    def sweeps_cmd(project: str | None, root: str | None, fmt: str) -> None:
        """List the sweeps (of PROJECT): id, name, method, state, runs, best value.

        \b
        Example:
          nbtracker sweeps sweep-demo-cli --json
        """
        import pandas as pd

        from ..api import Api

        rows = []
        for s in Api(root, store=_store_arg()).sweeps(project):
            runs = s.runs
            best = s.best_run()
            metric = s.config.get("metric") or {}
            from .study import metric_value

            rows.append({
                "sweep_id": s.id, "project": s.project, "name": s.name, "method": s.method,
                "state": s.state, "runs": len(runs), "metric": metric.get("name"),
                "best": metric_value(best.summary, metric) if best is not None else None,
                "best_run": best.id if best is not None else None,
            })  # fmt: skip
        emit(pd.DataFrame(rows), fmt)


def _store_arg() -> str | None:
    """The ``--store`` URL given to this command (None: ``$NBTRACKER_STORE`` or local)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get("nbtracker.store") if ctx is not None else None


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
