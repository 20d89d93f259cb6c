"""Minimization: IP truncation, city-level location, PII scanning, property allowlists."""

from __future__ import annotations

import hmac
import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from attune.events.model import Event
from attune.privacy.minimize import (
    MinimizationPolicy,
    PiiScanner,
    coarsen_geo,
    luhn_valid,
    minimize,
    truncate_ip,
)

REMOVE = PiiScanner("remove")
# Text with no PII: letters, spaces, punctuation and at most two digits in a row.
_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ .,;:!?'()/-_", max_size=30)
plain_text = st.lists(st.one_of(_words, st.integers(0, 99).map(str)), max_size=8).map(" ".join)


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the check digit that makes it pass Luhn."""
    for d in "0123456789":
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError("unreachable")


cards = st.builds(
    lambda first, rest: luhn_complete(first + rest),
    st.sampled_from(["4", "5", "3", "6"]),
    st.text(alphabet="0123456789", min_size=14, max_size=15),
)
emails = st.builds(
    lambda user, domain, tld: f"{user}@{domain}.{tld}",
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=20).filter(
        lambda s: s[0].isalnum()
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=15),
    st.sampled_from(["com", "de", "org", "co", "info"]),
)
phones = st.one_of(
    st.builds(lambda cc, n: f"+{cc} {n[:3]} {n[3:]}", st.integers(1, 99), st.text("0123456789", min_size=7, max_size=10)),
    st.builds(lambda a, b, c: f"({a}) {b}-{c}", st.text("0123456789", min_size=3, max_size=3),
              st.text("0123456789", min_size=3, max_size=3), st.text("0123456789", min_size=4, max_size=4)),
)


@given(plain_text, emails, plain_text)
def test_embedded_email_is_removed(before: str, email: str, after: str) -> None:
    out = REMOVE.scrub(f"{before} {email} {after}")
    assert email not in out and "@" not in out
    assert "[email]" in out


@given(plain_text, cards, plain_text, st.sampled_from(["", " ", "-"]))
def test_embedded_card_is_removed(before: str, card: str, after: str, sep: str) -> None:
    grouped = sep.join(card[i : i + 4] for i in range(0, len(card), 4))
    out = REMOVE.scrub(f"{before} {grouped} {after}")
    assert grouped not in out and card not in out.replace(" ", "").replace("-", "")
    assert "[card]" in out


@given(plain_text, phones, plain_text)
def test_embedded_phone_is_removed(before: str, phone: str, after: str) -> None:
    out = REMOVE.scrub(f"{before} {phone} {after}")
    assert phone not in out
    assert "[phone]" in out or "[card]" in out  # digits next to a phone may also pass Luhn


@given(plain_text)
def test_text_without_pii_is_unchanged(text: str) -> None:
    assert REMOVE.scrub(text) == text


def test_digit_runs_failing_luhn_are_not_cards() -> None:
    number = "4111111111111112"  # the Visa test number with a wrong check digit
    assert not luhn_valid(number)
    assert REMOVE.scrub(f"order {number}") == f"order {number}"
    assert REMOVE.scrub("order 4111111111111111") == "order [card]"


def test_hash_action_is_keyed_and_stable() -> None:
    key = b"k" * 32
    scanner = PiiScanner("hash", lambda v: hmac.new(key, v.encode(), "sha256").hexdigest()[:16])
    a = scanner.scrub("mail Ann@Example.com now")
    b = scanner.scrub("write to ann@example.com")
    assert "ann" not in a.lower() and a.startswith("mail [email:") and a.endswith("] now")
    assert a.split()[1] == b.split()[2]  # same address (any case), same hash: countable, not readable


@given(st.ip_addresses(v=4))
def test_ipv4_truncated_to_24(ip: ipaddress.IPv4Address) -> None:
    out = ipaddress.ip_address(truncate_ip(str(ip)))
    assert out == ipaddress.ip_network(f"{ip}/24", strict=False).network_address
    assert int(out) & 0xFF == 0


@given(st.ip_addresses(v=6))
def test_ipv6_truncated_to_48(ip: ipaddress.IPv6Address) -> None:
    out = truncate_ip(str(ip))
    if ip.ipv4_mapped is not None:
        assert out == truncate_ip(str(ip.ipv4_mapped))
    else:
        assert int(ipaddress.ip_address(out)) & ((1 << 80) - 1) == 0
        assert int(ipaddress.ip_address(out)) >> 80 == int(ip) >> 80


def test_unparsable_ip_is_dropped() -> None:
    assert truncate_ip("1.2.3.4, 5.6.7.8") is None
    assert truncate_ip(1234) is None
    event = minimize({"type": "view", "context": {"ip": "not an ip"}}, MinimizationPolicy())
    assert "ip" not in event["context"]


def test_location_is_coarsened_to_city() -> None:
    geo = {"country": "DE", "city": "Berlin", "latitude": 52.52, "longitude": 13.40, "lat": 1, "lng": 2,
           "postal_code": "10115", "zip": "10115", "street": "Unter den Linden 1", "region": "BE"}
    assert coarsen_geo(geo) == {"country": "DE", "city": "Berlin", "region": "BE"}


def make_event(**kw) -> Event:
    base = dict(event_id="e1", type="view", timestamp=1.7e9, received_at=1.7e9, user_id="u1")
    base.update(kw)
    return Event(**base)


def test_minimize_event_is_pure_and_complete() -> None:
    event = make_event(
        context={"ip": "203.0.113.77", "geo": {"city": "Paris", "country": "FR", "lat": 48.85},
                 "location": {"city": "Paris", "postalCode": "75001"},
                 "page": {"url": "https://x.test/?email=bob%40mail.example.org"}},
        properties={"comment": "call me at +49 170 1234567 or bob@mail.example.org", "n": 3,
                    "nested": [{"card": "4111 1111 1111 1111"}]},
    )
    out = minimize(event, MinimizationPolicy())
    assert event.context["ip"] == "203.0.113.77"  # input untouched
    assert out.context["ip"] == "203.0.113.0"
    assert out.context["geo"] == {"city": "Paris", "country": "FR"}
    assert out.context["location"] == {"city": "Paris"}
    assert "bob" not in str(out.context["page"]) and "[email]" in out.context["page"]["url"]
    assert out.properties == {"comment": "call me at [phone] or [email]", "n": 3, "nested": [{"card": "[card]"}]}
    # the dict form gives the same answer
    assert minimize(event.to_dict(), MinimizationPolicy())["properties"] == out.properties


def test_property_allowlist_per_event_type() -> None:
    policy = MinimizationPolicy(property_allowlist={"view": frozenset({"category"}), "alias": frozenset()})
    view = minimize(make_event(properties={"category": "drama", "free_text": "x"}), policy)
    assert view.properties == {"category": "drama"}
    alias = minimize(make_event(type="alias", properties={"previous_id": "a1", "x": 1}), policy)
    assert alias.properties == {"previous_id": "a1"}  # structural fields survive
    other = minimize(make_event(type="click", properties={"a": 1, "b": 2}), policy)
    assert other.properties == {"a": 1, "b": 2}


@settings(max_examples=50)
@given(st.recursive(st.one_of(plain_text, st.integers(), st.booleans(), st.none()),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=10))
def test_properties_without_pii_survive(value) -> None:
    out = minimize(make_event(properties={"v": value}), MinimizationPolicy())
    assert out.properties == {"v": value}
