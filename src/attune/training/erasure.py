"""Erasure of a person from stored model artifacts (right to be forgotten).

Trained models keep per-person state: the person's id in ``user_ids_``/``user_index_``, their
interaction row (the items they saw, ``user_items_``) and its recency ranks, and for ALS the
learned user factors inside the ``implicit`` model. :class:`ModelArtifactsEraser` removes
those rows from every stored version under ``DATA_DIR/models`` (components of hybrids and
re-rankers included), rewrites the pickle and its manifest (new SHA-256, so the artifact still
loads and verifies) and leaves versions that never saw the person untouched.

What it does not undo: the person's past influence on item-side parameters (item factors,
item-item similarities, popularity counts). Those hold no identifier; retraining removes
the influence too.

Registered with the privacy erasure registry by ``Runtime.open``::

    register_model_erasure(privacy.erasure, models_dir(settings))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attune.recommend.models.base import Recommender
from attune.training.artifacts import MANIFEST_FILE, MODEL_FILE, ArtifactError, load_artifact, save_artifact

log = logging.getLogger(__name__)

#: Ids shorter than this are not searched for in the rewritten bytes (a short id can occur in
#: any binary data by chance; longer ones cannot).
_RESIDUE_MIN_BYTES = 8


def _nested(value: Any) -> Iterator[Recommender]:
    """Models held inside ``value`` (a model, or a dict/list/tuple of them)."""
    if isinstance(value, Recommender):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _nested(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _nested(item)


def forget_users(model: Recommender, user_ids: set[str]) -> int:
    """Remove every per-user row of ``user_ids`` from ``model`` and its component models.

    Returns how many user rows went (a person counted once per model holding them).
    Scoring is unaffected for everybody else: rows are addressed through ``user_index_``,
    which is rebuilt.
    """
    removed = 0
    for name, value in list(vars(model).items()):
        if name.startswith("__"):
            continue
        for inner in _nested(value):
            if inner is not model:
                removed += forget_users(inner, user_ids)
    index = getattr(model, "user_index_", None)
    if not index:
        return removed
    drop = [i for user, i in index.items() if user in user_ids]
    if not drop:
        return removed
    n = len(model.user_ids_)
    keep = np.ones(n, dtype=bool)
    keep[drop] = False
    model.user_ids_ = np.asarray(model.user_ids_)[keep]
    model.user_index_ = {str(u): i for i, u in enumerate(model.user_ids_)}
    for attr in ("user_items_", "user_ranks_"):
        rows = getattr(model, attr, None)
        if rows is not None and rows.shape[0] == n:
            setattr(model, attr, rows[keep])
    # ALS keeps the fitted ``implicit`` model (serving folds users in with it): its learned
    # user factors are one row per training user.
    inner = getattr(model, "model_", None)
    factors = getattr(inner, "user_factors", None)
    if isinstance(factors, np.ndarray) and factors.shape[0] == n:
        inner.user_factors = np.ascontiguousarray(factors[keep])
        if hasattr(inner, "_user_norms"):
            inner._user_norms = None  # derived from the factors; recomputed on demand
    return removed + len(drop)


def _residue(path: Path, ids: set[str]) -> bool:
    """Whether any (long enough) id still occurs in ``path`` as UTF-8 or as numpy's UTF-32."""
    data = path.read_bytes()
    for text in ids:
        for encoded in (text.encode("utf-8", "surrogatepass"), text.encode("utf-32-le", "surrogatepass")):
            if len(encoded) >= _RESIDUE_MIN_BYTES and encoded in data:
                return True
    return False


@dataclass
class ModelArtifactsEraser:
    """Erasure-registry eraser (files phase) for every model version under ``models_dir``."""

    models_dir: Path
    name: str = "model_artifacts"
    phase: str = "files"

    def erase(self, request: Any) -> int:
        """Remove the person from every artifact; return how many user rows went."""
        ids = set(request.subject_keys) | set(request.stored_ids)
        removed = 0
        for manifest in sorted(Path(self.models_dir).glob(f"*/{MANIFEST_FILE}")):
            directory = manifest.parent
            try:
                bundle = load_artifact(directory)
            except ArtifactError:
                # An artifact that fails its hash check is never loaded (pickles run code);
                # serving refuses it too. Say so: it may still hold the person.
                log.error("erasure: model artifact %s cannot be verified; it was not cleaned", directory)
                continue
            count = forget_users(bundle.model, ids)
            if not count:
                continue
            save_artifact(bundle, directory)  # new pickle first, then its manifest (new hash)
            if _residue(directory / MODEL_FILE, ids):
                log.error("erasure: model artifact %s still holds an identifier after cleaning", directory)
            removed += count
        return removed


def register_model_erasure(erasure: Any, models_dir: Path) -> ModelArtifactsEraser:
    """Register the model-artifact eraser with a privacy erasure service; return it."""
    eraser = ModelArtifactsEraser(Path(models_dir))
    erasure.register(eraser)
    return eraser
