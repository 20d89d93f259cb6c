"""Identify events' trait values are sealed before they reach the event log and the lake.

They are sealed under the data key of the event's subject (user key, else anonymous key),
so the profile, the export and nothing else can read them, and erasure (shredding that key)
leaves every copy — log rows, lake files, backups of either — unreadable.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy import select

from attune.privacy.traits_at_rest import is_sealed, open_traits, open_value, seal_traits
from attune.runtime import Runtime
from attune.storage.tables import events, person_keys

EMAIL = "vera.lund@example.org"
PLAN = "gold-tier-5081"  # not PII: the scanner leaves it, only sealing can hide it
CITY = "Vardoe-Oest-22"


def ingest(client: TestClient, runtime: Runtime, batch: list[dict[str, Any]]) -> None:
    answer = client.post("/v1/events", json={"events": batch})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(batch)
    assert runtime.pipeline.wait_for(runtime.log.head())


def wait_for_lake(runtime: Runtime) -> None:
    head = runtime.log.head()
    lake = runtime.pipeline.runner("lake")
    deadline = time.monotonic() + 10
    while lake.cursor < head and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lake.cursor >= head


def logged_traits(runtime: Runtime) -> list[dict[str, Any]]:
    """The ``traits`` of every logged event that has some, as stored in the log."""
    with runtime.engine.connect() as conn:
        bodies = conn.execute(select(events.c.body).order_by(events.c.offset)).scalars().all()
    return [data["traits"] for data in map(orjson.loads, bodies) if data.get("traits")]


def lake_traits(lake_dir: Path) -> list[dict[str, Any]]:
    """The ``traits`` column of every lake file (decompressed), parsed."""
    out = []
    for path in sorted(lake_dir.rglob("*.parquet")):
        out.extend(orjson.loads(text) for text in pq.read_table(path).column("traits").to_pylist() if text)
    return out


def files_containing(root: Path, needle: str) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes())


def test_traits_are_sealed_in_the_log_and_the_lake_and_opened_by_profile_and_export(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    ingest(private_client, private_runtime, [
        {"type": "identify", "user_id": "vera", "traits": {"email": EMAIL, "plan": PLAN}},
        {"type": "view", "user_id": "vera", "item_id": "i1"},
    ])
    wait_for_lake(private_runtime)
    private_runtime.pipeline.runner("lake").flush()

    (logged,) = logged_traits(private_runtime)
    assert set(logged) == {"email", "plan"} and all(is_sealed(v) for v in logged.values())
    (in_lake,) = lake_traits(private_runtime.settings.lake_dir)
    assert set(in_lake) == {"email", "plan"} and all(is_sealed(v) for v in in_lake.values())
    # Not in any file of the installation: data dir (lake, keyring, audit) nor the SQLite store.
    assert files_containing(private_runtime.settings.data_dir, PLAN) == []
    if private_runtime.engine.dialect.name == "sqlite":
        database = private_runtime.engine.url.database
        assert database is not None and PLAN.encode() not in Path(database).read_bytes()

    assert private_client.get("/v1/users/vera/profile").json()["traits"]["plan"] == PLAN
    exported = private_client.get("/v1/users/vera/export").json()
    assert exported["profile"]["traits"]["plan"] == PLAN
    identify = [e for e in exported["events"] if e["type"] == "identify"]
    assert len(identify) == 1 and identify[0]["traits"]["plan"] == PLAN


def test_anonymous_traits_are_sealed_under_the_anonymous_key_and_survive_a_merge(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    ingest(private_client, private_runtime, [{"type": "identify", "anonymous_id": "dev-9", "traits": {"city": CITY}}])
    (logged,) = logged_traits(private_runtime)
    anon_key = private_runtime.subject_keys.anon("dev-9")
    aead = private_runtime.privacy.person_keys.cipher(anon_key, create=False)
    assert open_traits(aead, logged) == {"city": CITY}
    ingest(private_client, private_runtime, [
        {"type": "identify", "user_id": "vera", "anonymous_id": "dev-9", "traits": {"plan": PLAN}},
    ])
    assert private_client.get("/v1/users/vera/profile").json()["traits"] == {"city": CITY, "plan": PLAN}
    exported = private_client.get("/v1/users/vera/export").json()
    assert [e["traits"] for e in exported["events"] if e.get("traits")] == [{"city": CITY}, {"plan": PLAN}]


def test_replay_rebuilds_profiles_from_sealed_log(private_client: TestClient, private_runtime: Runtime) -> None:
    ingest(private_client, private_runtime, [{"type": "identify", "user_id": "vera", "traits": {"plan": PLAN}}])
    private_runtime.pipeline.stop()
    private_runtime.pipeline.replay()
    assert private_runtime.profiles.get("vera").traits == {"plan": PLAN}


def test_after_erasure_no_copy_of_the_log_or_lake_can_be_opened(
    private_client: TestClient, private_runtime: Runtime, tmp_path: Path
) -> None:
    ingest(private_client, private_runtime, [
        {"type": "identify", "user_id": "vera", "anonymous_id": "dev-9", "traits": {"plan": PLAN}},
        {"type": "identify", "user_id": "nils", "traits": {"plan": "silver-3"}},
    ])
    wait_for_lake(private_runtime)
    private_runtime.pipeline.runner("lake").flush()
    backup = tmp_path / "backup"
    shutil.copytree(private_runtime.settings.lake_dir, backup)  # a "backup" of the lake
    log_copy = logged_traits(private_runtime)  # and one of the log
    assert len(log_copy) == 2
    assert private_client.delete("/v1/users/vera").status_code == 200

    sealed = [t["plan"] for t in log_copy + lake_traits(backup)]
    with private_runtime.engine.begin() as conn:
        remaining = list(conn.execute(select(person_keys.c.subject_key)).scalars())
        ciphers = private_runtime.profiles.vault.ciphers(conn, remaining)  # type: ignore[union-attr]
    assert private_runtime.subject_keys.user("vera") not in remaining
    opened = set()
    for value in sealed:
        for aead in ciphers.values():
            try:
                opened.add(open_value(aead, value))
            except ValueError:
                continue
    assert opened == {"silver-3"}  # only the person who was not erased
    assert private_client.get("/v1/users/nils/profile").json()["traits"] == {"plan": "silver-3"}


def test_a_value_sent_looking_sealed_is_sealed_again() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    sealed = seal_traits(aead, {"note": "enc:v1:AAAA", "n": 3})
    assert sealed["note"] != "enc:v1:AAAA"
    assert open_traits(aead, sealed) == {"note": "enc:v1:AAAA", "n": 3}
    assert open_traits(None, sealed) == {}
    assert open_traits(None, {"plain": 1}) == {"plain": 1}


def test_without_pseudonymization_logged_traits_stay_in_clear(client: TestClient, runtime: Runtime) -> None:
    ingest(client, runtime, [{"type": "identify", "user_id": "vera", "traits": {"plan": PLAN}}])
    assert logged_traits(runtime) == [{"plan": PLAN}]

