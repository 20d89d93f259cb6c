"""Serving the promoted model: personalized answers, real-time fold-in, fallback and swaps."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attune.cli.main import app
from attune.recommend.promoted import PromotedModelCache
from attune.runtime import Runtime
from attune.settings import load_settings
from attune.training.trainer import registry_for


def invoke(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def parity(item_id: str) -> int:
    return int(item_id[1:]) % 2


@pytest.fixture
def runtime(tmp_path: Path, parity_checkerboard_csv: Path):
    """A checkerboard (even users like even items) imported and trained with EASE (v1 promoted)."""
    path = parity_checkerboard_csv
    data_dir = tmp_path / "data"
    invoke("import", "interactions", path, "--data-dir", data_dir)
    invoke("train", "--model", "ease", "--data-dir", data_dir)
    runtime = Runtime.open(load_settings(data_dir=data_dir))
    runtime.recommendations.models.refresh()
    yield runtime
    runtime.close()


def test_known_users_get_the_promoted_model(runtime: Runtime) -> None:
    result = runtime.recommendations.for_user("u0", k=2)
    assert result.personalized and result.model == "ease:v1"
    assert [parity(i.item_id) for i in result.items] == [0, 0]
    seen = runtime.profiles.seen_items(runtime.profiles.canonical_key("u0"))
    assert not seen & {i.item_id for i in result.items}


def test_new_events_fold_in_without_retraining(runtime: Runtime) -> None:
    assert not runtime.recommendations.for_user("newcomer", k=3).personalized
    runtime.ingest.ingest([{"type": "view", "user_id": "newcomer", "item_id": f"i{i:02d}"} for i in (1, 3, 5)])
    runtime.catch_up()
    result = runtime.recommendations.for_user("newcomer", k=3)
    assert result.personalized
    assert all(parity(i.item_id) == 1 for i in result.items)
    assert {"i01", "i03", "i05"}.isdisjoint(i.item_id for i in result.items)


def test_a_new_promotion_is_swapped_in_and_rollback_returns_to_the_previous(runtime: Runtime, tmp_path: Path) -> None:
    data_dir = runtime.settings.data_dir
    invoke("train", "--model", "itemknn", "--data-dir", data_dir)  # v2, promoted
    cache = PromotedModelCache(registry_for(runtime.engine, runtime.settings), check_seconds=0.0)
    deadline = time.monotonic() + 10
    while (cache.current() is None or cache.current().version != "v2") and time.monotonic() < deadline:
        time.sleep(0.05)  # the load happens in the background; requests meanwhile get the old model
    assert cache.current().version == "v2"
    invoke("models", "rollback", "--data-dir", data_dir)
    assert cache.refresh().version == "v1"


def test_similar_items_come_from_the_model_and_unknown_items_are_404(runtime: Runtime) -> None:
    from attune.errors import NotFound

    answer = runtime.recommendations.similar_to("i00", k=3)
    assert answer["model"] == "ease:v1"
    assert [parity(i["item_id"]) for i in answer["items"]] == [0, 0, 0]
    assert "i00" not in {i["item_id"] for i in answer["items"]}
    with pytest.raises(NotFound):
        runtime.recommendations.similar_to("never-heard-of", k=3)
    # A catalog item the model has not seen yet gets popular items, labelled as such.
    runtime.catalog.upsert([("brand-new", {"title": "New"})])
    fresh = runtime.recommendations.similar_to("brand-new", k=2)
    assert fresh["model"] == "popular" and len(fresh["items"]) == 2
    assert fresh["items"][0]["reason"].startswith("popular")
