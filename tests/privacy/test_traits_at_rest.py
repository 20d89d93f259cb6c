"""Trait values are stored sealed under the person's data key, and every reader opens them."""

from __future__ import annotations

from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from attune.privacy.traits_at_rest import is_sealed, open_records, open_value, seal_records, seal_value
from attune.runtime import Runtime
from attune.storage.tables import profiles

EMAIL = "mira.quell@example.net"
PLAN = "gold-tier-77"
CITY = "Tromsoe-Nord"


def stored_traits(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """The ``traits`` column of every stored profile, as stored."""
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(profiles.c.user_key, profiles.c.traits)).all()
    return {key: traits if isinstance(traits, dict) else orjson.loads(traits) for key, traits in rows}


def ingest(client: TestClient, runtime: Runtime, events: list[dict[str, Any]]) -> None:
    answer = client.post("/v1/events", json={"events": events})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(events)
    assert runtime.pipeline.wait_for(runtime.log.head())


def test_traits_are_sealed_in_the_profiles_table_and_readable_through_the_api(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    ingest(private_client, private_runtime,
           [{"type": "identify", "user_id": "mira", "traits": {"email": EMAIL, "plan": PLAN}}])
    stored = stored_traits(private_runtime)
    assert len(stored) == 1
    (records,) = stored.values()
    assert set(records) == {"email", "plan"}
    assert all(is_sealed(r["value"]) for r in records.values())
    assert all(r["source"] == "web" and r["ts"] > 0 for r in records.values())  # metadata in clear
    raw = orjson.dumps(stored).decode()
    assert EMAIL not in raw and PLAN not in raw
    body = private_client.get("/v1/users/mira/profile").json()
    assert body["traits"] == {"email": EMAIL, "plan": PLAN}
    assert set(body["trait_sources"]) == {"email", "plan"}
    # Serving's people cache (cold-start demographics) sees clear values too.
    assert private_runtime.recommendations.users.get("mira").traits == {"email": EMAIL, "plan": PLAN}
    bulk = private_runtime.profiles.serving_snapshots(10)
    assert bulk["mira"].traits == {"email": EMAIL, "plan": PLAN}
    # The export opens them as well.
    assert private_client.get("/v1/users/mira/export").json()["profile"]["traits"] == {"email": EMAIL, "plan": PLAN}


def test_a_later_identify_keeps_earlier_values_sealed_and_updates_others(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    ingest(private_client, private_runtime,
           [{"type": "identify", "user_id": "mira", "traits": {"email": EMAIL, "plan": "silver"}}])
    ingest(private_client, private_runtime,
           [{"type": "identify", "user_id": "mira", "traits": {"plan": PLAN}},
            {"type": "view", "user_id": "mira", "item_id": "i1"}])
    raw = orjson.dumps(stored_traits(private_runtime)).decode()
    assert EMAIL not in raw and PLAN not in raw and "silver" not in raw
    assert private_client.get("/v1/users/mira/profile").json()["traits"] == {"email": EMAIL, "plan": PLAN}


def test_identity_merge_reseals_the_alias_traits_under_the_canonical_key(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    # The anonymous visitor gives a city, later logs in as a user who has an e-mail.
    ingest(private_client, private_runtime, [
        {"type": "identify", "anonymous_id": "dev-31", "traits": {"city": CITY}},
        {"type": "identify", "user_id": "mira", "traits": {"email": EMAIL}},
    ])
    ingest(private_client, private_runtime,
           [{"type": "identify", "user_id": "mira", "anonymous_id": "dev-31", "traits": {"plan": PLAN}}])
    stored = stored_traits(private_runtime)
    user_key = private_runtime.subject_keys.user("mira")
    assert list(stored) == [user_key]  # the anonymous profile was absorbed
    assert all(is_sealed(r["value"]) for r in stored[user_key].values())
    raw = orjson.dumps(stored).decode()
    assert CITY not in raw and EMAIL not in raw and PLAN not in raw
    body = private_client.get("/v1/users/mira/profile").json()
    assert body["traits"] == {"city": CITY, "email": EMAIL, "plan": PLAN}
    assert body["anonymous_ids"] == ["dev-31"]
    # Every value opens with the canonical person's key alone.
    aead = private_runtime.privacy.person_keys.cipher(user_key, create=False)
    assert {n: open_value(aead, r["value"]) for n, r in stored[user_key].items()} == {
        "city": CITY, "email": EMAIL, "plan": PLAN}


def test_alias_event_merges_sealed_traits_of_a_previous_user(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    ingest(private_client, private_runtime,
           [{"type": "identify", "user_id": "old-mira", "traits": {"email": EMAIL}}])
    ingest(private_client, private_runtime,
           [{"type": "alias", "user_id": "mira", "properties": {"previous_id": "old-mira"}},
            {"type": "identify", "user_id": "mira", "traits": {"plan": PLAN}}])
    assert private_client.get("/v1/users/mira/profile").json()["traits"] == {"email": EMAIL, "plan": PLAN}
    raw = orjson.dumps(stored_traits(private_runtime)).decode()
    assert EMAIL not in raw and PLAN not in raw


def test_erased_person_values_stay_unreadable(private_client: TestClient, private_runtime: Runtime) -> None:
    ingest(private_client, private_runtime,
           [{"type": "identify", "user_id": "mira", "traits": {"email": EMAIL}},
            {"type": "identify", "user_id": "nils", "traits": {"email": "nils@example.net"}}])
    copy = stored_traits(private_runtime)[private_runtime.subject_keys.user("mira")]  # a "backup"
    assert private_client.delete("/v1/users/mira").status_code == 200
    vault = private_runtime.profiles.vault
    assert vault is not None
    assert vault.open_one(private_runtime.subject_keys.user("mira"), copy) == {}
    assert private_client.get("/v1/users/nils/profile").json()["traits"] == {"email": "nils@example.net"}


def test_without_pseudonymization_traits_stay_in_clear(client: TestClient, runtime: Runtime) -> None:
    ingest(client, runtime, [{"type": "identify", "user_id": "mira", "traits": {"plan": PLAN}}])
    stored = stored_traits(runtime)
    assert list(stored) == ["u:mira"] and stored["u:mira"]["plan"]["value"] == PLAN
    assert client.get("/v1/users/mira/profile").json()["traits"] == {"plan": PLAN}


json_values = st.recursive(
    # What JSON bodies carry (finite numbers, 64-bit integers); text never looks like ciphertext.
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text().filter(lambda t: not t.startswith("enc:v1:")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=5))
def test_seal_then_open_is_identity(values: dict[str, Any]) -> None:
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    records = {n: {"value": v, "ts": 1.0, "source": "web"} for n, v in values.items()}
    sealed = seal_records(aead, records)
    assert all(is_sealed(r["value"]) for r in sealed.values())
    assert seal_records(aead, sealed) == sealed  # sealing twice changes nothing
    assert open_records(aead, sealed) == records
    other = AESGCM(AESGCM.generate_key(bit_length=256))
    assert open_records(other, sealed) == {}  # another person's key opens nothing
    for value in values.values():
        assert orjson.loads(orjson.dumps(open_value(aead, seal_value(aead, value)))) == orjson.loads(
            orjson.dumps(value))
