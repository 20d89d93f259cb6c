"""Fitted models on disk: ``DATA_DIR/models/<version>/model.pkl`` beside a JSON manifest.

The manifest names the version and the SHA-256 of the pickle; loading refuses an artifact
whose manifest names another version or whose pickle does not hash to the recorded value
(a half-written, swapped or corrupted file), instead of serving something unexpected.
Pickles execute code when loaded, so the models directory must only be writable by Attune.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from attune import __version__
from attune.errors import AttuneError, NotFound
from attune.recommend.data import Interactions
from attune.recommend.models.base import Recommender

MODEL_FILE = "model.pkl"
MANIFEST_FILE = "manifest.json"
FORMAT = 1


class ArtifactError(AttuneError):
    """An artifact is missing, unreadable or does not match its manifest."""

    status = 409
    title = "Model artifact refused"


@dataclass
class ModelBundle:
    """What is pickled: the fitted model and what serving needs beside it.

    ``popular_items``/``popular_scores`` are the training data's most popular items (distinct
    users per item), the non-personalized fallback for people the model has never seen.
    """

    version: str
    name: str
    params: dict[str, Any]
    model: Recommender
    popular_items: np.ndarray
    popular_scores: np.ndarray
    trained_at: float = field(default_factory=time.time)

    def fallback(self, k: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        """The ``k`` most popular training items not in ``exclude``."""
        out: list[tuple[str, float]] = []
        for item_id, score in zip(self.popular_items, self.popular_scores, strict=True):
            if item_id in exclude:
                continue
            out.append((str(item_id), float(score)))
            if len(out) >= k:
                break
        return out


def popularity_of(data: Interactions, limit: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The ``limit`` items most users interacted with, most popular first (ties by id)."""
    counts = np.asarray(data.matrix(binary=True).sum(axis=0)).ravel()
    order = np.lexsort((data.item_ids, -counts))[:limit]
    return data.item_ids[order].astype(str), counts[order].astype(np.float64)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_artifact(bundle: ModelBundle, directory: Path) -> Path:
    """Write ``bundle`` into ``directory`` (created); the manifest is written last, atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    partial = directory / (MODEL_FILE + ".partial")
    joblib.dump(bundle, partial)
    os.replace(partial, model_path)
    manifest = {
        "format": FORMAT,
        "version": bundle.version,
        "name": bundle.name,
        "params": bundle.params,
        "sha256": _sha256(model_path),
        "bytes": model_path.stat().st_size,
        "attune_version": __version__,
        "created_at": bundle.trained_at,
    }
    tmp = directory / (MANIFEST_FILE + ".partial")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, directory / MANIFEST_FILE)
    return directory


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the artifact in ``directory``."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise NotFound(f"no model artifact at {directory} ({MANIFEST_FILE} is missing)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"the manifest {path} cannot be read: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"the manifest {path} is not an Attune model manifest (format {FORMAT})")
    return manifest


def load_artifact(directory: Path | str, expected_version: str | None = None) -> ModelBundle:
    """The bundle in ``directory``, after checking its manifest's version and hash."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if expected_version is not None and manifest.get("version") != expected_version:
        raise ArtifactError(
            f"the artifact in {directory} is version {manifest.get('version')!r}, not {expected_version!r}"
        )
    model_path = directory / MODEL_FILE
    if not model_path.is_file():
        raise ArtifactError(f"the artifact in {directory} has a manifest but no {MODEL_FILE}")
    if _sha256(model_path) != manifest.get("sha256"):
        raise ArtifactError(
            f"{model_path} does not match the hash in its manifest: it was changed or damaged after training"
        )
    try:
        bundle = joblib.load(model_path)
    except Exception as exc:
        raise ArtifactError(f"{model_path} cannot be loaded: {exc}") from exc
    if not isinstance(bundle, ModelBundle) or bundle.version != manifest.get("version"):
        raise ArtifactError(f"{model_path} does not hold the model its manifest describes")
    return bundle
