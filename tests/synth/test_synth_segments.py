"""attune.synth: the planted segments can be recovered from the events by their rules."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from attune.synth import SEGMENTS, SyntheticData, generate, recover_segments

N_USERS = 600


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(seed=23, n_users=N_USERS, n_items=300)


@pytest.fixture(scope="module")
def per_user(data: SyntheticData) -> dict[str, list[dict[str, Any]]]:
    """Each user's events, anonymous ones attributed through identify links."""
    owner = {e["anonymous_id"]: e["user_id"] for e in data.events if e["type"] == "identify"}
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in data.events:
        out[owner[event["anonymous_id"]]].append(event)
    return out


def of(data: SyntheticData, segment: str) -> set[str]:
    return data.truth.users_in(segment)


@pytest.mark.parametrize("seed", [23, 101])
def test_documented_rules_recover_every_segment(seed: int) -> None:
    d = generate(seed=seed, n_users=N_USERS, n_items=300)
    category = {i["item_id"]: i["category"] for i in d.items}
    found = recover_segments(d.iter_events(), category, d.truth.thresholds)
    assert set(found) == set(d.truth.segment_of)
    for segment in SEGMENTS:
        predicted = {u for u, s in found.items() if s == segment}
        planted = d.truth.users_in(segment)
        hits = len(predicted & planted)
        assert hits / len(predicted) >= 0.9, (segment, "precision")
        assert hits / len(planted) >= 0.9, (segment, "recall")


def test_drama_fans_watch_mostly_drama(
    data: SyntheticData, per_user: dict[str, list[dict[str, Any]]]
) -> None:
    category = {i["item_id"]: i["category"] for i in data.items}

    def drama_share(user: str) -> float:
        views = [e for e in per_user[user] if e["type"] == "view"]
        return sum(category[e["item_id"]] == "drama" for e in views) / len(views)

    fans = [drama_share(u) for u in of(data, "drama_fans")]
    others = [drama_share(u) for u in set(data.truth.segment_of) - of(data, "drama_fans")]
    assert np.mean(fans) > 0.65 and np.mean(others) < 0.2
    # With as many views as the rule asks for, the 50 % line separates fans from everyone else.
    enough = data.truth.thresholds.min_drama_views
    heavy_others = [
        drama_share(u)
        for u in set(data.truth.segment_of) - of(data, "drama_fans")
        if sum(e["type"] == "view" for e in per_user[u]) >= enough
    ]
    assert min(fans) > 0.5 > max(heavy_others)
    assert all(data.truth.favourites[u][0] == "drama" for u in of(data, "drama_fans"))


def test_churned_users_stop_at_the_midpoint(
    data: SyntheticData, per_user: dict[str, list[dict[str, Any]]]
) -> None:
    midpoint = data.truth.midpoint.timestamp()
    for user, events in per_user.items():
        last = max(datetime.fromisoformat(e["timestamp"]).timestamp() for e in events)
        assert (last < midpoint) == (user in of(data, "churned")), user


def test_mobile_browsers_browse_on_phones_and_never_buy(
    data: SyntheticData, per_user: dict[str, list[dict[str, Any]]]
) -> None:
    for user in of(data, "mobile_browsers"):
        events = per_user[user]
        assert {e["context"]["device"]["type"] for e in events} == {"mobile"}
        assert not any(e["type"] == "purchase" for e in events)
    views = {u: sum(e["type"] == "view" for e in per_user[u]) for u in data.truth.segment_of}
    assert np.median([views[u] for u in of(data, "mobile_browsers")]) > 3 * np.median(
        [views[u] for u in of(data, "casual")]
    )


def test_big_spenders_buy_more_and_dearer(
    data: SyntheticData, per_user: dict[str, list[dict[str, Any]]]
) -> None:
    def spend(user: str) -> tuple[int, float]:
        values = [e["value"] for e in per_user[user] if e["type"] == "purchase"]
        return len(values), sum(values)

    big = [spend(u) for u in of(data, "big_spenders")]
    casual = [spend(u) for u in of(data, "casual")]
    assert np.mean([n for n, _ in big]) > 4 * np.mean([n for n, _ in casual])
    assert np.mean([v for _, v in big]) > 5 * np.mean([v for _, v in casual])
    # Dearer items, not only more of them.
    assert sum(v for _, v in big) / sum(n for n, _ in big) > sum(v for _, v in casual) / sum(
        n for n, _ in casual
    )


def test_ratings_follow_taste(data: SyntheticData, per_user: dict[str, list[dict[str, Any]]]) -> None:
    category = {i["item_id"]: i["category"] for i in data.items}
    liked, disliked = [], []
    for user, events in per_user.items():
        main = data.truth.favourites[user][0]
        for e in events:
            if e["type"] == "rating":
                (liked if category[e["item_id"]] == main else disliked).append(e["value"])
    assert np.mean(liked) - np.mean(disliked) > 1.5
