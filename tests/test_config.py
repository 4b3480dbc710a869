"""Config: dict and attribute access, nesting, argparse/absl, YAML defaults, value changes."""

from __future__ import annotations

import argparse
import pathlib
import sys

import pytest

import nbtracker
from nbtracker.errors import ConfigValueChanged, ValueConversionWarning


def test_dict_and_attribute_access(init) -> None:
    run = init(config={"lr": 0.1, "optim": {"name": "adam", "betas": [0.9, 0.99]}})
    c = run.config
    assert c.lr == c["lr"] == c.get("lr") == 0.1
    assert c.optim.name == "adam" and c["optim"]["betas"] == [0.9, 0.99]
    assert c.get("missing", 3) == 3
    c.batch = 32
    c["epochs"] = 2
    c.update({"wd": 0.01})
    c.setdefaults({"wd": 5, "dropout": 0.5})
    assert c.wd == 0.01 and c.dropout == 0.5
    assert set(c.keys()) == {"lr", "optim", "batch", "epochs", "wd", "dropout"}
    assert dict(c.items())["batch"] == 32 and "lr" in c and len(c) == 6
    with pytest.raises(AttributeError, match="config.nope = "):
        _ = c.nope


def test_nested_config_is_flattened_for_queries(init, root) -> None:
    run = init(config={"optim": {"lr": 0.1, "name": "sgd"}})
    run.finish()
    df = nbtracker.Api(root).runs("p").to_pandas()
    assert df.loc[0, "config.optim.lr"] == 0.1
    got = nbtracker.Api(root).sql("SELECT key, value FROM config ORDER BY key")
    assert list(got["key"]) == ["optim.lr", "optim.name"]


def test_argparse_namespace_and_absl_style_flags(init) -> None:
    ns = argparse.Namespace(lr=0.3, layers=4)

    class Flags:  # absl.flags.FLAGS duck type
        def flag_values_dict(self):
            return {"dropout": 0.2}

    run = init(config=ns)
    run.config.update(Flags())
    assert run.config.as_dict() == {"lr": 0.3, "layers": 4, "dropout": 0.2}
    with pytest.raises(TypeError, match="config must be a dict"):
        run.config.update(42)


def test_config_defaults_yaml_and_configs_argument(init, tmp_path, monkeypatch) -> None:
    (tmp_path / "config-defaults.yaml").write_text(
        "wandb_version: 1\nepochs:\n  desc: number of epochs\n  value: 7\nlr: 0.5\n"
    )
    (tmp_path / "extra.yaml").write_text("lr: 0.25\nname: x\n")
    monkeypatch.setattr(sys, "argv", ["train.py", "--configs", "extra.yaml"])
    run = init(config={"name": "given"})
    assert run.config.as_dict() == {"epochs": 7, "lr": 0.25, "name": "given"}


def test_include_exclude_keys(init) -> None:
    run = init(config={"a": 1, "b": 2, "c": 3}, config_exclude_keys=["b"])
    assert set(run.config.keys()) == {"a", "c"}
    run = init(config={"a": 1, "b": 2}, config_include_keys=["b"], reinit="create_new")
    assert set(run.config.keys()) == {"b"}


def test_changing_a_value_warns_and_is_recorded(init, api) -> None:
    run = init(config={"lr": 0.1})
    with pytest.warns(ConfigValueChanged, match="allow_val_change=True"):
        run.config.lr = 0.2
    run.config.update({"lr": 0.3}, allow_val_change=True)  # silent
    run.config.lr = 0.3  # same value: silent
    run.finish()
    rec = run._snapshot()
    assert [(c["old"], c["new"]) for c in rec["config_changes"]] == [(0.1, 0.2), (0.2, 0.3)]
    assert api.run(f"p/{run.id}").config["lr"] == 0.3


def test_non_json_values_are_converted_never_crash(init, api) -> None:
    np = pytest.importorskip("numpy")

    class Weird:
        def __str__(self) -> str:
            return "weird!"

    run = init()
    with pytest.warns(ValueConversionWarning, match="'config.obj'"):
        run.config.update({
            "path": pathlib.Path("/data/x"), "np_float": np.float32(0.5), "np_int": np.int64(3),
            "arr": np.arange(3), "tup": (1, 2), "obj": Weird(),
        })  # fmt: skip
    run.config.fn = len
    run.finish()
    cfg = api.run(f"p/{run.id}").config
    assert cfg["path"] == "/data/x" and cfg["np_float"] == 0.5 and cfg["np_int"] == 3
    assert cfg["arr"] == [0, 1, 2] and cfg["tup"] == [1, 2] and cfg["obj"] == "weird!"
    assert "len" in cfg["fn"]
