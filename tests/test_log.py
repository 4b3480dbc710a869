"""log(): steps, commit, value types, nested dicts, bad values."""

from __future__ import annotations

import json
import math

import pytest

from nbtracker.errors import StepWarning


def history(api, run, **kw):
    return api.run(f"{run.project}/{run.id}").history(samples=None, **kw)


def test_each_call_adds_a_row_and_commit_false_merges(init, api) -> None:
    run = init()
    run.log({"a": 1})
    run.log({"b": 2}, commit=False)
    run.log({"c": 3}, commit=False)
    run.log({"a": 4})
    run.finish()
    h = history(api, run)
    assert list(h["_step"]) == [0, 1]
    assert h.loc[1, ["a", "b", "c"]].tolist() == [4, 2, 3]


def test_explicit_steps_never_go_backwards(init, api) -> None:
    run = init()
    run.log({"x": 1}, step=5)
    run.log({"y": 2}, step=5)  # same step: merged
    run.log({"x": 3}, step=10)
    with pytest.warns(StepWarning, match="lower than the run's current step 10"):
        run.log({"x": 99}, step=7)
    run.log({"x": 4})  # goes on at step 10 then commits
    run.log({"x": 5})
    run.finish()
    h = history(api, run)
    assert list(h["_step"]) == [5, 10, 11]
    assert list(h["x"]) == [1, 4, 5] and h.loc[0, "y"] == 2
    assert run.summary["x"] == 5


def test_value_types(init, api) -> None:
    np = pytest.importorskip("numpy")

    class FakeTensor:  # torch scalar duck type
        def __init__(self, v):
            self.v = v

        def item(self):
            return self.v

    run = init()
    run.log({
        "f": 0.5, "i": 3, "b": True, "nan": float("nan"), "inf": float("inf"),
        "np32": np.float32(0.25), "np64": np.int64(7), "npbool": np.bool_(False),
        "tensor": FakeTensor(1.5), "none": None, "text": "hello",
        "nested": {"a": 1, "deep": {"b": 2}},
    })  # fmt: skip
    run.finish()
    h = history(api, run)
    row = h.iloc[0]
    assert row["f"] == 0.5 and row["i"] == 3 and row["b"] == True  # noqa: E712
    assert math.isnan(row["nan"]) and row["inf"] == math.inf
    assert row["np32"] == 0.25 and row["np64"] == 7 and row["npbool"] == False  # noqa: E712
    assert row["tensor"] == 1.5 and row["text"] == "hello"
    assert row["nested.a"] == 1 and row["nested.deep.b"] == 2
    assert "none" not in h.columns
    assert h["i"].dtype.kind == "i"
    assert run.summary["nested.deep.b"] == 2


def test_unsupported_value_warns_and_keeps_the_rest_of_the_row(init, api) -> None:
    from nbtracker.errors import LogValueWarning

    run = init()
    with pytest.warns(
        LogValueWarning, match=r"'bad' \(builtins.object\).*other keys of this row were logged"
    ):
        run.log({"good": 1.0, "bad": object(), "also": 2})  # the training loop goes on
    run.log({"good": 3.0})
    run.finish()
    h = history(api, run)
    assert list(h["good"]) == [1.0, 3.0] and h.loc[0, "also"] == 2


def test_long_numeric_list_is_logged_as_histogram_short_one_as_a_list(init, api) -> None:
    """As W&B: more than 32 numbers make a 32-bin histogram; up to 32 stay a list."""
    run = init()
    run.log({"w": [float(i) for i in range(40)], "short": [1.0, 2.0, 2.5, 3.0]})
    run.finish()
    assert run.summary["short"] == [1.0, 2.0, 2.5, 3.0]
    h = history(api, run)
    ref = json.loads(h.loc[0, "w"])
    assert ref["_type"] == "histogram" and len(ref["values"]) == 32


def test_log_after_finish_is_a_usage_error(init) -> None:
    from nbtracker.errors import UsageError

    run = init()
    run.finish()
    with pytest.raises(UsageError, match="init"):
        run.log({"x": 1})


@pytest.mark.parametrize("kind", ["numbers", "mixed"])
def test_a_few_rows_and_many_rows_read_back_alike(init, api, kind) -> None:
    """A flush of a few values (a short run) and a big one take different ways to Parquet:
    both read back the same values and types."""
    if kind == "numbers":
        rows = [{"i": 3, "f": 0.5, "b": True, "nan": math.nan, "inf": -math.inf}]
    else:
        rows = [{"i": 1, "s": "text"}, {"i": 2, "f": 2.5, "b": False}, {"s": "more"}]
    short, long = init(id=f"short-{kind}"), init(id=f"long-{kind}", reinit="create_new")
    for row in rows:
        short.log(row)
    for _ in range(200):
        for row in rows:
            long.log(row)
    short.finish()
    long.finish()
    a, b = history(api, short), history(api, long).head(len(rows))
    assert list(a.columns) == list(b.columns)
    assert a.dtypes.astype(str).tolist() == b.dtypes.astype(str).tolist()
    for col in a.columns:
        if col in ("_runtime", "_timestamp"):
            continue
        left, right = a[col].tolist(), b[col].tolist()
        assert [repr(x) for x in left] == [repr(x) for x in right], col
