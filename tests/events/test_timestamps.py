"""Event times: epoch seconds/milliseconds/microseconds, ISO 8601 with and without offsets."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attune.events.timestamps import iso, parse_timestamp

NOON_UTC = 1795348800.0  # 2026-11-22T12:00:00Z


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1795348800, NOON_UTC),
        (1795348800.25, NOON_UTC + 0.25),
        ("1795348800", NOON_UTC),
        (" 1795348800.5 ", NOON_UTC + 0.5),
        (1795348800123, NOON_UTC + 0.123),  # milliseconds
        (1795348800123456, NOON_UTC + 0.123456),  # microseconds
        ("1795348800000", NOON_UTC),
        ("2026-11-22T12:00:00Z", NOON_UTC),
        ("2026-11-22T12:00:00+00:00", NOON_UTC),
        ("2026-11-22T12:00:00", NOON_UTC),  # no offset: taken as UTC
        ("2026-11-22T14:00:00+02:00", NOON_UTC),
        ("2026-11-22T07:00:00-05:00", NOON_UTC),
        ("2026-11-22T12:00:00.500Z", NOON_UTC + 0.5),
        ("2026-11-22", NOON_UTC - 12 * 3600),
    ],
)
def test_parse_timestamp_accepts_epochs_and_iso(raw: object, expected: float) -> None:
    assert parse_timestamp(raw) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("raw", ["garbage", "", "   ", "2026-13-01T00:00:00Z", "12:00", "nan", "inf", "1,5"])
def test_parse_timestamp_refuses_garbage_with_a_reason(raw: str) -> None:
    with pytest.raises(ValueError, match="neither ISO 8601 nor an epoch number"):
        parse_timestamp(raw)


@pytest.mark.parametrize("raw", [math.nan, math.inf, -math.inf])
def test_parse_timestamp_refuses_non_finite_numbers(raw: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        parse_timestamp(raw)


def test_iso_is_utc_with_z() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(NOON_UTC + 0.5) == "2026-11-22T12:00:00.500000Z"


@given(st.floats(min_value=-1e10, max_value=9.9e10, allow_nan=False, allow_infinity=False))
def test_epoch_seconds_round_trip_through_iso(ts: float) -> None:
    # iso() keeps microseconds, so the round trip is exact to a microsecond.
    assert parse_timestamp(iso(ts)) == pytest.approx(ts, abs=1e-6)
    assert parse_timestamp(ts) == ts
    assert parse_timestamp(repr(ts)) == ts


@given(st.integers(min_value=631152000, max_value=4102444800))
def test_epoch_units_agree(seconds: int) -> None:
    assert parse_timestamp(seconds * 1000) == pytest.approx(seconds)
    assert parse_timestamp(seconds * 1_000_000) == pytest.approx(seconds)
