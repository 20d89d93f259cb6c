"""A consent event takes effect for the rest of its batch: for its subject and for the devices
linked to that person, and for nobody else."""

from __future__ import annotations

from sqlalchemy import select

from attune.privacy.enforcement import STRIPPED_ID
from attune.runtime import Runtime
from attune.storage.tables import events


def test_withdrawal_reaches_linked_devices_later_in_the_batch(private_runtime: Runtime) -> None:
    keys = private_runtime.subject_keys
    private_runtime.ingest.ingest([{"type": "alias", "user_id": "kim", "properties": {"previous_id": "dev-kim"}}])
    private_runtime.catch_up()  # dev-kim is now linked to kim
    batch = [
        {"type": "view", "anonymous_id": "dev-kim", "item_id": "i1"},
        {"type": "view", "anonymous_id": "dev-other", "item_id": "i2"},
        {"type": "consent", "user_id": "kim", "properties": {"purposes": {"analytics": "withdrawn"}}},
        {"type": "view", "anonymous_id": "dev-kim", "item_id": "i3"},
        {"type": "view", "user_id": "kim", "item_id": "i4"},
        {"type": "view", "anonymous_id": "dev-other", "item_id": "i5"},
        {"type": "consent", "anonymous_id": "dev-other", "properties": {"purposes": {"analytics": "withdrawn"}}},
        {"type": "view", "anonymous_id": "dev-other", "item_id": "i6"},
        {"type": "view", "user_id": "lea", "item_id": "i7"},
    ]
    assert private_runtime.ingest.ingest(batch).accepted == len(batch)
    with private_runtime.engine.connect() as conn:
        rows = conn.execute(
            select(events.c.type, events.c.item_id, events.c.user_key, events.c.anon_key)
            .where(events.c.type != "alias")
            .order_by(events.c.offset)
        ).all()
    kept = [(r.item_id, r.user_key, r.anon_key) for r in rows if r.type == "view"]
    # Analytics is stripped once withdrawn (the event stays, nobody's); others are untouched.
    nobody = keys.anon(STRIPPED_ID)
    assert kept == [
        ("i1", None, keys.anon("dev-kim")),
        ("i2", None, keys.anon("dev-other")),
        ("i3", None, nobody),  # kim's linked device, after kim's withdrawal
        ("i4", None, nobody),  # kim, after
        ("i5", None, keys.anon("dev-other")),  # not linked to kim: untouched
        ("i6", None, nobody),  # after its own withdrawal
        ("i7", keys.user("lea"), None),
    ]
