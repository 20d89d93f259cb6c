"""Segment definitions: PUT bodies, files, dependency order, exclusive groups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attune.errors import BadRequest
from attune.segments.definitions import (
    SegmentDefinition,
    dependency_order,
    load_definitions,
    parse_definition,
    parse_definitions,
    resolve_exclusive,
)
from attune.segments.rules import RuleError, parse_rule


def test_a_put_body_becomes_a_definition() -> None:
    d = parse_definition(
        "premium",
        {
            "rule": "sum(purchase.value, window=30d) >= 100",
            "priority": 10,
            "group": "tier",
            "description": "big spenders",
            "purpose": "marketing",
        },
    )
    assert d == SegmentDefinition(
        "premium",
        parse_rule("sum(purchase.value, window=30d) >= 100"),
        10,
        "tier",
        "big spenders",
        "marketing",
    )
    assert parse_definition("x", {"rule": "true"}).priority == 0
    assert parse_definition("x", {"rule": "true"}).group is None
    learnt = parse_definition("cluster-3", {"kind": "learnt", "group": "clusters"})
    assert learnt.rule is None and learnt.kind == "learnt"


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({}, "rule", "is required"),
        ({"rule": 3}, "rule", "expected a string"),
        ({"rule": "count(view) >"}, "rule", "line 1, column 14: expected a value"),
        ({"rule": "true", "priorty": 3}, "priorty", "did you mean 'priority'"),
        ({"rule": "true", "priority": "high"}, "priority", "expected an integer"),
        ({"rule": "true", "priority": True}, "priority", "expected an integer"),
        ({"rule": "true", "priority": 2**40}, "priority", "must be between"),
        ({"rule": "true", "group": ""}, "group", "expected a group name"),
        ({"rule": "true", "purpose": "Marketing!"}, "purpose", "expected a purpose identifier"),
        ({"rule": "true", "description": 5}, "description", "expected a string"),
        ({"rule": "true", "kind": "magic"}, "kind", "expected 'rule' or 'learnt'"),
        ({"rule": "true", "kind": "learnt"}, "rule", "a learnt segment has no rule"),
        ({"rule": "true", "name": "other"}, "name", "does not match"),
    ],
)
def test_bad_bodies_name_the_segment_and_the_field(body: dict, field: str, says: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_definition("seg", body)
    assert str(caught.value).startswith(f"segment 'seg', field '{field}': ")
    assert says in str(caught.value)


def test_rule_errors_keep_their_position() -> None:
    with pytest.raises(RuleError) as caught:
        parse_definition("seg", {"rule": "x > 1 and foo(y)"})
    assert caught.value.position == 10 and caught.value.column == 11


@pytest.mark.parametrize("name", ["", "has space", "-x", "a/b", "x" * 65, 3])
def test_bad_names(name: object) -> None:
    with pytest.raises(RuleError, match="segment name"):
        parse_definition(name, {"rule": "true"})  # type: ignore[arg-type]


YAML = """
premium:
  rule: sum(purchase.value, window=30d) >= 100
  priority: 10
  group: tier
browser:
  rule: count(view, window=7d) >= 3
  priority: 1
  group: tier
drama_fans:
  rule: 'count(view, window=7d, category="drama") > 3'
