"""attune.synth.generate: determinism, sizes, event shape, time, sessions and identity."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from attune.synth import (
    BLOCK_USERS,
    CATEGORIES,
    DEFAULT_END,
    DEVICES,
    SEGMENTS,
    SyntheticData,
    generate,
    iter_blocks,
    iter_events,
)
from attune.synth.population import CITIES
from attune.synth.vocabulary import NOUNS

N_USERS, N_ITEMS, SEED = 600, 300, 11
DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
ITEM_TYPES = {"view", "click", "add_to_cart", "purchase", "rating"}


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(seed=SEED, n_users=N_USERS, n_items=N_ITEMS)


@pytest.fixture(scope="module")
def events(data: SyntheticData) -> list[dict[str, Any]]:
    return data.events


def ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_identical_events_items_users_and_truth() -> None:
    a = generate(seed=5, n_users=120, n_items=60)
    b = generate(seed=5, n_users=120, n_items=60)
    assert a.events == b.events
    assert a.items == b.items
    assert a.users == b.users
    assert a.truth.to_dict() == b.truth.to_dict()


def test_different_seed_gives_different_data() -> None:
    a = generate(seed=5, n_users=120, n_items=60)
    b = generate(seed=6, n_users=120, n_items=60)
    assert [e["timestamp"] for e in a.events] != [e["timestamp"] for e in b.events]
    assert [i["title"] for i in a.items] != [i["title"] for i in b.items]
    assert a.truth.segment_of != b.truth.segment_of


def test_default_end_is_fixed_not_the_wall_clock(data: SyntheticData) -> None:
    assert data.end == DEFAULT_END == datetime(2026, 11, 1, tzinfo=UTC)
    assert data.start == DEFAULT_END - timedelta(days=28)


def test_iter_events_streams_the_same_events() -> None:
    assert (
        list(iter_events(seed=3, n_users=80, n_items=40)) == generate(seed=3, n_users=80, n_items=40).events
    )


def test_blocks_reproduce_the_users_and_behaviour_of_generate() -> None:
    n_users = BLOCK_USERS + 40  # two blocks, the second one partial
    whole = generate(seed=9, n_users=n_users, n_items=50, days=4)
    blocks = list(iter_blocks(seed=9, n_users=n_users, n_items=50, days=4))
    assert [len(b.population) for b in blocks] == [BLOCK_USERS, 40]

    def rows(d: SyntheticData) -> set[tuple[str, int, int, int]]:
        t = d.table
        users = np.asarray(d.population.user_ids)[t.user]
        return set(zip(users.tolist(), t.type.tolist(), t.item.tolist(), t.timestamp.tolist(), strict=True))

    assert rows(whole) == rows(blocks[0]) | rows(blocks[1])
    ids = [blocks[0].events[-1]["event_id"], blocks[1].events[0]["event_id"]]
    assert ids == [f"syn-9-{blocks[0].n_events - 1}", f"syn-9-{blocks[0].n_events}"]


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate(n_users=0)
    with pytest.raises(ValueError):
        generate(n_items=3)
    with pytest.raises(ValueError):
        generate(anonymous_share=1.5)
    with pytest.raises(ValueError):
        generate(seed=-1)


# --- sizes, items, users ---------------------------------------------------------------------


def test_sizes_and_ids(data: SyntheticData) -> None:
    assert len(data.items) == N_ITEMS and len(data.users) == N_USERS
    assert [i["item_id"] for i in data.items[:2]] == ["i00001", "i00002"]
    assert [u["user_id"] for u in data.users[:2]] == ["u00001", "u00002"]
    assert len({u["user_id"] for u in data.users}) == N_USERS
    assert set(data.truth.segment_of) == {u["user_id"] for u in data.users}
    counts = data.truth.segment_counts()
    assert counts == {
        "casual": 300,
        "drama_fans": 90,
        "big_spenders": 60,
        "mobile_browsers": 60,
        "churned": 90,
    }
    assert 20 * N_USERS < data.n_events < 200 * N_USERS


def test_items_have_consistent_attributes(data: SyntheticData) -> None:
    items = data.items
    assert {i["category"] for i in items} == set(CATEGORIES)
    for item in items:
        genres = item["genres"].split("|")
        assert genres[0] == item["category"] and len(set(genres)) == len(genres)
        assert set(genres) <= set(CATEGORIES)
        assert isinstance(item["price"], float) and 1.0 < item["price"] < 100.0
        assert item["title"] and item["description"].count(".") >= 2
    available = sum(i["available"] for i in items) / len(items)
    assert 0.88 < available < 1.0
    popularity = sorted((i["popularity"] for i in items), reverse=True)
    assert abs(sum(popularity) - 1.0) < 1e-9
    # Zipf-like: the top 5 % of items hold far more than 5 % of the mass.
    assert sum(popularity[: len(items) // 20]) > 0.3


def test_descriptions_reveal_the_category(data: SyntheticData) -> None:
    hits = 0
    for item in data.items:
        words = Counter(re.findall(r"[a-z_]+", item["description"].lower()))
        scores = {cat: sum(words[w] for w in NOUNS[cat]) for cat in CATEGORIES}
        hits += max(scores, key=scores.__getitem__) == item["category"]
    assert hits == len(data.items)


def test_users_have_plausible_demographics(data: SyntheticData) -> None:
    places = {(country, city) for country, city, _, _ in CITIES}
    for user in data.users:
        assert 18 <= user["age"] <= 75
        assert (user["country"], user["city"]) in places
        assert user["device"] in DEVICES
        assert user["gender"] in {"female", "male", "non_binary"}
    taste = data.population.taste
    assert np.allclose(taste.sum(axis=1), 1.0)
    # Taste is concentrated: the favourites hold most of it.
    for row, favourites in enumerate(data.population.favourites[:100]):
        assert taste[row, list(favourites)].sum() >= 0.7


# --- event shape -----------------------------------------------------------------------------


def test_every_event_has_a_person_and_valid_shape(data: SyntheticData, events: list[dict[str, Any]]) -> None:
    prices = {i["item_id"]: i["price"] for i in data.items}
    seen_ids = set()
    for n, event in enumerate(events):
        assert event["event_id"] == f"syn-{SEED}-{n}"
        seen_ids.add(event["event_id"])
        assert event.get("user_id") or event.get("anonymous_id")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["timestamp"])
        ctx = event["context"]
        assert set(ctx) == {"device", "ip", "user_agent", "geo", "page", "session_id"}
        assert any(ipaddress.ip_address(ctx["ip"]) in net for net in DOC_NETS)
        assert ctx["page"]["url"].startswith("https://shop.example/")
        kind = event["type"]
        assert ("traits" in event) == (kind == "identify")
        assert ("item_id" in event) == (kind in ITEM_TYPES)
        if kind in {"view", "click", "add_to_cart", "rating"}:
            assert ctx["page"]["url"] == f"https://shop.example/items/{event['item_id']}"
        if kind == "purchase":
            assert event["value"] == event["properties"]["price"] == prices[event["item_id"]]
        elif kind == "rating":
            assert event["value"] in {1.0, 2.0, 3.0, 4.0, 5.0}
        else:
            assert "value" not in event
        if kind == "search":
            assert event["properties"]["query"]
    assert len(seen_ids) == len(events)


def test_user_agent_matches_the_device(events: list[dict[str, Any]]) -> None:
    hints = {
        "mobile": ("iPhone", "Mobile Safari/537"),
        "tablet": ("iPad", "SM-X"),
        "desktop": ("Windows", "Mac", "X11"),
    }
    for event in events[:5000]:
        device = event["context"]["device"]["type"]
        assert any(h in event["context"]["user_agent"] for h in hints[device]), event["context"]


def test_traits_carry_demographics_but_no_contact_data(
    data: SyntheticData, events: list[dict[str, Any]]
) -> None:
    users = {u["user_id"]: u for u in data.users}
    for event in events:
        if event["type"] == "identify":
            traits = event["traits"]
            assert set(traits) == {"age", "gender", "country", "city"}
            user = users[event["user_id"]]
            assert [traits[k] for k in ("age", "gender", "country", "city")] == [
                user["age"],
                user["gender"],
                user["country"],
                user["city"],
            ]


# --- time and sessions -----------------------------------------------------------------------


def test_timestamps_sorted_and_inside_the_period(data: SyntheticData, events: list[dict[str, Any]]) -> None:
    times = [ts(e) for e in events]
    assert times == sorted(times)
    assert data.start.timestamp() <= times[0] and times[-1] < data.end.timestamp()


def test_custom_end_moves_the_period() -> None:
    end = datetime(2025, 3, 10, 17, 45, 12)  # naive: read as UTC
    d = generate(seed=2, n_users=60, n_items=30, days=7, end=end)
    times = [ts(e) for e in d.events]
    assert end.replace(tzinfo=UTC).timestamp() - 7 * 86400 <= min(times)
    assert max(times) < end.replace(tzinfo=UTC).timestamp()


def test_sessions_are_compact_ordered_and_apart(events: list[dict[str, Any]]) -> None:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        sessions[event["context"]["session_id"]].append(event)
    by_person: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for session in sessions.values():
        assert len({e["anonymous_id"] for e in session}) == 1
        times = [ts(e) for e in session]
        assert all(b > a for a, b in pairwise(times))  # strictly increasing
        assert times[-1] - times[0] < 3600
        by_person[session[0]["anonymous_id"]].append((times[0], times[-1]))
    for spans in by_person.values():
        spans.sort()
        for (_, last), (first, _) in pairwise(spans):
            assert first - last > 30 * 60


def test_activity_follows_the_local_clock(data: SyntheticData) -> None:
    t = data.table
    first = np.unique(t.session, return_index=True)[1]
    offsets = np.asarray([c[2] for c in CITIES])[data.population.city[t.user[first]]]
    local_hour = ((t.timestamp[first] // 3600) + offsets) % 24
    night = np.isin(local_hour, [2, 3, 4, 5]).mean()
    evening = np.isin(local_hour, [18, 19, 20, 21]).mean()
    assert night < 0.06 and evening > 0.25


def test_funnel_narrows(events: list[dict[str, Any]]) -> None:
    counts = Counter(e["type"] for e in events)
    assert counts["view"] > counts["click"] > counts["add_to_cart"] > counts["purchase"] > 0
    assert 0.2 < counts["click"] / counts["view"] < 0.5
    assert counts["page_view"] > 0 and counts["search"] > 0 and counts["rating"] > 0


# --- identity --------------------------------------------------------------------------------


def test_identify_links_anonymous_ids_to_users(data: SyntheticData, events: list[dict[str, Any]]) -> None:
    identifies = [e for e in events if e["type"] == "identify"]
    assert sorted(e["user_id"] for e in identifies) == sorted(data.truth.segment_of)  # one each
    link = {e["anonymous_id"]: e["user_id"] for e in identifies}
    assert link == {a: u for u, a in data.truth.anonymous_id_of.items()}

    identified_at = {e["user_id"]: ts(e) for e in identifies}
    anonymous_users = set()
    for event in events:
        owner = link[event["anonymous_id"]]
        if "user_id" in event:
            assert event["user_id"] == owner and ts(event) >= identified_at[owner]
        else:
            assert ts(event) < identified_at[owner]  # anonymous only before identifying
            anonymous_users.add(owner)
    expected = {u for u, n in data.truth.anonymous_sessions.items() if n > 0}
    assert anonymous_users == expected
    assert 0.2 < len(expected) / N_USERS <= 0.3


def test_no_anonymous_sessions_when_share_is_zero() -> None:
    d = generate(seed=4, n_users=100, n_items=40, anonymous_share=0.0)
    assert all("user_id" in e for e in d.events)


def test_segments_are_listed_with_rules(data: SyntheticData) -> None:
    assert set(data.truth.rules) == set(SEGMENTS)
    assert all(data.truth.favourites[u] for u in data.truth.segment_of)
