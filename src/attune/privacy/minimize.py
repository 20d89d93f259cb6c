"""Data minimization: what is kept of an event before it is stored.

* IP addresses are truncated: IPv4 to its /24 network, IPv6 to its /48 (an address that
  cannot be parsed is dropped, since nothing can be said about what it reveals).
* Location is coarsened to city: of ``context.geo`` / ``context.location`` only country,
  region, city and time zone are kept (latitude/longitude, postal code, street are dropped).
* Free text (every string in ``properties``, and page URLs/referrers) is scanned for e-mail
  addresses, phone numbers and payment card numbers (Luhn-checked), which are removed or
  replaced by a keyed hash, as configured.
* An optional allowlist per event type keeps only the named top-level properties.

Everything here is a pure function: the input event is never changed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from attune.events.model import Event

#: Page fields that are free text (scanned); the rest are structural.
_PAGE_TEXT = frozenset({"url", "referrer", "search", "title", "path"})
#: Location fields kept: enough for city-level personalization, nothing finer.
GEO_KEPT = frozenset({"country", "country_code", "region", "region_code", "city", "timezone", "continent"})
#: Properties an allowlist always keeps: the event cannot be processed without them.
_STRUCTURAL = {"alias": {"previous_id"}, "consent": {"purposes", "source"}}

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Runs of 13+ digits, optionally grouped by single spaces or dashes; card spans are found inside.
_CARD = re.compile(r"(?<![\d])\d(?:[ \-]?\d){12,}(?![\d])")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d(?:[\s.\-]?\(?\d\)?){6,14}"  # international: +CC followed by 7-15 digits in all
    r"|\(?\d{2,5}\)?[\s.\-]\d{3,4}[\s.\-]\d{3,5}"  # grouped national form: (030) 1234 5678, 555-123-4567
    r")(?![\w])"
)
# Screen before the full patterns: a phone number has at least 7 digits (both forms of
# _PHONE: "+" and 7-15 digits, or 2+3+3), a card number 13 (_CARD's run), an e-mail address
# an "@" (or "%40"); most values have neither and skip the patterns that cannot match.
_PHONE_DIGITS = 7
_CARD_DIGITS = 13
_ASCII_DIGITS = b"0123456789"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
#: A dotted quad; group 1 is its first three octets (the /24 network without its ".0").
_IPV4 = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET})\.{_OCTET}", re.ASCII)
_SCALARS = (str, int, float, bool, type(None))
#: Strings known to hold no PII, remembered so repeated values (categories, page URLs) are
#: scanned once. Only clean strings are kept: nothing personal is cached.
_CLEAN_CACHE_SIZE = 50_000
_NON_DIGITS = re.compile(r"\D")
_DIGIT_RUNS = re.compile(r"\d+")
#: No e-mail address ("a@b.cd") nor 7-digit number fits in fewer characters.
_SHORTEST_PII = 6

#: Value types that hold no text (exact types: scrub_value returns them as they are).
_NOTHING_TO_SCRUB = frozenset({int, float, bool, type(None)})

T = TypeVar("T", Event, dict)


def _digit_count(text: str) -> int:
    """How many characters of ``text`` the patterns' ``\\d`` matches (Unicode decimal digits)."""
    if text.isascii():  # there \d is exactly 0-9, which bytes.translate deletes in one C pass
        return len(text) - len(text.encode("ascii").translate(None, _ASCII_DIGITS))
    return len(_NON_DIGITS.sub("", text))


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (payment card numbers pass it)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _ipv4_network(text: str) -> str | None:
    """Fast path of :func:`truncate_ip` for dotted-quad IPv4 (what nearly every event carries).

    Accepts exactly what :func:`ipaddress.ip_address` accepts for IPv4: four ASCII decimal
    octets 0-255 without leading zeros; anything else goes the slow way.
    """
    match = _IPV4.fullmatch(text)
    if match is None:
        return None
    return match[1] + ".0"


