"""``attune segments``: apply, list, evaluate, conflicts, and clear errors for bad files."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from attune.cli.main import app
from attune.runtime import Runtime
from attune.settings import load_settings

NOW = time.time()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def seed(data_dir: Path) -> None:
    runtime = Runtime.open(load_settings(data_dir=data_dir))
    try:
        events = [
            {"type": "view", "user_id": f"u{u}", "item_id": f"i{j}", "timestamp": NOW - 3600 - j}
            for u in range(6)
            for j in range(u)
        ]
        assert not runtime.ingest.ingest(events).rejected
        runtime.catch_up()
    finally:
        runtime.close()


def test_apply_list_evaluate_conflicts(tmp_path: Path) -> None:
    seed(tmp_path)
    spec = tmp_path / "segments.yaml"
    spec.write_text(
        "- name: keen\n  rule: count(view, window=7d) >= 3\n  group: tier\n  priority: 5\n"
        "- name: casual\n  rule: exists(view, window=7d)\n  group: tier\n  priority: 5\n"
        "- name: everyone\n  rule: count(view, window=7d) >= 0\n"
    )
    applied = invoke("segments", "apply", str(spec), "--data-dir", str(tmp_path))
    assert applied.exit_code == 0, applied.output
    assert "applied 3 segments" in applied.stdout
    listed = invoke("segments", "list", "--data-dir", str(tmp_path))
    assert listed.exit_code == 0 and "keen" in listed.output and "casual" in listed.output
    evaluated = invoke("segments", "evaluate", "--data-dir", str(tmp_path))
    assert evaluated.exit_code == 0, evaluated.output
    # Already current from `apply`: a full re-evaluation changes nothing.
    assert "evaluated 5 people: 0 entries, 0 exits" in evaluated.stdout
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    try:
        # u3..u5 viewed >= 3 items; the equal-priority tie in "tier" goes to the first name.
        assert sorted(k for k, _ in runtime.segments.members("casual")) == [
            "u:u1",
            "u:u2",
            "u:u3",
            "u:u4",
            "u:u5",
        ]
        assert runtime.segments.size("keen") == 0
    finally:
        runtime.close()
    conflicts = invoke("segments", "conflicts", "--data-dir", str(tmp_path))
    assert conflicts.exit_code == 0
    assert "always_matches: everyone" in conflicts.stdout
    assert "equal_priority: casual, keen" in conflicts.stdout


def test_evaluate_repairs_memberships_removed_behind_its_back(tmp_path: Path) -> None:
    seed(tmp_path)
    spec = tmp_path / "segments.json"
    spec.write_text(json.dumps({"keen": {"rule": "count(view, window=7d) >= 3"}}))
    assert invoke("segments", "apply", str(spec), "--data-dir", str(tmp_path)).exit_code == 0
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    runtime.segments.reset()  # as if the memberships were lost
    runtime.close()
    evaluated = invoke("segments", "evaluate", "--data-dir", str(tmp_path))
    assert "3 entries, 0 exits" in evaluated.stdout, evaluated.output


def test_bad_files_name_the_fault(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  rule: count(view, window=7d) >=\n")
    result = invoke("segments", "apply", str(bad), "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "segment 'x'" in result.output and "column" in result.output and "Traceback" not in result.output
    typo = tmp_path / "typo.yaml"
    typo.write_text("- name: x\n  rule: exists(view, window=7d)\n  priorty: 3\n")
    result = invoke("segments", "apply", str(typo), "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "priority" in result.output
    missing = invoke("segments", "apply", str(tmp_path / "none.yaml"), "--data-dir", str(tmp_path))
    assert missing.exit_code == 1 and "cannot read" in missing.output


def test_learn_stores_clusters_with_confidences(tmp_path: Path) -> None:
    from tests.segments.test_learning import planted_events

    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    try:
        events, truth = planted_events(15, seed=4)
        assert not runtime.ingest.ingest(events).rejected
        runtime.catch_up()
    finally:
        runtime.close()
    result = invoke(
        "segments", "learn", "--method", "kmeans", "--prefix", "tribe", "--data-dir", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "learnt 3 segments (kmeans" in result.output
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    try:
        learnt = {n for n, d in runtime.segments.definitions().items() if d.kind == "learnt"}
        assert learnt == {"tribe_1", "tribe_2", "tribe_3"}
        assert all(runtime.segments.segments_of(key) for key in truth)
    finally:
        runtime.close()
    bad = invoke("segments", "learn", "--method", "spectral", "--data-dir", str(tmp_path))
    assert bad.exit_code != 0 and "method" in bad.output and "Traceback" not in bad.output
