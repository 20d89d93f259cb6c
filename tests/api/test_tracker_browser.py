"""The browser tracker in real Chromium: page, track and identify reach the log across origins."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn

from attune.api.app import create_app
from attune.auth.keys import parse_scopes
from attune.runtime import Runtime
from attune.settings import load_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# On CI the browser test must run, never skip quietly: .ci/run installs chromium and the
# dev extras install playwright.
if os.environ.get("CI"):
    import playwright.sync_api as playwright_api
else:
    playwright_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def attune_server(tmp_path):
    """A live Attune server whose CORS allowlist admits the test page's origin."""
    page_port = _free_port()
    settings = load_settings(
        data_dir=tmp_path / "data", security={"cors_origins": [f"http://127.0.0.1:{page_port}"]}
    )
    runtime = Runtime.open(settings)
    _, write_key = runtime.keys.create(parse_scopes("ingest"), name="browser")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield runtime, f"http://127.0.0.1:{port}", write_key, page_port
    server.should_exit = True
    thread.join(timeout=10)
    runtime.close()


@pytest.fixture
def page_server(tmp_path, attune_server):
    """Serves a shop page from another origin that loads the tracker from Attune."""
    _, base, write_key, page_port = attune_server
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        f"""<!doctype html><html><head><title>Shop</title>
<script>window.attune = [["init", {{"host": "{base}", "writeKey": "{write_key}", "flushMs": 100}}]];</script>
<script src="{base}/tracker.js"></script></head>
<body><button id="buy" onclick="attune.track('Product Added', {{item_id: 'i42', value: 19.5, color: 'red'}})">buy</button>
<button id="login" onclick="attune.identify('u-7', {{plan: 'pro'}})">login</button>
<script>attune.page();</script></body></html>"""
    )
    handler = lambda *a, **kw: SimpleHTTPRequestHandler(*a, directory=str(site), **kw)
    httpd = ThreadingHTTPServer(("127.0.0.1", page_port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{page_port}/index.html"
    httpd.shutdown()


def _wait_for_events(runtime: Runtime, count: int, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [logged.event for logged in runtime.log.read(0, 100)]
        if len(events) >= count:
            return events
        time.sleep(0.1)
    return [logged.event for logged in runtime.log.read(0, 100)]


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="Debian chromium is not installed"
)
def test_tracker_sends_page_track_and_identify_from_another_origin(attune_server, page_server):
    runtime, _, _, _ = attune_server
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        page.goto(page_server)
        page.click("#buy")
        page.click("#login")
        page.click("#buy")
        anonymous_id = page.evaluate("attune.anonymousId()")
        events = _wait_for_events(runtime, 4)
        browser.close()

    by_type: dict[str, list] = {}
    for event in events:
        by_type.setdefault(event.type, []).append(event)
    assert len(by_type["page_view"]) == 1
    page_view = by_type["page_view"][0]
    assert page_view.context["page"]["url"] == page_server
    assert page_view.context["page"]["title"] == "Shop"
    assert "Chrome" in page_view.context["device"]["browser"]
    carts = by_type["add_to_cart"]
    assert len(carts) == 2 and all(e.item_id == "i42" and e.value == 19.5 for e in carts)
    assert carts[0].properties == {"color": "red"}
    assert carts[0].user_id is None and carts[1].user_id == "u-7"
    assert {e.anonymous_id for e in events} == {anonymous_id}
    assert by_type["identify"][0].traits == {"plan": "pro"}

    runtime.catch_up()
    profile = runtime.profiles.get("u-7")
    assert profile.traits == {"plan": "pro"}
    assert profile.anonymous_ids == [anonymous_id]
    assert profile.event_counts["add_to_cart"] == 2  # the anonymous cart merged into the user


def test_tracker_script_is_served(attune_server):
    import httpx

    _, base, _, _ = attune_server
    response = httpx.get(f"{base}/tracker.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "attune.init" in response.text
