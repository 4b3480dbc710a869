"""Command line: ``nbtracker runs | history | sql | export | repair | sweep | agent | sweeps`` (also ``python -m nbtracker``)."""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from typing import Any

import click

from .errors import NbtrackerError, NbtrackerWarning

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def root_option(fn: Any) -> Any:
    fn = click.option(
        "--store", expose_value=False, callback=_note_store, metavar="URL",
        help="Read a team store (postgresql://...; default: $NBTRACKER_STORE).",
    )(fn)  # fmt: skip
    return click.option(
        "--root", envvar="NBTRACKER_DIR", type=click.Path(file_okay=False),
        help="Storage root (default: $NBTRACKER_DIR or ./nbruns).",
    )(fn)  # fmt: skip


def _note_store(ctx: click.Context, param: Any, value: str | None) -> None:
    if value:
        ctx.meta["nbtracker.store"] = value


def output_options(fn: Any) -> Any:
    fn = click.option("--json", "fmt", flag_value="json", help="Print JSON records.")(fn)
    fn = click.option("--csv", "fmt", flag_value="csv", help="Print CSV.")(fn)
    fn = click.option(
        "--table", "fmt", flag_value="table", default=True, help="Print a text table (default)."
    )(fn)
    return fn


def _emit(df: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso", default_handler=str))
    elif fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif len(df) == 0:
        click.echo("(no rows)")
    else:
        import pandas as pd

        with pd.option_context(
            "display.max_rows", 200, "display.max_columns", 30, "display.width", 160
        ):
            click.echo(df.to_string(index=False))


def _api(root: str | None) -> Any:
    from .api import Api

    ctx = click.get_current_context(silent=True)
    store = ctx.meta.get("nbtracker.store") if ctx is not None else None
    return Api(root, store=store)


class _Group(click.Group):
    """Our errors, and storage errors (a read-only disk, a DuckDB error), become one-line
    messages (exit status 1), not tracebacks; our warnings (a damaged file that was
    skipped) are printed as ``warning: ...`` lines on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NbtrackerWarning)
            try:
                return super().invoke(ctx)
            except NbtrackerError as exc:
                raise click.ClickException(str(exc)) from exc
            except OSError as exc:
                raise click.ClickException(_os_message(exc)) from exc
            except Exception as exc:
                if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb"):
                    msg = f"DuckDB error: {exc}"
                    raise click.ClickException(msg) from exc
                raise
            finally:
                for w in caught:
                    if issubclass(w.category, NbtrackerWarning):
                        click.echo(f"warning: {w.message}", err=True)
                    else:
                        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _os_message(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{what}{where}"


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="nbtracker")
def cli() -> None:
    """nbtracker: local experiment tracking. Runs live under one folder (./nbruns by
    default), in run folders with Parquet history and a DuckDB catalog.

    \b
    Examples:
      nbtracker runs cats --filter '{"config.lr": {"$lt": 0.01}}'
      nbtracker history cats/abc123 --keys loss,acc --samples 200
      nbtracker sql "SELECT run_id, max(value) FROM history WHERE key = 'acc' GROUP BY 1"
      nbtracker export cats/abc123 history.parquet
      nbtracker repair
    """


@cli.command()
@click.argument("project", required=False)
@click.option("--filter", "filters", help="MongoDB-style filter as JSON.")
@click.option(
    "--order", default="-created_at", show_default=True, help="Sort field; '-' for descending."
)
@click.option("--limit", type=int, default=None, help="Show at most N runs.")
@root_option
@output_options
def runs(
    project: str | None,
    filters: str | None,
    order: str,
    limit: int | None,
    root: str | None,
    fmt: str,
) -> None:
    """List runs (of PROJECT), one row per run with config.* and summary.* columns.

    \b
    Example:
      nbtracker runs cats --filter '{"state": "finished"}' --order -summary.acc --csv
    """
    flt = _json_arg(filters, "--filter")
    df = _api(root).runs(project, filters=flt, order=order).to_pandas()
    if limit is not None:
        df = df.head(limit)
    _emit(df, fmt)


@cli.command()
@click.argument("run_path")
@click.option("--keys", help="Comma-separated metric names (default: all).")
@click.option(
    "--samples",
    type=int,
    default=None,
    help="Down-sample to about N points per key (min/max kept).",
)
@root_option
@output_options
def history(
    run_path: str, keys: str | None, samples: int | None, root: str | None, fmt: str
) -> None:
    """Print a run's history (RUN_PATH is project/run_id or entity/project/run_id).

    \b
    Example:
      nbtracker history cats/abc123 --keys loss --samples 100 --json
    """
    key_list = [k for k in keys.split(",") if k] if keys else None
    _emit(_api(root).run(run_path).history(keys=key_list, samples=samples), fmt)


@cli.command()
@click.argument("statement")
@click.option("-p", "--param", "params", multiple=True, help="A ? parameter value (repeatable).")
@root_option
@output_options
def sql(statement: str, params: tuple[str, ...], root: str | None, fmt: str) -> None:
    """Run SQL over the views runs, config, summary, tags and history.

    \b
    Example:
      nbtracker sql "SELECT run_id, max(value) AS best FROM history WHERE key = ? GROUP BY 1" -p acc
    """
    import duckdb

    try:
        df = _api(root).sql(statement, list(params))
    except duckdb.Error as exc:
        msg = f"SQL error: {exc}"
        raise click.ClickException(msg) from exc
    _emit(df, fmt)


@cli.command()
@click.argument("run_path")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option(
    "--what",
    type=click.Choice(["history", "summary", "config"]),
    default="history",
    show_default=True,
)
@click.option("--keys", help="Comma-separated metric names (history only).")
@root_option
def export(run_path: str, output: str, what: str, keys: str | None, root: str | None) -> None:
    """Write a run's full history (or summary/config) to OUTPUT: .csv, .parquet or .json.

    \b
    Example:
      nbtracker export cats/abc123 cats-abc123.parquet
    """
    import pandas as pd

    run = _api(root).run(run_path)
    if what == "history":
        key_list = [k for k in keys.split(",") if k] if keys else None
        df = run.history(keys=key_list, samples=None)
    else:
        data = run.summary if what == "summary" else run.config
        df = pd.DataFrame(
            [{"key": k, "value": json.dumps(v, default=str)} for k, v in data.items()]
        )
    if output.endswith(".parquet"):
        _one_type_per_column(df).to_parquet(output, index=False)
    elif output.endswith(".csv"):
        df.to_csv(output, index=False)
    elif output.endswith((".json", ".jsonl")):
        df.to_json(output, orient="records", lines=output.endswith(".jsonl"), date_format="iso")
    else:
        msg = "use a .csv, .parquet, .json or .jsonl file name"
        raise click.BadParameter(msg, param_hint="OUTPUT")
    click.echo(f"wrote {len(df)} rows to {output}")


def _one_type_per_column(df: Any) -> Any:
    """Parquet holds one type per column: a key logged with both numbers and text is
    written as text (numbers as their JSON text)."""
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col] if v is not None}
            if len(kinds) > 1:
                df[col] = [
                    None if v is None else v if isinstance(v, str) else json.dumps(v)
                    for v in df[col]
                ]
    return df


@cli.command()
@root_option
def repair(root: str | None) -> None:
    """Check every run folder, fix what can be fixed, and rebuild the DuckDB catalog.

    History files that cannot be read are moved (never deleted) to <run>/damaged/; a lost,
    empty or cut-short run.json is rebuilt from the catalog and the run's history; ended
    runs are compacted and temp files left by killed processes removed. Whatever could not
    be fixed or recovered is listed, and the exit status is then 1.

    \b
    Example:
      nbtracker repair --root ./nbruns
    """
    from .store import Store

    store = Store(root)
    n = store.repair()
    report = store.last_repair
    assert report is not None
    for src, dest, why in report.moved:
        click.echo(f"moved aside {src} -> {dest} ({why})")
    for rel, how in report.rebuilt:
        click.echo(f"rebuilt {rel}/run.json ({how})")
    removed = report.removed_temp_files
    extra = f"; removed {removed} temp files left by killed processes" if removed else ""
    if not any("catalog" in p for p in report.problems):
        click.echo(f"indexed {n} runs into {store.catalog.path}{extra}")
    for line in report.lost:
        click.echo(f"not recovered: {line}", err=True)
    for line in report.problems:
        click.echo(f"not fixed: {line}", err=True)
    if not report.ok:
        msg = (
            f"repair left {len(report.lost) + len(report.problems)} problem(s); see the lines above"
        )
        raise click.ClickException(msg)


@cli.command()
@click.option("--to", "to", required=True, envvar="NBTRACKER_STORE", metavar="URL",
              help="The team store (postgresql://...; default: $NBTRACKER_STORE).")  # fmt: skip
@click.argument("runs", nargs=-1)
@click.option(
    "--root", envvar="NBTRACKER_DIR", type=click.Path(file_okay=False),
    help="Local storage root (default: $NBTRACKER_DIR or ./nbruns).",
)  # fmt: skip
def sync(to: str, runs: tuple[str, ...], root: str | None) -> None:
    """Upload local runs (all, or PROJECT / PROJECT/RUN_ID) to a team store.

    Idempotent: what the store already has is not sent again, so a sync that was cut
    short can simply be run again.

    \b
    Example:
      nbtracker sync --to postgresql://me@db.example/team cats cats/1a2b3c4d
    """
    from . import team

    report = team.sync(team.parse(to), root, list(runs) or None)
    for line in report.skipped:
        click.echo(f"skipped: {line}", err=True)
    click.echo(
        f"synced {report.runs} runs to {team.mask(to)}: {report.files} new files, "
        f"{report.records} new or changed run records"
    )


from .sweeps.cli import register as _register_sweeps  # noqa: E402 - after the helpers

_register_sweeps(cli, root_option, output_options, _emit)


def _json_arg(text: str | None, name: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        msg = f"not valid JSON: {exc}"
        raise click.BadParameter(msg, param_hint=name) from exc


def main() -> None:
    if os.environ.get("NBTRACKER_DEBUG_STACKS") and hasattr(signal, "SIGUSR1"):
        # a hung command (an agent that does not stop) prints every thread's stack on
        # SIGUSR1: what the test suite asks for before it kills one
        import faulthandler

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    cli(prog_name="nbtracker")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
