"""Logged tables come back as DataFrames, and Table(dataframe=df) equals the original."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbtracker
import nbtracker as wandb
from nbtracker import media
from nbtracker.data_types import Html, Image, Table
from nbtracker.data_types import image as image_module

PIL = pytest.importorskip("PIL.Image")


class FakeTensor:
    """torch.Tensor stand-in: iteration, indexing, .numpy(), .detach().cpu()."""

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = np.asarray(arr)

    def numpy(self) -> np.ndarray:
        return self.arr

    def detach(self) -> FakeTensor:
        return self

    def cpu(self) -> FakeTensor:
        return self

    def __getitem__(self, i: int) -> FakeTensor:
        return FakeTensor(self.arr[i])

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (FakeTensor(a) for a in self.arr)


def _rich_table() -> Table:
    rng = np.random.default_rng(0)
    t = Table(columns=["image", "pred", "target", "score", "ok", "name", "tags", "meta", "page"])
    for i in range(12):
        img = rng.integers(0, 256, (6, 5, 3) if i % 2 else (6, 5), dtype=np.uint8)
        t.add_data(
            Image(img, caption=f"sample <{i}>") if i != 3 else None,
            i % 4,
            None if i == 5 else (i * 3) % 4,
            float(rng.random()) if i != 7 else None,
            bool(i % 3) if i != 2 else None,
            f"row {i}" if i != 4 else None,
            [i, "x", 1.5],
            {"k": i, "nested": [1, 2]},
            Html(f"<i>{i}</i>") if i % 5 else None,
        )
    return t


@pytest.mark.parametrize("images", ["pil", "array", "image", "path"])
def test_round_trip_through_a_run(init, images: str) -> None:  # type: ignore[no-untyped-def]
    run = init()
    t = _rich_table()
    run.log({"predictions_table": t})
    run.finish()
    df = media.load_table(run.dir, "predictions_table", images=images)
    assert list(df.columns) == t.columns and len(df) == len(t)
    cell = df["image"][0]
    kind = {"pil": "PIL.", "array": "numpy", "image": "nbtracker", "path": "builtins"}[images]
    assert type(cell).__module__.startswith(kind.rstrip("."))
    assert df["pred"].dtype == np.int64 and df["score"].dtype == np.float64
    back = Table(dataframe=df)
    assert back == t
    assert back.column_types == t.column_types
    for a, b in zip(back.get_column("image"), t.get_column("image"), strict=True):
        assert (a is None and b is None) or (a.to_numpy() == b.to_numpy()).all()


def test_in_memory_get_dataframe_round_trip() -> None:
    t = _rich_table()
    for images in ("pil", "array", "image"):
        assert Table(dataframe=t.get_dataframe(images=images)) == t
    with pytest.raises(ValueError, match="images='path' needs a table read back"):
        t.get_dataframe(images="path")
    df = t.get_dataframe()
    assert df["image"][0].info["caption"] == "sample <0>"
    changed = _rich_table()
    changed.data[0][1] = 99
    assert changed != t


def test_plain_dataframe_in() -> None:
    df = pd.DataFrame(
        {"x": [1, 2], "s": ["a", None], "img": [PIL.new("RGB", (3, 2), (255, 0, 0)), None]}
    )
    t = Table(dataframe=df)
    assert t.column_types == {"x": "number", "s": "str", "img": "image"}
    assert t.data[1][1] is None and t.data[0][2].to_numpy()[0, 0].tolist() == [255, 0, 0]
    assert Table(data=df).columns == ["x", "s", "img"]


@pytest.mark.parametrize("images", ["png", "path"])
def test_export_to_parquet_and_back(init, tmp_path: Path, images: str) -> None:  # type: ignore[no-untyped-def]
    run = init()
    t = _rich_table()
    run.log({"t": t})
    run.finish()
    dest = media.export_table(run.dir, "t", tmp_path / "out" / "t.parquet", images=images)
    assert Table.from_parquet(dest) == t
    t.to_parquet(tmp_path / "direct.parquet", images=images)  # an in-memory table
    assert Table.from_parquet(tmp_path / "direct.parquet") == t
    assert Table.from_parquet(media.table_path(run.dir, "t")) == t  # the logged file itself
    pq = pd.read_parquet(dest)
    assert list(pq.columns) == t.columns


def test_several_versions_per_run_and_list(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    t = Table(columns=["step", "img"])
    for step in range(4):
        t.add_data(step, Image(np.full((3, 3), step * 60, np.uint8)))
        run.log({"grow": t, "loss": 1.0 / (step + 1)})
    run.finish()
    assert media.list_tables(run.dir) == {"grow": [0, 1, 2, 3]}
    for step in range(4):
        df = media.load_table(run.dir, "grow", step=step, images="array")
        assert df["step"].tolist() == list(range(step + 1))
        assert int(df["img"].iloc[-1][0, 0]) == step * 60


def test_wandb_quickstart_prediction_table_runs_unchanged(root: Path) -> None:
    wandb.init(project="p", dir=str(root))
    rng = np.random.default_rng(1)
    images = FakeTensor(rng.normal(0.13, 0.31, (16, 1, 28, 28)).astype(np.float32))
    predicted = rng.integers(0, 10, 16)
    labels = rng.integers(0, 10, 16)
    probs = FakeTensor(rng.dirichlet(np.ones(10), 16).astype(np.float32))
    image_module._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # --- the W&B quickstart snippet, unchanged ---
        table = wandb.Table(columns=["image", "pred", "target"] + [f"score_{i}" for i in range(10)])
        for img, pred, targ, prob in zip(images, predicted, labels, probs):  # noqa: B905
            table.add_data(wandb.Image(img[0].numpy() * 255), pred, targ, *prob.numpy())
        wandb.log({"predictions_table": table}, commit=False)
        # ---
    assert len(caught) == 1 and "clipped to 0..255" in str(caught[0].message)  # once, not 16x
    run = nbtracker.run
    wandb.log({"acc": 0.5})
    run.finish()
    df = media.load_table(run.dir, "predictions_table")
    assert df.shape == (16, 13)
    assert df["image"][0].size == (28, 28)
    assert np.allclose(df["score_3"].to_numpy(), probs.arr[:, 3], atol=1e-6)
    assert json.loads(run.summary["predictions_table"])["nrows"] == 16
    assert Table(dataframe=df) == table


def test_example_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    import shutil

    src = Path(__file__).resolve().parent.parent / "examples" / "02_tables_and_images.ipynb"
    shutil.copy(src, tmp_path / src.name)
    nb = nbformat.read(tmp_path / src.name, as_version=4)
    monkeypatch.setenv("NBTRACKER_DIR", str(tmp_path / "nbruns"))  # the kernel inherits it
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert [o for o in outputs if o.get("output_type") == "error"] == []
    html = [o["data"].get("text/html", "") for o in outputs if "data" in o]
    assert any("data-nbt-fallback" in h and "data:image/png;base64," in h for h in html)
    assert (tmp_path / "predictions.parquet").exists()
    text = [o["data"].get("text/plain", "") for o in outputs if "data" in o]
    # the last table view: both logged versions of the table, 64 rows each
    assert any("predictions_table (steps 0, 4)" in t and "128 rows" in t for t in text), text


def test_api_run_table(init, api) -> None:  # type: ignore[no-untyped-def]
    run = init()
    t = _rich_table()
    run.log({"predictions_table": t})
    t.add_data(*([None] * len(t.columns)))
    run.log({"predictions_table": t})
    run.finish()
    api_run = api.run(f"{run.project}/{run.id}")
    assert len(api_run.table("predictions_table")) == 13
    assert Table(dataframe=api_run.table("predictions_table", step=0)) == _rich_table()
    assert api_run.table("predictions_table", images="array")["image"][0].dtype == np.uint8


def test_history_refs_and_histograms_over_time(init) -> None:  # type: ignore[no-untyped-def]
    from nbtracker.data_types import Histogram

    run = init()
    for step in range(3):
        run.log(
            {
                "w": Histogram(np.arange(10) + step, num_bins=5),
                "img": Image(np.full((2, 2), step, np.uint8)),
            }
        )
    run.finish()
    from nbtracker.store import wait_for_background

    wait_for_background()  # finish() compacts the history in the background
    refs = media.history_refs(run.dir, "img")
    assert [s for s, _ in refs] == [0, 1, 2] and refs[0][1]["_type"] == "image-file"
    assert int(media.load_image(run.dir, refs[2][1], images="array")[0, 0]) == 2
    df = media.load_histograms(run.dir, "w")
    assert list(df.columns) == ["step", "bin_start", "bin_end", "count"]
    assert df.groupby("step")["count"].sum().tolist() == [10, 10, 10]
    assert df[df.step == 2]["bin_start"].min() == 2.0
