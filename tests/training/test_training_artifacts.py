"""Artifacts: a fitted model survives a save/load round trip; a mismatched one is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from planted import planted_data

from attune.errors import NotFound
from attune.recommend.models import make_model
from attune.training.artifacts import ArtifactError, ModelBundle, load_artifact, popularity_of, save_artifact


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    data = planted_data()
    model = make_model("ease", l2=10.0).fit(data.interactions)
    items, scores = popularity_of(data.interactions)
    return save_artifact(ModelBundle("v7", "ease", {"l2": 10.0}, model, items, scores), tmp_path / "v7")


def test_round_trip_gives_the_same_recommendations(saved: Path) -> None:
    bundle = load_artifact(saved, expected_version="v7")
    assert (bundle.version, bundle.name, bundle.params) == ("v7", "ease", {"l2": 10.0})
    fresh = make_model("ease", l2=10.0).fit(planted_data().interactions)
    for user in ("u:u0", "u:u1", "stranger"):
        ids, scores = bundle.model.recommend(user, k=5)
        fresh_ids, fresh_scores = fresh.recommend(user, k=5)
        assert ids == fresh_ids
        np.testing.assert_allclose(scores, fresh_scores, rtol=1e-6)
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["version"] == "v7" and len(manifest["sha256"]) == 64


def test_popularity_fallback_excludes_and_orders(saved: Path) -> None:
    bundle = load_artifact(saved)
    top = bundle.fallback(3)
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    assert top[0][0] not in {i for i, _ in bundle.fallback(3, exclude={top[0][0]})}


def test_a_manifest_for_another_version_is_refused(saved: Path) -> None:
    with pytest.raises(ArtifactError, match="is version 'v7', not 'v8'"):
        load_artifact(saved, expected_version="v8")


def test_a_changed_pickle_is_refused(saved: Path) -> None:
    with (saved / "model.pkl").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactError, match="does not match the hash"):
        load_artifact(saved, expected_version="v7")


def test_missing_or_garbled_artifacts_get_clear_errors(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="manifest.json is missing"):
        load_artifact(tmp_path / "nowhere")
    (saved / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="cannot be read"):
        load_artifact(saved)
