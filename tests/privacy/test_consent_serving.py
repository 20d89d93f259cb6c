"""Personalization consent enforced in serving, answered from memory, effective on the next request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from attune.api.app import create_app
from attune.cli.main import app
from attune.privacy.consent_view import ConsentView
from attune.runtime import Runtime
from attune.settings import load_settings


def invoke(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.fixture
def trained_dir(tmp_path: Path, parity_checkerboard_csv: Path) -> Path:
    """A data directory with a checkerboard imported and an EASE model promoted."""
    data_dir = tmp_path / "data"
    invoke("import", "interactions", parity_checkerboard_csv, "--data-dir", data_dir)
    invoke("train", "--model", "ease", "--data-dir", data_dir)
    return data_dir


def open_runtime(data_dir: Path, **overrides) -> Runtime:
    runtime = Runtime.open(load_settings(data_dir=data_dir, **overrides))
    runtime.recommendations.models.refresh()
    return runtime


@pytest.fixture
def served(trained_dir: Path) -> Iterator[tuple[Runtime, TestClient]]:
    runtime = open_runtime(trained_dir)
    _, secret = runtime.keys.create(frozenset({"admin"}), name="admin")
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {secret}"}) as client:
        yield runtime, client
    runtime.close()


def recommend(client: TestClient, user_id: str) -> dict:
    answer = client.get(f"/v1/users/{user_id}/recommendations", params={"k": 3})
    assert answer.status_code == 200, answer.text
    return answer.json()


def set_consent(client: TestClient, user_id: str, state: str) -> None:
    answer = client.put(f"/v1/users/{user_id}/consent",
                        json={"purposes": {"personalization": state}, "source": "settings-page"})
    assert answer.status_code == 200, answer.text


def test_withdrawal_takes_effect_on_the_very_next_request(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    first = recommend(client, "u0")
    assert first["personalized"] is True and first["model"] == "ease:v1"
    assert recommend(client, "u0") == first  # answered again (from memory)
    set_consent(client, "u0", "withdrawn")
    after = recommend(client, "u0")
    assert after["personalized"] is False
    assert recommend(client, "u2")["personalized"] is True  # nobody else is affected
    set_consent(client, "u0", "granted")
    assert recommend(client, "u0")["personalized"] is True
    set_consent(client, "u0", "denied")
    assert recommend(client, "u0")["personalized"] is False


def test_consent_event_withdrawal_reaches_serving(served: tuple[Runtime, TestClient]) -> None:
    runtime, client = served
    assert recommend(client, "u1")["personalized"] is True
    answer = client.post("/v1/events?wait=true", json={"events": [
        {"type": "consent", "user_id": "u1", "properties": {"purposes": {"personalization": "withdrawn"},
                                                            "source": "banner"}}]})
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    assert recommend(client, "u1")["personalized"] is False


def test_fold_in_respects_consent(served: tuple[Runtime, TestClient]) -> None:
    runtime, client = served
    set_consent(client, "newcomer", "withdrawn")
    client.post("/v1/events?wait=true", json={"events": [
        {"type": "view", "user_id": "newcomer", "item_id": f"i{i:02d}"} for i in (1, 3, 5)]})
    assert recommend(client, "newcomer")["personalized"] is False
    set_consent(client, "newcomer", "granted")
    assert recommend(client, "newcomer")["personalized"] is True


def test_opt_in_mode_needs_a_grant(trained_dir: Path) -> None:
    runtime = open_runtime(trained_dir, privacy={"purpose_modes": {"personalization": "opt-in"}})
    try:
        assert not runtime.recommendations.for_user("u0", k=3).personalized
        runtime.privacy.consent.set("u0", {"personalization": "granted"}, "form")
        assert runtime.recommendations.for_user("u0", k=3).personalized
        assert not runtime.recommendations.for_user("u2", k=3).personalized
    finally:
        runtime.close()


def test_another_process_withdrawal_is_found_by_the_poll(trained_dir: Path) -> None:
    serving = open_runtime(trained_dir)
    other = open_runtime(trained_dir)  # stands in for `attune` run by another process
    try:
        view = serving.recommendations.consent
        assert isinstance(view, ConsentView)
        view.poll_seconds = float("inf")  # no background poll: this test polls by hand
        assert serving.recommendations.for_user("u0", k=3).personalized
        other.privacy.consent.set("u0", {"personalization": "withdrawn"}, "cli")
        assert view.allows_personalization(serving.subject_keys.user("u0"))  # not seen yet: no query per request
        assert view.poll() is True
        assert not serving.recommendations.for_user("u0", k=3).personalized
        assert view.poll() is False  # nothing new
        assert len(view) == 1  # only people who decided take memory
    finally:
        other.close()
        serving.close()
