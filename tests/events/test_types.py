"""Canonical event-type names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attune.events.types import STANDARD_TYPES, VALID_TYPE, canonical_type


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Product Added", "add_to_cart"),
        ("Product Viewed", "view"),
        ("Product Clicked", "click"),
        ("Product Removed", "remove_from_cart"),
        ("Order Completed", "purchase"),
        ("Products Searched", "search"),
        ("Product Rated", "rating"),
        ("addToCart", "add_to_cart"),
        ("add-to-cart", "add_to_cart"),
        ("ADD_TO_CART", "add_to_cart"),
        ("  view  ", "view"),
        ("page", "page_view"),
        ("pageView", "page_view"),
        ("screen", "screen_view"),
        ("myCustomEvent", "my_custom_event"),
        ("Video Played", "video_played"),
        ("checkout.step/2", "checkout_step_2"),
        ("a__b", "a_b"),
    ],
)
def test_known_spellings_become_one_name(raw: str, expected: str) -> None:
    assert canonical_type(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "1abc", "_", "---", "émoji😀", "a" * 65, "drop table;"])
def test_names_that_cannot_be_types_give_none(raw: str) -> None:
    assert canonical_type(raw) is None


@pytest.mark.parametrize("name", STANDARD_TYPES)
def test_standard_types_are_fixed_points(name: str) -> None:
    assert canonical_type(name) == name


@given(st.text(max_size=80))
def test_output_is_valid_or_none(raw: str) -> None:
    result = canonical_type(raw)
    assert result is None or VALID_TYPE.fullmatch(result)
    if result is not None:
        assert canonical_type(result) == result  # canonical names stay canonical
