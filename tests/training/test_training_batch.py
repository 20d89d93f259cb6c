"""Batch recommendations: the user file, seen-item exclusion, identity stitching, the fallback."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from planted import START, parity

from attune.errors import BadRequest, NotFound, ValidationFailed
from attune.runtime import Runtime
from attune.training.batch import UserFile, load_model, read_user_file, recommend_to_csv
from attune.training.trainer import registry_for, train


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read_recs(path: Path) -> dict[str, list[tuple[int, str, float]]]:
    out: dict[str, list[tuple[int, str, float]]] = {}
    with path.open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["user_id", "rank", "item_id", "score"]
        for row in reader:
            out.setdefault(row["user_id"], []).append((int(row["rank"]), row["item_id"], float(row["score"])))
    return out


def test_user_file_skips_blank_header_repeats_and_bad_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "users.txt", "user_id\nu1\n\n  u2  \nu1\n" + "x" * 300 + "\nbad\x01id\n")
    users = read_user_file(path)
    assert users.ids == ["u1", "u2"] and users.duplicates == 1
    assert users.skipped == [
        "line 6: the id is longer than 256 characters",
        "line 7: the id contains control characters",
    ]


def test_a_csv_export_uses_its_first_column(tmp_path: Path) -> None:
    assert read_user_file(write(tmp_path / "u.csv", "user_id,name\nu1,Ann\nu2,Bo\n")).ids == ["u1", "u2"]


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, NotFound, "does not exist"),
        ("", ValidationFailed, "holds no valid user id"),
        ("\n\nuser_id\n", ValidationFailed, "holds no valid user id"),
        ("bad\x02\n", ValidationFailed, r"no valid user id \(1 lines skipped\)"),
        (b"\xff\xfeu1\n", BadRequest, "not UTF-8 text"),
    ],
    ids=["missing", "empty", "only-header", "only-bad", "binary"],
)
def test_unusable_user_files_get_clear_errors(
    tmp_path: Path, content: str | bytes | None, error: type, message: str
) -> None:
    path = tmp_path / "users.txt"
    if content is not None:
        write(path, content)
    with pytest.raises(error, match=message):
        read_user_file(path)


def test_a_directory_is_not_a_user_file(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="is not a file"):
        read_user_file(tmp_path)


def test_recommendations_follow_the_planted_parity_and_skip_seen_items(
    planted_runtime: Runtime, tmp_path: Path
) -> None:
    runtime = planted_runtime
    train(runtime.engine, runtime.settings, "ease")
    # After training, u0 sees one more even item: it must not be recommended either.
    history = runtime.profiles.seen_items("u:u0")
    fresh = next(f"i{i:02d}" for i in range(0, 20, 2) if f"i{i:02d}" not in history)
    runtime.ingest.ingest([{"type": "view", "user_id": "u0", "item_id": fresh, "timestamp": START + 10**6}])
    runtime.catch_up()
    bundle = load_model(registry_for(runtime.engine, runtime.settings))
    out = tmp_path / "recs.csv"
    summary = recommend_to_csv(
        runtime.engine, bundle, UserFile(["u0", "u1", "ghost"]), 3, out, runtime.subject_keys
    )
    recs = read_recs(out)
    assert (summary.users, summary.personalized, summary.fallback, summary.rows) == (3, 2, 1, 9)
    for user in ("u0", "u1"):
        ranks = recs[user]
        assert [r for r, _, _ in ranks] == [1, 2, 3]
        seen = runtime.profiles.seen_items(f"u:{user}")
        assert not {i for _, i, _ in ranks} & seen
        # Each has 1 unseen item of its parity (2 for u1): those come first.
        unseen_own = [
            i for i in (f"i{n:02d}" for n in range(20)) if parity(i) == parity(user) and i not in seen
        ]
        assert 1 <= len(unseen_own) <= 3
        assert {i for _, i, _ in ranks[: len(unseen_own)]} == set(unseen_own)
        scores = [s for _, _, s in ranks]
        assert scores == sorted(scores, reverse=True)
    assert fresh not in {i for _, i, _ in recs["u0"]}
    assert [i for _, i, _ in recs["ghost"]] == [i for i, _ in bundle.fallback(3)]


def test_ids_resolve_through_identity_stitching(planted_runtime: Runtime, tmp_path: Path) -> None:
    runtime = planted_runtime
    # A device that later logs in as u3: asking for the device id answers for u3.
    runtime.ingest.ingest(
        [{"type": "identify", "user_id": "u3", "anonymous_id": "device-9", "timestamp": START}]
    )
    runtime.catch_up()
    train(runtime.engine, runtime.settings, "ease")
    bundle = load_model(registry_for(runtime.engine, runtime.settings))
    out = tmp_path / "recs.csv"
    summary = recommend_to_csv(
        runtime.engine, bundle, UserFile(["device-9", "u3"]), 2, out, runtime.subject_keys
    )
    recs = read_recs(out)
    assert summary.personalized == 2
    assert recs["device-9"] == recs["u3"]


def test_without_a_promoted_model_the_error_says_what_to_do(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="run `attune train` first"):
        load_model(registry_for(runtime.engine, runtime.settings))
    with pytest.raises(NotFound, match="no model version 'v3'"):
        load_model(registry_for(runtime.engine, runtime.settings), "v3")


def test_bad_k_and_missing_output_directory(planted_runtime: Runtime, tmp_path: Path) -> None:
    runtime = planted_runtime
    train(runtime.engine, runtime.settings, "popular")
    bundle = load_model(registry_for(runtime.engine, runtime.settings), "v1")
    with pytest.raises(ValidationFailed, match="k: must be between 1 and 1000"):
        recommend_to_csv(runtime.engine, bundle, UserFile(["u0"]), 0, tmp_path / "r.csv")
    with pytest.raises(NotFound, match="output directory"):
        recommend_to_csv(runtime.engine, bundle, UserFile(["u0"]), 3, tmp_path / "no" / "r.csv")
