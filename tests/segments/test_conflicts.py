"""The conflict report on definitions with known conflicts."""

from __future__ import annotations

import pytest

from attune.segments.conflicts import conflict_report
from attune.segments.definitions import SegmentDefinition, parse_definitions
from attune.segments.rules import evaluate, parse_rule


def defs(spec: dict[str, dict]) -> list[SegmentDefinition]:
    return parse_definitions(spec)


def test_never_and_always_matching_rules() -> None:
    report = conflict_report(
        defs(
            {
                "always": {"rule": "count(view, window=7d) >= 0"},
                "never": {"rule": "count(view) > 3 and count(view) < 2"},
                "fine": {"rule": "count(view) > 3"},
            }
        )
    )
    assert [(c.kind, c.segments) for c in report] == [
        ("always_matches", ("always",)),
        ("never_matches", ("never",)),
    ]
    assert all(c.exhaustive for c in report)
    assert "count(view) > 3 and count(view) < 2" in report[1].message


def test_equal_priority_overlap_in_a_group_with_a_witness() -> None:
    spec = {
        "young_bingers": {
            "rule": "count(view, window=7d) >= 10 and trait.age < 25",
            "group": "g",
            "priority": 1,
        },
        "mobile_viewers": {
            "rule": 'count(view, window=7d) >= 3 and context.device == "mobile"',
            "group": "g",
            "priority": 1,
        },
    }
    (conflict,) = conflict_report(defs(spec))
    assert conflict.kind == "equal_priority"
    assert conflict.segments == ("mobile_viewers", "young_bingers")
    assert "group 'g'" in conflict.message
    # The example person really matches both rules.
    rules = [parse_rule(s["rule"]) for s in spec.values()]
    refs = {ref.column: ref for rule in rules for ref in rule.refs}
    from attune.segments.rules import render_ref

    person = {ref: conflict.example[render_ref(ref)] for ref in refs.values()}
    assert all(evaluate(rule, person) for rule in rules)


@pytest.mark.parametrize(
    "spec",
    [
        # different priorities: the group resolves them on purpose
        {
            "premium": {"rule": "sum(purchase.value) >= 100", "group": "tier", "priority": 10},
            "browser": {"rule": "count(view) >= 3", "group": "tier", "priority": 1},
        },
        # equal priority but disjoint
        {
            "light": {"rule": "count(view) <= 3", "group": "tier", "priority": 1},
            "heavy": {"rule": "count(view) > 3", "group": "tier", "priority": 1},
        },
        # overlapping but in different groups / no group
        {
            "a": {"rule": "count(view) > 1", "group": "g1", "priority": 1},
            "b": {"rule": "count(view) > 2", "group": "g2", "priority": 1},
            "c": {"rule": "count(view) > 3", "priority": 1},
        },
    ],
)
def test_no_conflict(spec: dict) -> None:
    assert conflict_report(defs(spec)) == []


def test_learnt_segments_are_not_analysed() -> None:
    report = conflict_report(
        defs(
            {
                "cluster_0": {"kind": "learnt", "group": "clusters"},
                "cluster_1": {"kind": "learnt", "group": "clusters"},
                "rule_seg": {"rule": "count(view) > 1", "group": "clusters"},
            }
        )
    )
    assert report == []


def test_sampled_analysis_says_so() -> None:
    rule = " and ".join(f"trait.t{i} between {i} and {i + 5}" for i in range(12)) + " and trait.t0 > 100"
    (conflict,) = conflict_report(defs({"huge": {"rule": rule}}), limit=2000)
    assert conflict.kind == "never_matches" and not conflict.exhaustive
    assert "sampled" in conflict.message
