"""The tracking pixel: always a 1x1 GIF; events only with a usable ingest key."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attune.runtime import Runtime

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"


def assert_gif(response) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and len(response.content) < 100
    assert "no-store" in response.headers["cache-control"]


@pytest.fixture
def browser(client: TestClient) -> TestClient:
    """The client without its admin key, as an <img> tag in a page or e-mail."""
    client.headers.pop("Authorization")
    return client


def test_valid_key_records_a_page_view(browser: TestClient, runtime: Runtime, keys: dict[str, str]) -> None:
    response = browser.get(
        "/v1/pixel.gif",
        params={"key": keys["ingest"], "aid": "d1", "url": "https://shop.test/p/1", "campaign": "spring"},
        headers={"user-agent": UA, "referer": "https://mail.test/"},
    )
    assert_gif(response)
    [logged] = runtime.log.read(0, 10)
    event = logged.event
    assert (event.type, event.anonymous_id) == ("page_view", "d1")
    assert event.context["page"] == {"url": "https://shop.test/p/1", "referrer": "https://mail.test/"}
    assert event.context["user_agent"] == UA
    assert event.context["device"]["type"] == "mobile"
    assert event.context["source"] == "pixel"
    assert event.properties == {"campaign": "spring"}


def test_email_open_with_short_keys(browser: TestClient, runtime: Runtime, keys: dict[str, str]) -> None:
    assert_gif(
        browser.get(f"/v1/pixel.gif?writeKey={keys['admin']}&t=email_open&uid=u1&iid=mail-7&ts=1790000000")
    )
    event = runtime.log.read(0, 1)[0].event
    assert (event.type, event.user_id, event.item_id, event.timestamp) == (
        "email_open",
        "u1",
        "mail-7",
        1790000000.0,
    )


@pytest.mark.parametrize(
    "query",
    [
        "aid=d1",  # no key
        "key=atk_wrong_key&aid=d1",  # unknown key
        "key={read}&aid=d1",  # a key without the ingest scope
        "key={ingest}",  # no id: the event is refused
        "key={ingest}&aid=d1&ts=soon",  # bad timestamp: refused
        "key={ingest}&aid=%00",  # control character: refused
    ],
)
def test_anything_else_still_gets_a_gif_but_records_nothing(
    browser: TestClient, runtime: Runtime, keys: dict[str, str], query: str
) -> None:
    assert_gif(browser.get("/v1/pixel.gif?" + query.format(**keys)))
    assert runtime.log.count() == 0


def test_odd_digits_in_the_timestamp_still_get_a_gif(
    browser: TestClient, runtime: Runtime, keys: dict[str, str]
) -> None:
    # "²" counts as a digit to str.isdigit() but int() refuses it.
    assert_gif(browser.get("/v1/pixel.gif", params={"key": keys["ingest"], "aid": "d1", "ts": "²"}))
    assert runtime.log.count() == 0


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(
        st.sampled_from(["t", "type", "uid", "aid", "iid", "ts", "timestamp", "eid", "url"])
        | st.text(max_size=6),
        st.text(max_size=12),
        max_size=6,
    )
)
def test_random_queries_always_get_a_gif(
    browser: TestClient, keys: dict[str, str], params: dict[str, str]
) -> None:
    assert_gif(browser.get("/v1/pixel.gif", params={**params, "key": keys["ingest"]}))
