"""Rights of the person: export everything held about them, and erase them.

Export reads every store: the profile (traits decrypted), consent (current and full
history), the person's events from the log (ids shown as the raw ids they were sent with),
plus whatever other stores contribute through ``export_hooks`` (features, segments, …:
``hook(user_id, subject_keys) -> JSON value``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import bindparam, or_, select

from attune.errors import NotFound
from attune.events.timestamps import iso
from attune.privacy.crypto import KeyShredded
from attune.storage.tables import events

ExportHook = Callable[[str, list[str]], Any]


def export_person(runtime: Any, privacy: Any, user_id: str, hooks: dict[str, ExportHook] | None = None) -> dict[str, Any]:
    """Everything held about ``user_id`` as readable JSON; :class:`NotFound` when nothing is."""
    keys = privacy.erasure.subject_keys_of(user_id)
    if not keys:
        raise NotFound(f"nothing is held about user {user_id!r}")
    subject_keys = privacy.subject_keys
    try:
        profile = runtime.profiles.get(user_id).to_dict()
        profile["traits"] = {
            name: _open(privacy, runtime.profiles.canonical_key(user_id), value)
            for name, value in profile["traits"].items()
        }
    except NotFound:
        profile = None
    shown = {k[2:]: subject_keys.display_id(k) for k in keys}
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(events.c.body)
            .where(or_(events.c.user_key.in_(bindparam("k1", expanding=True)),
                       events.c.anon_key.in_(bindparam("k2", expanding=True))))
            .order_by(events.c.offset),
            {"k1": keys, "k2": keys},
        ).scalars().all()
    person_events = []
    for body in rows:
        data = orjson.loads(body)
        if isinstance(data.get("traits"), dict):
            data["traits"] = _open_event_traits(privacy, data)
        for field in ("user_id", "anonymous_id"):
            if data.get(field) in shown:
                data[field] = shown[data[field]]
        for field in ("timestamp", "received_at"):
            if isinstance(data.get(field), float | int):
                data[field] = iso(data[field])
        person_events.append(data)
    canonical = subject_keys.user(user_id)
    out: dict[str, Any] = {
        "user_id": user_id,
        "exported_at": iso(time.time()),
        "identities": sorted(
            ({"id": subject_keys.display_id(k), "kind": "user" if subject_keys.is_user(k) else "anonymous"}
             for k in keys),
            key=lambda d: (d["kind"], d["id"]),
        ),
        "profile": profile,
        "consent": {"current": privacy.consent.current(canonical), "history": privacy.consent.history(keys)},
        "events": person_events,
    }
    for name, hook in (hooks or {}).items():
        out[name] = hook(user_id, keys)
    return out


def _open_event_traits(privacy: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A logged event's traits in clear: sealed under the event's subject (user key, else anonymous key)."""
    from attune.privacy.traits_at_rest import has_sealed_values, open_traits

    traits = data["traits"]
    if not has_sealed_values(traits):
        return traits
    user_id, anonymous_id = data.get("user_id"), data.get("anonymous_id")
    keys = privacy.subject_keys
    subject = keys.user(str(user_id)) if user_id is not None else keys.anon(str(anonymous_id))
    try:
        aead = privacy.person_keys.cipher(subject, create=False)
    except KeyShredded:
        aead = None
    return open_traits(aead, traits)


def _open(privacy: Any, subject_key: str, value: Any) -> Any:
    try:
        return privacy.cipher.open(subject_key, value)
    except KeyShredded:
        return None
