"""The PII scanner's screens (digit counts, clean-string cache, inlined mapping walk) change no
answer: the scanner agrees with the plain scan, which runs every pattern the old way."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from attune.privacy.minimize import _CARD, _EMAIL, _PHONE, PiiScanner, luhn_valid

_SEVEN_DIGITS = re.compile(r"\d(?:\D*+\d){6}")
_MAYBE_PII = re.compile(r"@|%40|\d(?:\D*+\d){6}")


def plain_scrub(scanner: PiiScanner, text: str) -> str:
    """The scan as it was before its screens: a regex screen, then each pattern in turn."""
    if len(text) < 6 or _MAYBE_PII.search(text) is None:
        return text
    if _SEVEN_DIGITS.search(text) is not None:
        text = _CARD.sub(scanner._card_match, text)
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(scanner._email_match, text)
    if _SEVEN_DIGITS.search(text) is not None:
        text = _PHONE.sub(scanner._phone_match, text)
    return text


def plain_value(scanner: PiiScanner, value: Any) -> Any:
    if isinstance(value, str):
        return plain_scrub(scanner, value)
    if isinstance(value, dict):
        return {k: plain_value(scanner, v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(scanner, v) for v in value]
    return value


def luhn_complete(prefix: str) -> str:
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


def grouped(digits: str, size: int, sep: str) -> str:
    return sep.join(digits[i : i + size] for i in range(0, len(digits), size)) if size else digits


# Card numbers of every length a card has (13-19), whole or grouped; phone numbers at the
# fewest digits each form allows.
_cards = st.builds(grouped, st.text("0123456789", min_size=12, max_size=18).map(luhn_complete),
                   st.sampled_from([0, 3, 4, 5, 6]), st.sampled_from([" ", "-"]))
_phones = st.one_of(
    st.builds(lambda n, sep: "+" + sep.join([n[:1], n[1:4], n[4:]]), st.text("0123456789", min_size=7, max_size=9),
              st.sampled_from([" ", "", "-", "."])),
    st.builds(lambda a, b, c, sep: f"{a}{sep}{b}{sep}{c}", st.text("0123456789", min_size=2, max_size=3),
              st.text("0123456789", min_size=3, max_size=3), st.text("0123456789", min_size=3, max_size=4),
              st.sampled_from([" ", "-", "."])),
)
# Digits of several scripts (the patterns' \d is Unicode), separators the patterns care about,
# "@", "%40", letters, and whole e-mail addresses, phone and card numbers.
_pieces = st.one_of(
    st.text(alphabet="0123456789 -.+()@%4a_x/:?=&", max_size=30),
    st.text(alphabet="0123456789\u0663\u0967\uff15 -", max_size=25),
    st.sampled_from([
        "4111 1111 1111 1111", "4111-1111-1111-1112", "5555555555554444", "+49 170 5550123", "(030) 1234 5678",
        "555-123-4567", "a.b@example.com", "x%40mail.de", "call me", "https://shop.test/p/200-12345?ref=mail",
        "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661",
    ]),
    st.text(max_size=12),
    _cards,
    _phones,
)
texts = st.lists(_pieces, max_size=6).map("".join)
scanners = st.sampled_from([
    PiiScanner("remove"),
    PiiScanner("hash", lambda value: "p1." + str(abs(hash(value)) % 10**12).rjust(12, "7")),
])


@settings(max_examples=400)
@given(scanners, texts)
def test_scrub_equals_the_plain_scan(scanner: PiiScanner, text: str) -> None:
    expected = plain_scrub(scanner, text)
    assert scanner.scrub(text) == expected
    assert scanner.scrub(text) == expected  # again: now perhaps from the clean-string cache


json_values = st.recursive(
    st.one_of(texts, st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=200)
@given(scanners, st.dictionaries(st.sampled_from(["url", "q", "n", "title", "x"]), json_values, max_size=5))
def test_scrub_mapping_equals_the_plain_walk(scanner: PiiScanner, mapping: dict) -> None:
    expected = {k: plain_value(scanner, v) for k, v in mapping.items()}
    out = scanner.scrub_mapping(mapping)
    assert out == expected
    assert (out is mapping) == (expected == mapping)  # copy-on-write: the same dict when clean
    only = frozenset({"url", "title"})
    assert scanner.scrub_mapping(mapping, only) == {
        k: plain_value(scanner, v) if k in only else v for k, v in mapping.items()
    }
