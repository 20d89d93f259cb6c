"""Cell conversions: numbers and booleans from CSV text, ids, values, JSON objects, dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attune.importers.cells import (
    CellError,
    attribute_value,
    convert_text,
    id_value,
    json_object,
    number_value,
    plain_value,
    timestamp_value,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("-7", -7),
        ("0", 0),
        ("4.5", 4.5),
        ("-0.25", -0.25),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("true", True),
        ("FALSE", False),
        ("01234", "01234"),  # postal codes keep their leading zero
        ("+4915112345", "+4915112345"),  # phone numbers keep their plus
        ("1.", "1."),
        ("e5", "e5"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("12 Monkeys", "12 Monkeys"),
        ("99999999999999999999", "99999999999999999999"),  # past 64 bits: text, not a number
    ],
)
def test_convert_text(text, expected):
    result = convert_text(text)
    assert result == expected
    assert type(result) is type(expected)


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_convert_text_reads_back_every_64_bit_integer(number):
    assert convert_text(str(number)) == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_convert_text_reads_back_every_finite_float(number):
    result = convert_text(repr(number))
    assert isinstance(result, float | int)
    assert result == number


def test_genres_text_becomes_a_list_even_with_one_genre():
    assert attribute_value("genres", "Drama|Comedy | ", True) == ["Drama", "Comedy"]
    assert attribute_value("genres", "Drama", True) == ["Drama"]
    assert attribute_value("year", "1995", True) == 1995
    # typed values are kept as the file typed them
    assert attribute_value("genres", "Drama|Comedy", False) == "Drama|Comedy"


def test_ids():
    assert id_value("007", "user_id") == "007"
    assert id_value(196, "user_id") == "196"
    assert id_value(196.0, "user_id") == "196"  # a pandas integer column with gaps
    with pytest.raises(CellError, match=r"user_id: must be a string or an integer \(got a number\)"):
        id_value(1.5, "user_id")
    with pytest.raises(CellError, match="not a boolean"):
        id_value(True, "item_id")


def test_numbers():
    assert number_value("4.5", "value") == 4.5
    assert number_value(3, "value") == 3
    with pytest.raises(CellError, match=r"^value: 'five' is not a number$"):
        number_value("five", "value")
    with pytest.raises(CellError, match="finite"):
        number_value("nan", "value")
    with pytest.raises(CellError, match="boolean"):
        number_value(True, "value")


def test_json_objects():
    assert json_object('{"q": "shoes"}', "properties") == {"q": "shoes"}
    assert json_object({"q": 1}, "properties") == {"q": 1}
    with pytest.raises(CellError, match=r"^properties: is not valid JSON \("):
        json_object("{oops", "properties")
    with pytest.raises(CellError, match=r"context: must be a JSON object \(got an array\)"):
        json_object("[1]", "context")


def test_dates_become_iso_text():
    moment = datetime(2024, 5, 1, 12, 30)
    assert timestamp_value(moment) == "2024-05-01T12:30:00+00:00"
    assert timestamp_value(date(2024, 5, 1)) == "2024-05-01T00:00:00+00:00"
    assert plain_value({"at": datetime(2024, 5, 1, tzinfo=UTC), "n": None}) == {
        "at": "2024-05-01T00:00:00+00:00"
    }
    assert plain_value([timedelta(minutes=2), b"ok"]) == [120.0, "ok"]
    with pytest.raises(CellError, match="timestamp"):
        timestamp_value(True)
