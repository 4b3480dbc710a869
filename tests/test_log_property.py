"""Property: ``log()`` never raises for a dict, every storable value reads back equal, every
skipped value was warned about, and the run's other rows are all there (issue 9).

Hypothesis throws random nested dicts of mixed, hostile values at ``log()``: text that is
not valid Unicode, empty keys and NUL bytes, ints beyond 64 bits, NaN and infinities, bool
and numpy scalars, reserved keys, objects that cannot be logged, deep nesting. Each example
logs into a real store in a temp folder, finishes, and reads the history back with SQL.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import warnings
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtracker
from nbtracker._util import clean_text
from nbtracker.errors import LogValueWarning
from nbtracker.store import wait_for_background

RESERVED = ("_step", "_runtime", "_timestamp")

# keys: any text but '.', which nesting uses, and '\\', which escaping uses (so two keys can
# never become one); lone surrogates, '', NUL and the reserved names included
key_chars = st.characters(blacklist_characters=".\\", blacklist_categories=())
keys = st.one_of(
    st.text(key_chars, max_size=8),
    st.sampled_from(["", "a\x00b", "\udcff", "img_\udcfe.png", *RESERVED]),
)


class Unloggable:
    def __repr__(self) -> str:
        return "<unloggable>"


class BadFloat(float):
    def __float__(self) -> float:
        raise RuntimeError("no conversion")


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63), 2**63 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(["\udcff", "x\x00y", "img_\udcfe.png"]),
    st.builds(np.float32, st.floats(width=32, allow_nan=False)),
    st.builds(np.int64, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.builds(Unloggable),
    st.builds(BadFloat, st.floats(allow_nan=False)),
)
values = st.recursive(
    scalars, lambda inner: st.dictionaries(keys, inner, max_size=4), max_leaves=12
)
rows = st.dictionaries(keys, values, max_size=6)


def expected(
    row: dict[str, Any], prefix: str | None = None, top: bool = True
) -> tuple[dict[str, Any], set[str]]:
    """What a reader must get back for ``row`` (flattened keys -> stored value), and the
    keys that must be named in a LogValueWarning."""
    stored: dict[str, Any] = {}
    skipped: set[str] = set()
    for k, v in row.items():
        name = f"{prefix}.{k}" if prefix is not None else k
        if top and k in RESERVED:
            skipped.add(name)
            continue
        name = clean_text(name, warn=False)
        if v is None:
            continue
        if isinstance(v, dict):
            inner, bad = expected(v, name, top=False)
            stored.update(inner)
            skipped |= bad
        elif isinstance(v, (Unloggable, BadFloat)):
            skipped.add(name)
        elif isinstance(v, str):
            stored[name] = clean_text(v, warn=False)
        elif isinstance(v, (bool, np.bool_)):
            stored[name] = float(v)
        elif isinstance(v, (int, np.integer)):
            v = int(v)
            try:
                stored[name] = float(v)
            except OverflowError:
                stored[name] = str(v)
        else:
            stored[name] = float(v)
    return stored, skipped


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float) and math.isnan(want):
        return math.isnan(got)
    return got == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows)
def test_log_never_raises_and_stores_every_storable_value(row: dict[str, Any]) -> None:
    root = tempfile.mkdtemp(prefix="nbt-prop-")
    try:
        run = nbtracker.init(project="p", dir=root, reinit="create_new")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.log({"before": 1})
            run.log(row)  # never raises for a dict
            run.log({"after": 2})
            run.finish()
            got = nbtracker.sql(
                "SELECT step, key, value, text FROM history WHERE run_id = ?", [run.id], root=root
            )
        stored = {}
        for step, key, value, text in got.itertuples(index=False, name=None):
            if step == 1:
                stored[key] = text if isinstance(text, str) else value
        steps = sorted(set(got["step"]))
        want, skipped = expected(row)
        # the run's other rows are all there
        assert (
            {(s, k) for s, k in zip(got["step"], got["key"], strict=True) if s != 1}
            == {(0, "before"), (2, "after")}
            and steps[0] == 0
            and steps[-1] == 2
        )
        # every storable value reads back equal
        assert set(stored) == set(want), (stored, want)
        for k, v in want.items():
            assert same(stored[k], v), (k, stored[k], v)
        # every skipped value was warned about, by name
        text = " ".join(str(w.message) for w in caught if issubclass(w.category, LogValueWarning))
        for k in skipped:
            assert repr(clean_text(k, warn=False)) in text or repr(k) in text, (k, text)
    finally:
        wait_for_background()  # the catalog update after finish() writes into root
        shutil.rmtree(root, ignore_errors=True)
