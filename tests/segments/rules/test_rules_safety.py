"""Rules are data: code, templates and SQL in a rule are parse errors, and nothing is executed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import attune.segments.rules as rules_package
from attune.segments.rules import RuleError, parse_rule

INJECTIONS = [
    ('__import__("os").system("touch {marker}")', 0),
    ('os.system("touch {marker}")', 0),
    ('exec(\'open("{marker}", "w")\')', 0),
    ("eval('1')", 0),
    ("open('{marker}', 'w')", 0),
    ("x > 1 and __import__('os')", 10),
    ("().__class__.__bases__[0].__subclasses__()", 1),
    ("lambda: 1", 6),
    ("x > 1; import os", 5),
    ("{{7*7}}", 0),
    ("${7*7}", 0),
    ("#{7*7}", 0),
    ("<%= 7*7 %>", 0),
    ("x == 1; DROP TABLE segments; --", 6),
    ("x == '1' OR '1'='1'", 9),
    ("x == 1 or 1=1", 10),
    ("1 == 1", 0),
    ("' OR 1=1 --", 0),
    ("x == 1 UNION SELECT * FROM api_keys", 7),
    ("x == 1 -- comment", 7),
    ("x == 1 /* c */", 7),
    ("trait.__class__ == 1", 6),
    ("x > 1 and trait.__init__.__globals__ == 1", 16),
    ("x > 1 and y.__globals__ > 1", 12),
    ("`id`", 0),
    ("x == $(id)", 5),
]


@pytest.mark.parametrize(("template", "position"), INJECTIONS)
def test_injection_attempts_are_parse_errors(template: str, position: int, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = template.replace("{marker}", str(marker))
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert caught.value.position == position, str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("__class__ > 1", 0),
        ("context.__dict__ == 'x'", 8),
        ("sum(purchase.__len__) > 1", 13),
        ("count(__x) > 1", 6),
    ],
)
def test_dunder_names_are_refused(text: str, position: int) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert caught.value.position == position
    assert "reserved" in caught.value.reason


def test_the_rules_package_never_calls_eval_or_exec() -> None:
    source_dir = Path(rules_package.__file__).parent
    for path in source_dir.glob("*.py"):
        code = path.read_text()
        assert not re.search(r"(?<![\w.])(eval|exec|compile)\s*\(", code), path.name
