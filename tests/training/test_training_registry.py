"""The registry: one promoted version at most, rollback walks the promotion history back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from planted import planted_data
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from attune.errors import NotFound, ValidationFailed
from attune.recommend.models import make_model
from attune.runtime import Runtime
from attune.storage.tables import model_versions
from attune.training.artifacts import ModelBundle, save_artifact
from attune.training.registry import ModelRegistry, RegistryConflict


@pytest.fixture
def registry(runtime: Runtime, tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(runtime.engine, tmp_path / "models")


def add_version(registry: ModelRegistry, name: str = "popular") -> str:
    """Register a real (tiny) version with its artifact written, status ready."""
    data = planted_data(n_users=4, n_items=4, per_user=2)
    version = registry.reserve(
        name,
        {},
        data_from=1.0,
        data_to=2.0,
        n_interactions=len(data.interactions),
        n_users=4,
        n_items=4,
        metrics={"ndcg@10": 0.5},
    )
    model = make_model(name).fit(data.interactions)
    save_artifact(
        ModelBundle(version, name, {}, model, np.array(["i00"]), np.array([1.0])),
        registry.models_dir / version,
    )
    registry.mark_ready(version)
    return version


def statuses(registry: ModelRegistry) -> dict[str, str]:
    return {v.version: v.status for v in registry.list()}


def test_versions_are_numbered_and_listed_newest_first(registry: ModelRegistry) -> None:
    first, second = add_version(registry), add_version(registry)
    assert (first, second) == ("v1", "v2")
    assert [v.version for v in registry.list()] == ["v2", "v1"]
    entry = registry.get("v1")
    assert entry.status == "ready" and entry.metrics == {"ndcg@10": 0.5} and entry.n_interactions == 8
    assert registry.promoted() is None


def test_promote_keeps_exactly_one_promoted_and_rollback_walks_back(registry: ModelRegistry) -> None:
    v1, v2, v3 = (add_version(registry) for _ in range(3))
    registry.promote(v1)
    registry.promote(v2)
    registry.promote(v3)
    assert statuses(registry) == {v1: "retired", v2: "retired", v3: "promoted"}
    promoted = registry.promoted()
    assert promoted is not None and (promoted.version, promoted.name) == (v3, "popular")
    assert Path(promoted.artifact_path) == registry.models_dir / v3

    assert registry.rollback().version == v2
    assert statuses(registry) == {v1: "retired", v2: "promoted", v3: "retired"}
    assert registry.rollback().version == v1  # a second rollback goes one further back
    with pytest.raises(RegistryConflict, match="no earlier promoted version"):
        registry.rollback()
    assert registry.promoted().version == v1  # a refused rollback changes nothing

    actions = [(p.action, p.version, p.previous_version) for p in registry.history()]
    assert actions == [
        ("promote", v1, None),
        ("promote", v2, v1),
        ("promote", v3, v2),
        ("rollback", v2, v3),
        ("rollback", v1, v2),
    ]


def test_rollback_after_a_new_promotion_skips_rolled_back_versions(registry: ModelRegistry) -> None:
    v1, v2, v3 = (add_version(registry) for _ in range(3))
    registry.promote(v1)
    registry.promote(v2)
    registry.rollback()  # back to v1; v2 was rolled away from
    registry.promote(v3)
    assert registry.rollback().version == v1


def test_promoting_the_promoted_version_changes_nothing(registry: ModelRegistry) -> None:
    v1 = add_version(registry)
    registry.promote(v1)
    registry.promote(v1, actor="again")
    assert [p.action for p in registry.history()] == ["promote"]


def test_bad_promotions_are_refused_with_reasons(registry: ModelRegistry) -> None:
    with pytest.raises(NotFound, match="no model version 'v9'"):
        registry.promote("v9")
    with pytest.raises(RegistryConflict, match="no earlier promoted version"):
        registry.rollback()
    building = registry.reserve(
        "ease", {}, data_from=None, data_to=None, n_interactions=0, n_users=0, n_items=0
    )
    with pytest.raises(ValidationFailed, match="building"):
        registry.promote(building)
    registry.mark_failed(building, "disk full")
    assert registry.get(building).status == "failed"
    assert registry.get(building).details["failure"] == "disk full"
    v2 = add_version(registry)
    (registry.models_dir / v2 / "manifest.json").unlink()
    with pytest.raises(ValidationFailed, match="artifact is missing"):
        registry.promote(v2)
    assert registry.promoted() is None


def test_the_store_itself_refuses_a_second_promoted_version(
    registry: ModelRegistry, runtime: Runtime
) -> None:
    v1, v2 = add_version(registry), add_version(registry)
    registry.promote(v1)
    with pytest.raises(IntegrityError), runtime.engine.begin() as conn:
        conn.execute(update(model_versions).where(model_versions.c.version == v2).values(status="promoted"))


def test_artifact_paths_are_stored_relative_to_the_models_directory(
    registry: ModelRegistry, runtime: Runtime
) -> None:

    version = add_version(registry)
    with runtime.engine.connect() as conn:
        stored = conn.execute(select(model_versions.c.artifact_path)).scalar()
    assert stored == version  # a moved data directory keeps working
    moved = ModelRegistry(runtime.engine, registry.models_dir.parent / "elsewhere")
    assert moved.get(version).artifact_path == str(
        (registry.models_dir.parent / "elsewhere" / version).resolve()
    )


def test_the_migration_matches_the_registry_tables(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from attune.storage.engine import make_engine
    from attune.storage.migrate import upgrade
    from attune.storage.tables import metadata

    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert [d for d in diffs if "model_" in repr(d)] == []
