"""What the API records in the audit log: admin actions and profile reads, with the key that acted."""

from __future__ import annotations

from fastapi.testclient import TestClient

from attune.runtime import Runtime


def test_admin_actions_and_profile_reads_are_audited(private_client: TestClient, private_runtime: Runtime) -> None:
    _, reader = private_runtime.keys.create(frozenset({"read"}), name="analyst")
    reader_id = next(k.key_id for k in private_runtime.keys.list() if k.name == "analyst")
    assert private_client.put("/v1/users/cleo", json={"plan": "gold"}).status_code == 200
    assert private_client.put("/v1/items/i9", json={"title": "Nine"}).status_code == 200
    read = private_client.get("/v1/users/cleo/profile", headers={"Authorization": f"Bearer {reader}"})
    assert read.status_code == 200
    assert private_client.get("/v1/items/i9", headers={"Authorization": f"Bearer {reader}"}).status_code == 200

    entries = private_runtime.privacy.audit.entries()
    actions = [(e["actor"], e["action"], e["target"]) for e in entries]
    admin_id = next(k.key_id for k in private_runtime.keys.list() if k.name == "admin")
    cleo = private_runtime.subject_keys.user("cleo")
    assert (admin_id, "PUT /v1/users/{user_id}", cleo) in actions  # the pseudonym, not the raw id
    assert "cleo" not in repr(entries)
    assert (admin_id, "PUT /v1/items/{item_id}", "/v1/items/i9") in actions
    assert (reader_id, "profile.read", private_runtime.subject_keys.user("cleo")) in actions
    assert not any(a == "GET /v1/items/{item_id}" for _, a, _ in actions)  # plain reads of the catalog are not
    assert private_runtime.privacy.audit.verify().ok
