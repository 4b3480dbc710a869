"""alert(): stored with the run, rate limited per title, read back through the Api and the
panel; the webhook is POSTed from a background thread (a real local HTTP server) and a
failing or slow server never reaches the training loop."""

from __future__ import annotations

import json
import threading
import time
import warnings
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import nbtracker
from nbtracker import alerts as alerts_mod


@pytest.fixture
def poster():
    """A fresh webhook poster per test (its one-warning flag is per process)."""
    alerts_mod._Poster._instance = None
    yield lambda: alerts_mod._Poster.get()
    alerts_mod._Poster._instance = None


class _Server:
    def __init__(self, delay: float = 0.0, status: int = 200) -> None:
        got: list[dict] = []
        done = threading.Event()
        self.got, self.done = got, done

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                got.append(json.loads(body))
                self.send_response(status)
                self.end_headers()
                done.set()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook/secret-token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_alerts_are_stored_rate_limited_and_read_back(init, api) -> None:
    run = init()
    run.log({"loss": 1.0})
    nbtracker.alert("diverged", "loss is <b>NaN</b>", level=nbtracker.AlertLevel.ERROR)
    nbtracker.alert("diverged", "again, within 60 s: dropped")
    run.alert("slow", "1", level="WARN", wait_duration=0.05)
    time.sleep(0.1)
    run.alert("slow", "2", wait_duration=timedelta(seconds=30))
    run.alert("slow", "3: within 30 s of the last one")
    run.finish()
    got = api.run(f"p/{run.id}").alerts()
    assert [(a["title"], a["text"], a["level"]) for a in got] == [
        ("diverged", "loss is <b>NaN</b>", "ERROR"),
        ("slow", "1", "WARN"),
        ("slow", "2", "INFO"),
    ]
    assert got[0]["step"] == 0 and got[1]["wait_duration"] == 0.05
    assert got[2]["wait_duration"] == 30.0


def test_bad_level_and_wait_duration_are_clear_errors(init) -> None:
    run = init()
    with pytest.raises(ValueError, match="'INFO', 'WARN', or 'ERROR'"):
        run.alert("t", "x", level="LOUD")
    with pytest.raises(TypeError, match="wait_duration"):
        run.alert("t", "x", wait_duration="soon")


def test_a_torn_last_line_is_skipped(init, api) -> None:
    run = init()
    run.alert("a", "b")
    run.finish()
    with open(run._store.alerts_file(run.dir), "a") as fh:
        fh.write('{"title": "cut sh')
    assert [a["title"] for a in api.run(f"p/{run.id}").alerts()] == ["a"]


def test_the_panel_gets_alerts_live(init) -> None:
    from nbtracker.widgets.run_panel import RunPanel

    run = init()
    panel = RunPanel.for_run(run, show_tables=False)
    for i in range(25):
        run.alert(f"t{i}", "x")
    assert len(panel.alerts) == 20 and panel.alerts[-1]["title"] == "t24"
    run.finish()
    panel.close()


def test_webhook_posts_json_to_a_local_server(init, monkeypatch, poster) -> None:
    srv = _Server()
    try:
        monkeypatch.setenv("NBTRACKER_ALERT_WEBHOOK", srv.url)
        run = init()
        run.alert("done", "accuracy 0.93", level="INFO")
        assert srv.done.wait(5)
        assert srv.got == [{**srv.got[0], "title": "done", "text": "accuracy 0.93",
                            "level": "INFO", "project": "p", "run_id": run.id}]  # fmt: skip
        run2 = init(settings=nbtracker.Settings(alert_webhook_url=srv.url), reinit="create_new")
        monkeypatch.delenv("NBTRACKER_ALERT_WEBHOOK")
        srv.done.clear()
        run2.alert("from settings", "x")
        assert srv.done.wait(5) and srv.got[-1]["title"] == "from settings"
    finally:
        srv.close()


def test_a_slow_or_failing_webhook_never_stalls_training(init, monkeypatch, poster) -> None:
    monkeypatch.setattr(alerts_mod, "WEBHOOK_TIMEOUT_S", 0.3)
    srv = _Server(delay=1.0)  # slower than the timeout
    try:
        monkeypatch.setenv("NBTRACKER_ALERT_WEBHOOK", srv.url)
        run = init()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            for i in range(3):
                run.alert(f"a{i}", "x")
            spent = time.perf_counter() - t0
            assert spent < 0.5  # the loop never waits on the server
            poster().drain(timeout=10)
        assert poster().failed >= 1
        said = [w for w in caught if issubclass(w.category, alerts_mod.WebhookWarning)]
        assert len(said) == 1  # once, whatever fails after
        assert "127.0.0.1" in str(said[0].message) and "secret-token" not in str(said[0].message)
        assert len(nbtracker.Api(run._store.root).run(f"p/{run.id}").alerts()) == 3
    finally:
        srv.close()


def test_an_unreachable_webhook_warns_once(init, monkeypatch, poster) -> None:
    srv = _Server()
    url = srv.url
    srv.close()  # nothing listens there any more
    monkeypatch.setenv("NBTRACKER_ALERT_WEBHOOK", url)
    run = init()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.alert("a", "x")
        run.alert("b", "x")
        poster().drain()
    assert poster().failed == 2
    assert sum(issubclass(w.category, alerts_mod.WebhookWarning) for w in caught) == 1


def test_disabled_run_alert_is_a_no_op() -> None:
    run = nbtracker.init(mode="disabled")
    run.alert("t", "x")


def test_a_followed_run_panel_shows_its_alerts(init) -> None:
    from nbtracker.widgets.run_panel import RunPanel

    run = init()
    run.log({"loss": 1.0})
    run.alert("from another process", "x", level="WARN")
    run.finish()
    panel = RunPanel.for_folder(run.dir, follow=False)
    assert [(a["title"], a["level"]) for a in panel.alerts] == [("from another process", "WARN")]
    panel.close()