def truncate_ip(text: Any) -> str | None:
    """IPv4 to its /24 network address, IPv6 to its /48; ``None`` for anything unparsable."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    fast = _ipv4_network(text)
    if fast is not None:
        return fast
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def coarsen_geo(geo: Any) -> dict[str, Any]:
    """Only the city-level fields of a location object (``geo`` itself when it has nothing finer)."""
    if type(geo) is not dict and not isinstance(geo, Mapping):  # the ABC check only for non-dicts
        return {}
    kept = {k: v for k, v in geo.items() if k in GEO_KEPT and isinstance(v, _SCALARS)}
    return geo if len(kept) == len(geo) and type(geo) is dict else kept


@dataclass(frozen=True)
class PiiScanner:
    """Finds e-mail addresses, phone numbers and card numbers in text; removes or hashes them.

    ``hasher`` (a keyed hash such as a pseudonym function) is used when ``action`` is
    ``hash``; without one, values are removed.
    """

    action: str = "remove"
    hasher: Callable[[str], str] | None = None
    _clean: dict[str, None] = field(default_factory=dict, compare=False, repr=False)

    def _replace(self, kind: str, value: str) -> str:
        if self.action == "hash" and self.hasher is not None:
            return f"[{kind}:{self.hasher(kind + ':' + value.lower())}]"
        return f"[{kind}]"

    def scrub(self, text: str) -> str:
        """``text`` with every e-mail address, phone number and card number replaced."""
        if len(text) < _SHORTEST_PII or text in self._clean:
            return text
        original = text
        digits = _digit_count(text)
        if digits >= _CARD_DIGITS:
            text = _CARD.sub(self._card_match, text)
        if "@" in text or "%40" in text:
            text = _EMAIL.sub(self._email_match, text)
        if text is not original:  # a replacement may remove digits, a hash adds some
            digits = _digit_count(text)
        if digits >= _PHONE_DIGITS:
            text = _PHONE.sub(self._phone_match, text)
        if text == original:  # nothing found: remember it (only clean strings are kept)
            if len(self._clean) >= _CLEAN_CACHE_SIZE:
                self._clean.clear()
            self._clean[original] = None
            return original
        return text

    def _card_match(self, match: re.Match[str]) -> str:
        return self._cards_in_run(match.group())

    def _email_match(self, match: re.Match[str]) -> str:
        return self._replace("email", match.group().replace("%40", "@"))

    def _phone_match(self, match: re.Match[str]) -> str:
        digits = _NON_DIGITS.sub("", match.group())
        return self._replace("phone", digits) if 7 <= len(digits) <= 15 else match.group()

    def _cards_in_run(self, run: str) -> str:
        """Replace card numbers inside a run of digit groups (a run may hold a card plus neighbours).

        Candidates start and end at group boundaries (a card is typed whole or in groups of
        3 to 6 digits: 4-4-4-4, 4-6-5, 4-4-4-4-3; a short group only at the end, never a run
        of ones and twos, which is how small numbers in running text look), the longest
        first; only Luhn-valid spans of 13-19 digits count.
        """
        groups = [(m.start(), m.end()) for m in _DIGIT_RUNS.finditer(run)]
        out, i = [], 0
        cursor = 0
        while i < len(groups):
            found = None
            if groups[i][1] - groups[i][0] < 3:
                i += 1
                continue
            # The span extends over following groups of 3+ digits; only its last group may be shorter.
            last = i
            while last + 1 < len(groups) and last - i < 18:
                last += 1
                if groups[last][1] - groups[last][0] < 3:
                    break
            # A card has at most 19 digits, so at most 19 groups: the scan stays linear in the run.
            for j in range(last, i - 1, -1):
                digits = _NON_DIGITS.sub("", run[groups[i][0] : groups[j][1]])
                if 13 <= len(digits) <= 19 and luhn_valid(digits):
                    found = j, digits
                    break
            if found is None:
                i += 1
                continue
            j, digits = found
            out.append(run[cursor : groups[i][0]])
            out.append(self._replace("card", digits))
            cursor = groups[j][1]
            i = j + 1
        out.append(run[cursor:])
        return "".join(out)

    def scrub_value(self, value: Any) -> Any:
        """Scrub every string inside a JSON value (keys are left alone).

        Copy-on-write: a value with nothing to scrub comes back as the same object, so clean
        events (most of them) allocate nothing here.
        """
        if type(value) is str:  # the common case first
            return self.scrub(value) if len(value) >= _SHORTEST_PII else value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return self.scrub_mapping(value)
        if isinstance(value, list):
            out = None
            for i, item in enumerate(value):
                new = self.scrub_value(item)
                if new is not item:
                    if out is None:
                        out = list(value)
                    out[i] = new
            return value if out is None else out
        return value

    def scrub_mapping(self, mapping: dict[str, Any], only: frozenset[str] | None = None) -> dict[str, Any]:
        """``mapping`` with its values (those named in ``only``, when given) scrubbed; copy-on-write."""
        clean = self._clean
        out = None
        for key, item in mapping.items():
            if only is not None and key not in only:
                continue
            # scrub_value's answers for the common values, without the calls: short or known
            # clean strings and numbers come back as they are.
            kind = type(item)
            if kind is str:
                if len(item) < _SHORTEST_PII or item in clean:
                    continue
                new = self.scrub(item)
            elif kind in _NOTHING_TO_SCRUB:
                continue
            else:
                new = self.scrub_value(item)
            if new is not item and new != item:
                if out is None:
                    out = dict(mapping)
                out[key] = new
        return mapping if out is None else out


@dataclass(frozen=True)
class MinimizationPolicy:
    """What minimization keeps; built from ``[privacy]`` settings."""

    scanner: PiiScanner = field(default_factory=PiiScanner)
    property_allowlist: Mapping[str, frozenset[str]] = field(default_factory=dict)


def minimize_context(context: Mapping[str, Any], scanner: PiiScanner) -> dict[str, Any]:
    """The context with IP truncated, location coarsened and page URLs scrubbed.

    A shallow copy: every nested value changed here is replaced by a new object, never
    edited in place, so the input stays untouched without the cost of a deep copy (and
    nested objects with nothing to change are shared, not copied).
    """
    out = dict(context)
    if "ip" in out:
        ip = truncate_ip(out["ip"])
        if ip is None:
            del out["ip"]
        else:
            out["ip"] = ip
    if "geo" in out:
        out["geo"] = coarsen_geo(out["geo"])
    if "location" in out:
        out["location"] = coarsen_geo(out["location"])
    page = out.get("page")
    if isinstance(page, dict):
        out["page"] = scanner.scrub_mapping(page, _PAGE_TEXT)
    return out


def minimize_properties(event_type: str, properties: Mapping[str, Any], policy: MinimizationPolicy) -> dict[str, Any]:
    """Properties after the allowlist (if any for this type) and the PII scan.

    Copy-on-write: the same dict comes back when nothing was removed or scrubbed; callers
    must not edit the result in place.
    """
    allowed = policy.property_allowlist.get(event_type)
    if allowed is not None:
        keep = allowed | _STRUCTURAL.get(event_type, set())
        properties = {k: v for k, v in properties.items() if k in keep}
    return policy.scanner.scrub_mapping(dict(properties) if type(properties) is not dict else properties)


def minimize(event: T, policy: MinimizationPolicy) -> T:
    """A minimized copy of ``event`` (an :class:`Event` or its dict form)."""
    if isinstance(event, Event):
        return replace(
            event,
            context=minimize_context(event.context, policy.scanner) if event.context else {},
            properties=minimize_properties(event.type, event.properties, policy) if event.properties else {},
        )
    out = dict(event)
    if isinstance(out.get("context"), Mapping):
        out["context"] = minimize_context(out["context"], policy.scanner)
    if isinstance(out.get("properties"), Mapping):
        out["properties"] = minimize_properties(str(out.get("type", "")), out["properties"], policy)
    return out
