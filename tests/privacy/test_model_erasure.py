"""Erasure reaches trained models: every stored version loses the person's row, factors and seen items."""

from __future__ import annotations

import numpy as np
import pytest

from attune.recommend.data import Interactions
from attune.recommend.models.hybrid import WeightedHybrid
from attune.recommend.models.itemknn import ItemKNN
from attune.runtime import Runtime
from attune.training.artifacts import MODEL_FILE, load_artifact, read_manifest
from attune.training.erasure import forget_users
from attune.training.trainer import train

START = 1_700_000_000


def checkerboard(n_users: int = 30, n_items: int = 20, per_user: int = 8, seed: int = 0) -> list[dict]:
    """Users see items of their own parity (a known structure any model learns)."""
    rng = np.random.default_rng(seed)
    rows, t = [], START
    for u in range(n_users):
        for i in rng.permutation([i for i in range(n_items) if i % 2 == u % 2])[:per_user]:
            t += 60
            rows.append({"type": "view", "user_id": f"person-{u:03d}", "item_id": f"i{int(i):02d}", "timestamp": t})
    return rows


def top(model, user: str) -> tuple[list[str], list[float]]:
    ids, scores = model.recommend(user, 5)
    return [str(i) for i in ids], [round(float(s), 5) for s in scores]


def _files_containing(root, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for text in needles:
            if text.encode() in data or text.encode("utf-32-le") in data:
                hits.append(f"{path.relative_to(root)}: {text}")
    return hits


@pytest.mark.parametrize("models", [("als", "itemknn")])
def test_erasure_removes_the_person_from_every_model_version(private_runtime: Runtime, models: tuple[str, ...]) -> None:
    runtime = private_runtime
    report = runtime.ingest.ingest(checkerboard())
    assert not report.rejected
    runtime.catch_up()
    for name in models:
        train(runtime.engine, runtime.settings, name)
    served = runtime.recommendations.models
    assert served is not None and served.refresh() is not None
    key = runtime.subject_keys.user("person-007")
    other = runtime.subject_keys.user("person-008")
    directories = sorted(p.parent for p in (runtime.settings.data_dir / "models").glob("*/manifest.json"))
    assert len(directories) == len(models)
    before = {}
    for directory in directories:
        bundle = load_artifact(directory)
        assert key in bundle.model.user_index_  # the model did learn this person
        before[directory] = (read_manifest(directory)["sha256"], top(bundle.model, other))
    # The search below can see an id inside a pickle (numpy keeps ids as UTF-32).
    assert all(MODEL_FILE in hit for hit in _files_containing(runtime.settings.data_dir / "models", [key[2:]]))
    assert len(_files_containing(runtime.settings.data_dir / "models", [key[2:]])) == len(models)

    done = runtime.privacy.erasure.erase("person-007")

    assert done.counts["model_artifacts"] == len(models)
    for directory in directories:
        manifest = read_manifest(directory)
        bundle = load_artifact(directory, expected_version=manifest["version"])  # the new hash verifies
        assert manifest["sha256"] != before[directory][0]
        model = bundle.model
        assert key not in model.user_index_ and key not in set(model.user_ids_.astype(str))
        assert model.user_items_.shape[0] == len(model.user_ids_) == 29
        if hasattr(model, "model_"):  # ALS: one learned factor row per remaining user
            assert model.model_.user_factors.shape[0] == 29
        # Everybody else is served exactly as before.
        assert top(model, other) == before[directory][1]
    # The model serving in memory was reloaded from the rewritten artifact.
    assert key not in served.current().model.user_index_
    # No file in the data directory holds the person's raw id or pseudonym any more.
    assert _files_containing(runtime.settings.data_dir, ["person-007", key[2:]]) == []
    # A second erasure finds nothing to clean in the models.
    assert forget_users(load_artifact(directories[0]).model, {key}) == 0


def test_forget_users_reaches_components_and_keeps_rows_aligned() -> None:
    rows = [(row["user_id"].replace("person-0", "u:"), row["item_id"], row["timestamp"]) for row in checkerboard(12)]
    data = Interactions.from_arrays(*(np.array(column) for column in zip(*rows, strict=True)))
    hybrid = WeightedHybrid(components="itemknn,als", weights={"itemknn": 1.0, "als": 1.0}).fit(data)
    untouched = ItemKNN().fit(data)
    expected_rows = {u: hybrid.user_row(u).toarray() for u in ("u:00", "u:05", "u:11")}
    assert expected_rows["u:05"].sum() > 0

    assert forget_users(hybrid, {"u:03", "u:nobody"}) == 1 + len(hybrid.components_)
    for model in (hybrid, *hybrid.components_.values()):
        assert "u:03" not in model.user_index_ and len(model.user_ids_) == 11
        assert model.user_items_.shape[0] == 11
        for user, row in expected_rows.items():  # remaining rows still line up with their users
            assert np.array_equal(model.user_row(user).toarray(), row)
    assert forget_users(untouched, {"u:nobody"}) == 0 and len(untouched.user_ids_) == 12