"""


def test_load_yaml_mapping_and_json_list(tmp_path: Path) -> None:
    path = tmp_path / "segments.yaml"
    path.write_text(YAML)
    defs = load_definitions(path)
    assert [d.name for d in defs] == ["premium", "browser", "drama_fans"]
    assert defs[0].priority == 10 and defs[0].group == "tier"
    as_list = [{"name": d.name, "rule": d.rule.text, "priority": d.priority, "group": d.group} for d in defs]
    json_path = tmp_path / "segments.json"
    json_path.write_text(json.dumps(as_list))
    assert load_definitions(json_path) == defs
    json_path.write_text(json.dumps({"segments": as_list}))
    assert load_definitions(json_path) == defs


@pytest.mark.parametrize(
    ("content", "suffix", "says"),
    [
        ("a:\n  rule: 'x > 1\n", ".yaml", "line 3"),
        ('[{"name": "a", "rule": "x > 1"', ".json", "line 1"),
        ("- rule: x > 1\n", ".yaml", "entry 1 needs a 'name'"),
        ("a: {rule: 'x > 1'}\nb: {rule: 'x >> 1'}\n", ".yaml", "segment 'b', field 'rule': line 1, column 4"),
        (
            '[{"name": "a", "rule": "true"}, {"name": "a", "rule": "false"}]',
            ".json",
            "segment 'a': defined more than once",
        ),
        ("42", ".yaml", "expected a list of segments"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, suffix: str, says: str) -> None:
    path = tmp_path / f"defs{suffix}"
    path.write_text(content)
    with pytest.raises(RuleError) as caught:
        load_definitions(path)
    assert says in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="cannot read"):
        load_definitions(tmp_path / "missing.yaml")


def defs_of(rules: dict[str, str]) -> list[SegmentDefinition]:
    return parse_definitions({name: {"rule": rule} for name, rule in rules.items()})


def test_dependency_order_puts_referenced_segments_first() -> None:
    defs = defs_of(
        {
            "z_base": "count(view) > 1",
            "a_top": 'segment("m_mid") and segment("z_base")',
            "m_mid": 'segment("z_base") or x > 1',
            "b_free": "x > 2",
        }
    )
    order = dependency_order(defs)
    assert order == ["b_free", "z_base", "m_mid", "a_top"]


def test_cycles_are_named() -> None:
    defs = defs_of({"a": 'segment("b")', "b": 'segment("c") or x > 1', "c": 'segment("a")', "d": "x > 1"})
    with pytest.raises(RuleError, match=r"cyclic segment references: a -> b -> c -> a"):
        dependency_order(defs)
    with pytest.raises(RuleError, match=r"cyclic segment references: s -> s"):
        dependency_order(defs_of({"s": 'segment("s") or x > 1'}))


def test_unknown_references_are_refused_with_position() -> None:
    with pytest.raises(RuleError) as caught:
        dependency_order(defs_of({"a": 'x > 1 and segment("ghost")'}))
    assert str(caught.value).startswith("segment 'a', field 'rule': line 1, column 19: ")
    assert "unknown segment 'ghost'" in str(caught.value)
    assert caught.value.position == 18


def test_premium_overrides_browser() -> None:
    defs = {d.name: d for d in load_definitions_from_text(YAML)}
    assert resolve_exclusive({"premium": 1.0, "browser": 1.0, "drama_fans": 0.8}, defs) == {
        "premium": 1.0,
        "drama_fans": 0.8,
    }
    assert resolve_exclusive({"browser": 1.0}, defs) == {"browser": 1.0}
    assert resolve_exclusive({"browser": 0.0, "unknown": 0.5}, defs) == {"unknown": 0.5}


def test_equal_priority_goes_to_name_order() -> None:
    defs = {
        d.name: d
        for d in parse_definitions(
            {
                "beta": {"rule": "true", "group": "g", "priority": 5},
                "alpha": {"rule": "true", "group": "g", "priority": 5},
            }
        )
    }
    assert resolve_exclusive({"beta": 0.9, "alpha": 0.2}, defs) == {"alpha": 0.2}


def load_definitions_from_text(text: str) -> list[SegmentDefinition]:
    import yaml

    return parse_definitions(yaml.safe_load(text))


@given(
    st.dictionaries(
        st.sampled_from([f"s{i}" for i in range(8)]),
        st.tuples(st.sampled_from([None, "g1", "g2"]), st.integers(0, 3), st.sampled_from([0.0, 0.3, 1.0])),
        min_size=1,
    )
)
def test_at_most_one_per_group_and_it_has_the_top_priority(spec: dict) -> None:
    defs = {
        name: SegmentDefinition(name, parse_rule("true"), priority, group)
        for name, (group, priority, _) in spec.items()
    }
    matches = {name: confidence for name, (_, _, confidence) in spec.items()}
    kept = resolve_exclusive(matches, defs)
    assert all(matches[name] == confidence > 0 for name, confidence in kept.items())
    for group in ("g1", "g2"):
        candidates = [n for n, (g, _, c) in spec.items() if g == group and c > 0]
        holders = [n for n in kept if defs[n].group == group]
        if not candidates:
            assert holders == []
            continue
        best = min(candidates, key=lambda n: (-defs[n].priority, n))
        assert holders == [best]
    ungrouped = {n for n, (g, _, c) in spec.items() if g is None and c > 0}
    assert ungrouped <= set(kept)
