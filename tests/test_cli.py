"""The command line over a real store."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

import nbtracker
from nbtracker.cli import cli


@pytest.fixture
def store_with_run(init, root):
    run = init(project="cats", id="abc", config={"lr": 0.1})
    for i in range(50):
        run.log({"loss": 1 / (i + 1), "acc": i / 50})
    run.finish()
    return root


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_runs_history_sql_export_repair(store_with_run, tmp_path) -> None:
    root = str(store_with_run)
    out = invoke("runs", "cats", "--root", root, "--json")
    assert out.exit_code == 0
    rows = json.loads(out.output)
    assert rows[0]["run_id"] == "abc" and rows[0]["config.lr"] == 0.1
    out = invoke(
        "history", "cats/abc", "--keys", "loss", "--samples", "10", "--root", root, "--csv"
    )
    assert out.exit_code == 0 and out.output.splitlines()[0] == "_step,_timestamp,_runtime,loss"
    out = invoke(
        "sql", "SELECT count(*) AS n FROM history WHERE key = ?", "-p", "acc", "--root", root
    )
    assert out.exit_code == 0 and "50" in out.output
    dest = tmp_path / "h.parquet"
    out = invoke("export", "cats/abc", str(dest), "--root", root)
    assert out.exit_code == 0 and len(pd.read_parquet(dest)) == 50
    out = invoke(
        "export", "cats/abc", str(tmp_path / "s.json"), "--what", "summary", "--root", root
    )
    assert out.exit_code == 0
    out = invoke("repair", "--root", root)
    assert out.exit_code == 0 and "indexed 1 runs" in out.output


def test_errors_are_clear(store_with_run) -> None:
    root = str(store_with_run)
    out = CliRunner().invoke(cli, ["history", "cats/nope", "--root", root])
    assert out.exit_code == 1 and "no run cats/nope" in out.output
    out = CliRunner().invoke(cli, ["runs", "--filter", "{bad", "--root", root])
    assert out.exit_code == 2 and "not valid JSON" in out.output
    out = CliRunner().invoke(cli, ["sql", "SELEC nonsense", "--root", root])
    assert out.exit_code == 1 and "SQL error" in out.output


def test_every_command_has_help_with_an_example() -> None:
    for name in cli.commands:
        out = invoke(name, "--help")
        assert out.exit_code == 0 and "Example" in out.output, name
    assert nbtracker.cli.cli.help and "nbtracker runs" in nbtracker.cli.cli.help
