"""Server-side enrichment: device from the user agent, sessions when the client sends none."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attune.events.enrich import Enricher, SessionTracker, device_from_user_agent
from attune.events.model import Event

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"
# A real phone brand whose name contains "bot".
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT X20 PRO) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "kind", "os_family"),
    [
        (IPHONE, "mobile", "iOS"),
        (ANDROID_PHONE, "mobile", "Android"),
        (ANDROID_TABLET, "tablet", "Android"),
        (IPAD, "tablet", "iOS"),
        (WINDOWS, "desktop", "Windows"),
        (MAC, "desktop", "Mac OS X"),
        (GOOGLEBOT, "bot", "Other"),
        (HEADLESS, "bot", "Linux"),
        (CUBOT_PHONE, "mobile", "Android"),
        ("???", "other", "Other"),
    ],
)
def test_device_type_from_user_agent(user_agent: str, kind: str, os_family: str) -> None:
    device = device_from_user_agent(user_agent)
    assert device["type"] == kind
    assert device["os"] == os_family


def test_browser_family_is_reported() -> None:
    assert device_from_user_agent(WINDOWS)["browser"] == "Chrome"
    assert device_from_user_agent(IPHONE)["browser"] == "Mobile Safari"


def event(ts: float, *, user_id: str | None = "u1", anonymous_id: str | None = None, **kwargs) -> Event:
    return Event(
        event_id=f"e{ts}",
        type="view",
        timestamp=ts,
        received_at=ts,
        user_id=user_id,
        anonymous_id=anonymous_id,
        **kwargs,
    )


@pytest.fixture
def enricher() -> Enricher:
    return Enricher(SessionTracker(timeout=1800))


def test_sessions_are_stable_within_the_timeout(enricher: Enricher) -> None:
    t0 = 1_700_000_000.0
    ids = [enricher.enrich(event(t0 + offset)).session_id for offset in (0, 600, 1200, 1200 + 1799)]
    assert ids[0] is not None and len(set(ids)) == 1


def test_a_new_session_starts_after_inactivity(enricher: Enricher) -> None:
    t0 = 1_700_000_000.0
    first = enricher.enrich(event(t0)).session_id
    second = enricher.enrich(event(t0 + 1801)).session_id
    third = enricher.enrich(event(t0 + 1801 + 60)).session_id
    assert first != second
    assert second == third


def test_people_have_separate_sessions(enricher: Enricher) -> None:
    t0 = 1_700_000_000.0
    mine = enricher.enrich(event(t0, user_id="u1")).session_id
    theirs = enricher.enrich(event(t0, user_id=None, anonymous_id="d2")).session_id
    assert mine != theirs


def test_two_trackers_agree_on_session_ids() -> None:
    # The id derives from person and start time, so separate processes assign the same one.
    t0 = 1_700_000_000.0
    assert SessionTracker(1800).assign("u1", t0) == SessionTracker(1800).assign("u1", t0)


def test_client_session_id_is_kept(enricher: Enricher) -> None:
    enriched = enricher.enrich(event(1_700_000_000.0, session_id="client-s1"))
    assert enriched.session_id == "client-s1"


def test_device_fields_sent_by_the_client_win(enricher: Enricher) -> None:
    enriched = enricher.enrich(
        event(1_700_000_000.0, context={"user_agent": IPHONE, "device": {"type": "tv", "model": "X"}})
    )
    assert enriched.context["device"] == {"type": "tv", "os": "iOS", "browser": "Mobile Safari", "model": "X"}


def test_tracker_memory_is_bounded() -> None:
    tracker = SessionTracker(1800, max_people=3)
    for person in ("a", "b", "c", "d"):
        tracker.assign(person, 1_700_000_000.0)
    assert len(tracker._last) == 3


class ReferenceTracker:
    """The session rules written plainly (as SessionTracker first was), to compare against."""

    def __init__(self, timeout: float, max_people: int) -> None:
        self.timeout = timeout
        self.max_people = max_people
        self._last: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def assign(self, person: str, ts: float) -> str:
        current = self._last.get(person)
        if current is not None and abs(ts - current[1]) <= self.timeout:
            session_id = current[0]
            last = max(ts, current[1])
        else:
            session_id = hashlib.blake2b(f"{person}|{ts:.3f}".encode(), digest_size=10).hexdigest()
            last = ts
        self._last[person] = (session_id, last)
        self._last.move_to_end(person)
        if len(self._last) > self.max_people:
            self._last.popitem(last=False)
        return session_id


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 40).map(lambda m: 1.7e9 + m * 300.0)
        ),
        max_size=60,
    ),
    st.integers(1, 6),
)
def test_tracker_follows_the_reference_rules(activity: list[tuple[str, float]], max_people: int) -> None:
    tracker = SessionTracker(1800, max_people=max_people)
    reference = ReferenceTracker(1800, max_people)
    for person, ts in activity:
        assert tracker.assign(person, ts) == reference.assign(person, ts)
    assert list(tracker._last.items()) == list(reference._last.items())  # same people, same order


def test_device_is_a_fresh_dict_per_event(enricher: Enricher) -> None:
    first = enricher.enrich(event(1_700_000_000.0, context={"user_agent": IPHONE}))
    first.context["device"]["type"] = "changed"
    second = enricher.enrich(event(1_700_000_001.0, context={"user_agent": IPHONE}))
    assert second.context["device"] == device_from_user_agent(IPHONE)
    assert second.context["device"]["type"] == "mobile"


def test_long_user_agents_are_parsed_from_their_first_kilobyte(enricher: Enricher) -> None:
    long_agent = IPHONE + " x" * 1000
    enriched = enricher.enrich(event(1_700_000_000.0, context={"user_agent": long_agent}))
    assert enriched.context["device"] == device_from_user_agent(long_agent[:1024])


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(min_value=0, max_value=10_000)), max_size=40))
def test_assigning_a_batch_equals_assigning_one_at_a_time(activity: list[tuple[str, float]]) -> None:
    one, batch = SessionTracker(1800, max_people=2), SessionTracker(1800, max_people=2)
    assert batch.assign_many(activity) == [one.assign(person, ts) for person, ts in activity]


def test_enriching_a_batch_equals_enriching_each_event() -> None:
    def events() -> list[Event]:
        return [
            Event(event_id=f"e{i}", type="view", timestamp=1_000.0 + 900 * i, received_at=0.0,
                  user_id="u1" if i % 2 else None, anonymous_id="d1",
                  context={"user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"},
                  session_id="given" if i == 3 else None)
            for i in range(8)
        ]

    tracker_one, tracker_batch = SessionTracker(1800), SessionTracker(1800)
    one = [Enricher(tracker_one).enrich(e) for e in events()]
    batch = Enricher(tracker_batch).enrich_many(events())
    assert [(e.session_id, e.context) for e in batch] == [(e.session_id, e.context) for e in one]
    assert batch[3].session_id == "given"
