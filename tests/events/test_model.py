"""The domain event's dict form."""

from __future__ import annotations

from attune.events.model import Event


def test_to_dict_omits_empty_fields_and_round_trips() -> None:
    bare = Event(event_id="e1", type="view", timestamp=1.0, received_at=2.0, anonymous_id="d1")
    assert bare.to_dict() == {
        "event_id": "e1",
        "type": "view",
        "timestamp": 1.0,
        "received_at": 2.0,
        "anonymous_id": "d1",
    }
    full = Event(
        event_id="e2",
        type="identify",
        timestamp=1.0,
        received_at=2.0,
        user_id="u1",
        anonymous_id="d1",
        item_id="i1",
        value=0.0,
        session_id="s1",
        context={"ip": "1.2.3.4"},
        properties={"p": [1, 2]},
        traits={"plan": "pro"},
    )
    assert full.to_dict()["value"] == 0.0  # zero is a value, not an absent one
    assert Event.from_dict(full.to_dict()) == full
    assert Event.from_dict(bare.to_dict()) == bare
