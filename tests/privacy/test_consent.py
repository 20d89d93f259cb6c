"""Consent: defaults by mode, decisions and history, linked ids, instant withdrawal, enforcement."""

from __future__ import annotations

import pytest

from attune.errors import ValidationFailed
from attune.events.model import Event
from attune.privacy.consent import ConsentService, consent_changes
from attune.privacy.enforcement import STRIPPED_ID, Decision, decide, strip
from attune.profiles.identity import SubjectKeys
from attune.settings import PrivacySettings


def test_defaults_follow_the_modes(runtime) -> None:
    service = ConsentService(runtime.engine, PrivacySettings(), runtime.subject_keys)
    assert service.allows("u:x", "analytics") and service.allows("u:x", "personalization")
    assert not service.allows("u:x", "marketing")  # marketing is opt-in by default
    strict = ConsentService(runtime.engine, PrivacySettings(consent_mode="opt-in", purpose_modes={}),
                            runtime.subject_keys)
    assert not any(strict.allows("u:x", p) for p in ("analytics", "personalization", "marketing"))


def test_set_withdraw_and_history(runtime) -> None:
    service = ConsentService(runtime.engine, PrivacySettings(consent_cache_seconds=3600), runtime.subject_keys)
    service.set("u1", {"marketing": "granted", "personalization": "granted"}, "banner", at=100.0)
    assert service.allows("u:u1", "marketing")
    service.set("u1", {"marketing": "withdrawn"}, "settings-page", at=200.0)
    # The cache is long-lived, yet the withdrawal is seen at once.
    assert not service.allows("u:u1", "marketing") and service.allows("u:u1", "personalization")
    history = service.history(["u:u1"])
    assert [(h["purpose"], h["state"], h["source"]) for h in history] == [
        ("marketing", "granted", "banner"), ("personalization", "granted", "banner"),
        ("marketing", "withdrawn", "settings-page"),
    ]
    current = service.current("u:u1")
    assert current["marketing"]["state"] == "withdrawn" and current["marketing"]["source"] == "settings-page"
    assert current["analytics"] == {"state": "granted", "source": "default", "at": None}


def test_user_consent_covers_linked_anonymous_ids(runtime) -> None:
    runtime.ingest.ingest([{"type": "identify", "user_id": "u1", "anonymous_id": "d1"}])
    runtime.catch_up()
    service = ConsentService(runtime.engine, PrivacySettings(), runtime.subject_keys)
    service.set("u1", {"personalization": "denied"}, "banner")
    assert not service.allows("a:d1", "personalization")
    assert service.allows("a:d2", "personalization")


def test_bad_consent_is_refused_with_every_reason(runtime) -> None:
    service = ConsentService(runtime.engine, PrivacySettings(), runtime.subject_keys)
    with pytest.raises(ValidationFailed) as err:
        service.set("u1", {"marketing": "maybe", "spam": "granted"}, "x")
    assert sorted(err.value.errors) == [
        "purposes.marketing: state must be one of granted, denied, withdrawn",
        "purposes.spam: unknown purpose; use analytics, marketing, personalization",
    ]
    with pytest.raises(ValidationFailed):
        service.set("u1", {}, "x")
    with pytest.raises(ValidationFailed):
        service.set("u1", {"marketing": "granted"}, "")


def event(**kw) -> Event:
    base = dict(event_id="e", type="view", timestamp=50.0, received_at=50.0, anonymous_id="d1")
    base.update(kw)
    return Event(**base)


def test_consent_event_becomes_changes() -> None:
    changes = consent_changes(
        event(type="consent", properties={"purposes": {"analytics": "denied"}, "source": "banner"}),
        SubjectKeys(), ["analytics", "marketing"],
    )
    assert [(c.subject_key, c.purpose, c.state, c.source, c.at) for c in changes] == [
        ("a:d1", "analytics", "denied", "banner", 50.0)
    ]
    assert consent_changes(event(), SubjectKeys(), ["analytics"]) == []
    with pytest.raises(ValidationFailed):
        consent_changes(event(type="consent", properties={"purposes": "yes"}), SubjectKeys(), ["analytics"])


@pytest.mark.parametrize(
    ("granted", "actions", "expected"),
    [
        ({"analytics"}, {"analytics": "drop"}, Decision.KEEP),
        (set(), {"analytics": "strip"}, Decision.STRIP),
        (set(), {"analytics": "drop"}, Decision.DROP),
    ],
)
def test_decide(granted, actions, expected) -> None:
    purposes = {"*": ["analytics"], "consent": []}
    assert decide(event(), lambda p: p in granted, purposes, actions) is expected
    assert decide(event(type="consent"), lambda p: False, purposes, actions) is Decision.KEEP


def test_strip_removes_the_person() -> None:
    e = event(user_id="u1", session_id="s", traits={"a": 1}, item_id="i1", value=2.0,
              context={"ip": "1.2.3.4", "device": {"type": "mobile", "model": "X"}, "source": "web"},
              properties={"q": "me"})
    out = strip(e)
    assert (out.user_id, out.anonymous_id, out.session_id, out.traits, out.properties) == (None, STRIPPED_ID, None, None, {})
    assert out.context == {"source": "web", "device": {"type": "mobile"}}
    assert (out.item_id, out.value, out.type) == ("i1", 2.0, "view")
