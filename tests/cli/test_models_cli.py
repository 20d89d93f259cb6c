"""The offline loop from the command line: import, train, recommend, evaluate, models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attune.cli.main import app


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def parity(identifier: str) -> int:
    return int(identifier[1:]) % 2


@pytest.fixture
def imported(tmp_path: Path, parity_checkerboard_csv: Path) -> Path:
    """A data directory holding a parity checkerboard: each user saw 8 of the 10 items of their parity."""
    path = parity_checkerboard_csv
    data_dir = tmp_path / "data"
    result = invoke("import", "interactions", path, "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    return data_dir


def test_train_recommend_evaluate_and_the_registry(imported: Path, tmp_path: Path) -> None:
    trained = invoke("train", "--model", "ease", "--data-dir", imported)
    assert trained.exit_code == 0, trained.output
    assert trained.stdout.strip().splitlines()[-1] == "v1"
    assert "promoted v1: ease" in trained.output and "recall" in trained.output

    users = tmp_path / "users.txt"
    users.write_text("u0\nu1\nstranger\n")
    out = tmp_path / "recs.csv"
    recommended = invoke("recommend", "--users", users, "-k", "3", "--out", out, "--data-dir", imported)
    assert recommended.exit_code == 0, recommended.output
    assert "2 from the model, 1 not in the training data" in recommended.output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["rank"] for r in rows if r["user_id"] == "u0"] == ["1", "2", "3"]
    for user in ("u0", "u1"):
        top = [r["item_id"] for r in rows if r["user_id"] == user][:2]
        assert all(parity(item) == parity(user) for item in top)  # the two unseen items of their parity
    assert len([r for r in rows if r["user_id"] == "stranger"]) == 3

    second = invoke("train", "--model", "popular", "--no-promote", "--data-dir", imported)
    assert second.exit_code == 0 and "registered (not promoted) v2" in second.output
    listed = invoke("models", "list", "--data-dir", imported)
    assert "v2" in listed.output and "ready" in listed.output and "promoted" in listed.output
    assert invoke("models", "promote", "v2", "--data-dir", imported).exit_code == 0
    rolled = invoke("models", "rollback", "--data-dir", imported)
    assert rolled.exit_code == 0 and "rolled back to v1 (ease)" in rolled.output

    report_dir = tmp_path / "report"
    evaluated = invoke(
        "evaluate", "--split", "holdout", "-k", "5,10", "--out", report_dir, "--data-dir", imported
    )
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads((report_dir / "report.json").read_text())
    labels = [r["label"] for r in figures["results"]]
    assert labels == ["v2 (popular)", "v1 (ease)"]  # the registered configurations, newest first
    ease = figures["results"][1]
    assert ease["metrics"]["recall@10"] == 1.0
    assert ease["metrics"]["ndcg@10"] > figures["results"][0]["metrics"]["ndcg@10"]
    assert "data:image/png;base64," in (report_dir / "report.html").read_text()


def test_auto_tunes_and_registers_the_winner(imported: Path) -> None:
    result = invoke("train", "--model", "auto", "--trials", "2", "--timeout", "30", "--data-dir", imported)
    assert result.exit_code == 0, result.output
    assert "validation NDCG@10" in result.output and "popular" in result.output
    assert result.stdout.strip().splitlines()[-1] == "v1"


def test_evaluate_named_models_on_kfold(imported: Path, tmp_path: Path) -> None:
    result = invoke(
        "evaluate",
        "--models",
        "popular,itemknn",
        "--split",
        "kfold",
        "--out",
        tmp_path / "r",
        "--data-dir",
        imported,
    )
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "r" / "report.json").read_text())
    assert figures["split"] == "kfold" and len(figures["folds"]) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "--model", "nope"), "unknown model 'nope'"),
        (("train", "--since", "yesterday"), "since: "),
        (("recommend", "--users", "missing.txt"), "does not exist"),
        (("recommend", "--users", "USERS", "--model", "v9"), "no model version 'v9'"),
        (("recommend", "--users", "USERS", "-k", "0"), "k: must be between 1 and 1000"),
        (("evaluate", "--split", "random"), "split: unknown split 'random'"),
        (("evaluate", "-k", "ten"), "k: 'ten' is not a whole number"),
        (("evaluate", "--models", "v7,ease"), "no model version 'v7'"),
        (("models", "promote", "v4"), "no model version 'v4'"),
        (("models", "rollback"), "no earlier promoted version"),
    ],
)
def test_bad_input_gets_one_clear_line(
    imported: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u1\n")
    args = tuple(str(users) if a == "USERS" else str(tmp_path / a) if a == "missing.txt" else a for a in args)
    result = invoke(*args, "--data-dir", imported)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_training_an_empty_installation_says_how_to_get_data(tmp_path: Path) -> None:
    result = invoke("train", "--model", "ease", "--data-dir", tmp_path / "empty")
    assert result.exit_code == 1
    assert "no interactions to train on" in result.output and "attune import interactions" in result.output
    assert "Traceback" not in result.output
