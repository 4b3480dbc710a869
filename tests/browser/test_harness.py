"""Self-test of the browser harness with a trivial inline anywidget (no nbtracker code).

If this fails, the harness or the machine is broken, not the run panel.
"""

from __future__ import annotations

import pytest
from nbt_browser import expect, is_local_url

pytestmark = pytest.mark.browser

PROBE = '''
import time, anywidget, traitlets
class Probe(anywidget.AnyWidget):
    _esm = """
    function render({ model, el }) {
      const d = document.createElement("div");
      d.dataset.testid = "probe";
      const draw = () => { d.dataset.points = String(model.get("points"));
                           d.textContent = "points: " + model.get("points"); };
      draw(); model.on("change:points", draw); el.appendChild(d);
    }
    export default { render };
    """
    points = traitlets.Int(0).tag(sync=True)
p = Probe()
display(p)
for i in range(30):
    p.points = i + 1
    time.sleep(0.1)
'''


def points(loc) -> int:  # noqa: ANN001
    v = loc.get_attribute("data-points")
    return int(v) if v is not None else -1


def test_probe_grows_while_cell_runs(lab, page, recorded) -> None:  # noqa: ANN001
    nb = lab.open(page, "harness_probe", [PROBE, "print('after', p.points)"])
    nb.run(0, wait=False)
    probe = nb.output(0).get_by_test_id("probe")
    expect(probe).to_be_attached(timeout=20_000)
    page.wait_for_function(
        "el => Number(el.dataset.points) >= 1", arg=probe.element_handle(), timeout=20_000
    )
    first = points(probe)
    assert nb.is_running(0), "cell finished before the harness could read the probe"
    page.wait_for_function(
        f"el => Number(el.dataset.points) > {first}", arg=probe.element_handle(), timeout=10_000
    )
    second = points(probe)
    still_running = nb.is_running(0)
    assert still_running, f"cell finished before the 2nd read ({first} -> {second})"
    assert second > first
    nb.wait_done(0)
    expect(probe).to_have_attribute("data-points", "30")
    nb.run(1)
    expect(nb.output(1)).to_have_text("after 30")
    lab.screenshot(nb.output(0), "harness-probe")
    recorded.check()


def test_url_filter() -> None:
    assert is_local_url("http://127.0.0.1:8888/api/kernels")
    assert is_local_url("ws://localhost:1/api/kernels/x/channels")
    assert is_local_url("blob:http://127.0.0.1:8888/abc")
    assert is_local_url("data:image/png;base64,AAA")
    assert not is_local_url("https://cdn.jsdelivr.net/npm/vega@5")
    assert not is_local_url("http://127.0.0.1.evil.com/")
    assert not is_local_url("chrome-error://chromewebdata/")
