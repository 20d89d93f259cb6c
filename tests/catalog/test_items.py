"""The item catalog: attribute checks, normalization, upserts and availability."""

from __future__ import annotations

import math

import pytest

from attune.catalog.items import Catalog, check_item, normalize_attributes
from attune.errors import NotFound
from attune.runtime import Runtime


@pytest.mark.parametrize(
    ("item_id", "attributes", "expected"),
    [
        ("i1", {"title": "Up", "genres": ["a", "b"], "year": 2009, "available": True}, []),
        (7, {}, []),
        ("", {}, ["item_id: is required and must be a non-empty string"]),
        ("  ", {}, ["item_id: is required and must be a non-empty string"]),
        (None, {}, ["item_id: is required and must be a non-empty string"]),
        (True, {}, ["item_id: is required and must be a non-empty string"]),
        ("x" * 257, {}, ["item_id: longer than 256 characters"]),
        ("a\x00b", {}, ["item_id: contains control characters"]),
        ("i1", [], ["attributes: must be an object"]),
        ("i1", {"price": math.nan}, ["price: must be a finite number"]),
        ("i1", {"meta": {"a": 1}}, ["meta: nested objects are not supported; use flat attributes or lists"]),
        ("i1", {"tags": [["a"]]}, ["tags: lists may only hold strings, numbers and booleans"]),
        ("i1", {"available": "yes"}, ["available: must be true or false"]),
        ("i1", {"blob": "x" * 70_000}, ["attributes: larger than 65536 bytes when serialized"]),
    ],
)
def test_check_item(item_id: object, attributes: object, expected: list[str]) -> None:
    assert check_item(item_id, attributes) == expected


def test_normalize_attributes_splits_pipe_lists() -> None:
    assert normalize_attributes(
        {"title": " Up ", "genres": "Animation| Comedy |", "tags": "one", "year": 2009}
    ) == {
        "title": "Up",
        "genres": ["Animation", "Comedy"],
        "tags": "one",
        "year": 2009,
    }


def test_upsert_get_and_replace(runtime: Runtime) -> None:
    catalog = Catalog(runtime.engine)
    assert catalog.upsert([("i1", {"title": "Up", "genres": "a|b"}), (" i2 ", {"title": "Cars"})]) == 2
    item = catalog.get("i1")
    assert item.attributes == {"title": "Up", "genres": ["a", "b"]}
    assert catalog.get("i2").item_id == "i2"
    catalog.upsert([("i1", {"title": "Up (2009)"})])  # replaces the attributes wholesale
    assert catalog.get("i1").attributes == {"title": "Up (2009)"}
    assert catalog.count() == 2


def test_unknown_items_are_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="'nope' is not in the catalog"):
        Catalog(runtime.engine).get("nope")
    with pytest.raises(NotFound):
        Catalog(runtime.engine).get("a\x00b")  # an id no item can have is simply absent


def test_unavailable_items_follow_upserts(runtime: Runtime) -> None:
    catalog = Catalog(runtime.engine)
    catalog.upsert([("i1", {"available": False}), ("i2", {"available": True}), ("i3", {})])
    assert catalog.unavailable() == {"i1"}
    catalog.upsert([("i1", {"available": True}), ("i3", {"available": False})])
    assert catalog.unavailable() == {"i3"}
