"""Smoke test on the real MovieLens 100k ratings file shipped beside the repository."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from attune.importers import run_import

ML100K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ml-100k" / "u.data"


@pytest.mark.slow
@pytest.mark.skipif(not ML100K.is_file(), reason=f"MovieLens 100k is not at {ML100K}")
def test_ml100k_u_data_imports_every_rating(runtime):
    per_user = Counter(line.split("\t", 1)[0] for line in ML100K.read_text().splitlines() if line)
    result = run_import(runtime, "interactions", ML100K)
    assert "headerless" in result.layout
    assert (result.rows, result.accepted, result.duplicates, result.rejected) == (100_000, 100_000, 0, 0)
    assert runtime.log.count() == 100_000
    assert runtime.profiles.get("196").event_counts == {"rating": per_user["196"]}
    assert runtime.profiles.get("405").event_counts == {"rating": per_user["405"]}
