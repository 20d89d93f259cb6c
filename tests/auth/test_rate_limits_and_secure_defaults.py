"""Rate limits (429 + Retry-After), secure defaults for serve, TLS options."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from attune.api.app import create_app
from attune.auth.keys import ApiKey
from attune.auth.ratelimit import TokenBucketLimiter
from attune.auth.secure import check_listen, is_loopback, tls_options
from attune.errors import ConfigError
from attune.settings import RateLimit


def key(key_id: str, *scopes: str, name: str = "") -> ApiKey:
    return ApiKey(key_id, name, frozenset(scopes), 0.0, None, None)


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter({"ingest": RateLimit(rate=2, burst=3)}, clock=lambda: now[0])
    k = key("k1", "ingest")
    assert [limiter.take(k) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take(k) == pytest.approx(0.5)  # empty: one token every 1/2 s
    now[0] += 0.5
    assert limiter.take(k) == 0.0
    assert limiter.take(key("k2", "read")) == 0.0  # no limit for read keys


def test_key_id_limit_wins_over_scope() -> None:
    limiter = TokenBucketLimiter({"admin": RateLimit(rate=100, burst=100), "k9": RateLimit(rate=1, burst=1)})
    assert limiter.limit_for(key("k9", "admin")).burst == 1
    assert limiter.limit_for(key("k8", "admin", "read")).burst == 100


def test_limited_key_gets_429_with_retry_after(make_runtime) -> None:
    runtime = make_runtime(privacy={"rate_limits": {"ingest": {"rate": 0.01, "burst": 2}}})
    _, ingest = runtime.keys.create(frozenset({"ingest"}))
    _, read = runtime.keys.create(frozenset({"read"}))
    with TestClient(create_app(runtime, run_consumers=False)) as client:
        body = {"events": [{"type": "view", "anonymous_id": "d"}]}
        codes = [client.post("/v1/events", json=body, headers={"Authorization": f"Bearer {ingest}"}).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = client.post("/v1/events", json=body, headers={"Authorization": f"Bearer {ingest}"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert client.get("/v1/items/x", headers={"Authorization": f"Bearer {read}"}).status_code == 404


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.5"])
def test_loopback_is_always_allowed(host: str) -> None:
    assert is_loopback(host)
    check_listen(host, environment="development", has_master_key=False, keys=[key("d", "admin", name="demo admin")])


def test_public_interface_refused_with_every_reason() -> None:
    with pytest.raises(ConfigError) as err:
        check_listen("0.0.0.0", environment="development", has_master_key=False,
                     keys=[key("k1", "admin", name="demo admin"), key("k2", "read", name="crm")])
    assert "refusing to listen on 0.0.0.0" in err.value.message
    assert len(err.value.errors) == 3 and "k1" in err.value.errors[2] and "k2" not in err.value.errors[2]
    check_listen("0.0.0.0", environment="production", has_master_key=True, keys=[key("k2", "read", name="crm")])


def test_tls_options(tmp_path) -> None:
    cert, private = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    private.write_text("y")
    assert tls_options(None, None) == {}
    assert tls_options(cert, private) == {"ssl_certfile": str(cert), "ssl_keyfile": str(private)}
    with pytest.raises(ConfigError, match="together"):
        tls_options(cert, None)
    with pytest.raises(ConfigError, match="not a readable file"):
        tls_options(cert, tmp_path / "missing.pem")
