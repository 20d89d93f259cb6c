"""Serving the promoted model: checked periodically, loaded in the background, swapped atomically.

Neither the check nor the load ever runs inside a request: a request only reads one
reference, so the hot path of serving never touches the database for the model.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from attune.recommend.coldstart import ColdStartConfig
from attune.recommend.scoring import ServingModel
from attune.training.artifacts import ModelBundle, load_artifact, read_manifest
from attune.training.registry import ModelRegistry

log = logging.getLogger(__name__)


class PromotedModelCache:
    """Holds the bundle of the promoted version for serving.

    Every ``check_seconds`` a background thread looks at the registry (one indexed query).
    When another version has been promoted (or rolled back to), it loads the artifact and
    prepares it for serving (:class:`~attune.recommend.scoring.ServingModel`: float32 item
    vectors, ANN graphs, group popularity) while requests keep using the current one; then
    one reference assignment swaps it in. So a promotion never fails a request, and requests
    never wait for a load or a registry query.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        check_seconds: float = 5.0,
        *,
        fold_in_min_items: int = 3,
        cold_start: ColdStartConfig | None = None,
    ) -> None:
        self.registry = registry
        self.check_seconds = check_seconds
        self.fold_in_min_items = fold_in_min_items
        self.cold_start = cold_start or ColdStartConfig()
        self._serving: ServingModel | None = None
        self._wanted: str | None = None
        self._checked_at = float("-inf")
        self._checking = threading.Lock()
        self._loading = threading.Lock()

    @property
    def _bundle(self) -> ModelBundle | None:
        serving = self._serving
        return serving.bundle if serving is not None else None

    def current(self) -> ModelBundle | None:
        """The bundle to serve with now (``None`` before any promotion)."""
        serving = self.serving()
        return serving.bundle if serving is not None else None

    def serving(self) -> ServingModel | None:
        """The prepared model to serve with now; starts a background registry check when due."""
        if time.monotonic() - self._checked_at >= self.check_seconds and self._checking.acquire(
            blocking=False
        ):
            self._checked_at = time.monotonic()
            threading.Thread(target=self._check_then_release, daemon=True, name="model-check").start()
        return self._serving

    def _check_then_release(self) -> None:
        try:
            self._check()
        finally:
            self._checking.release()

    def refresh(self) -> ModelBundle | None:
        """Check the registry and load a newly promoted version in this thread (CLI, tests)."""
        promoted = self.registry.promoted()
        if promoted is None:
            self._serving = None
        elif self._bundle is None or self._bundle.version != promoted.version:
            self._load(promoted.version, promoted.artifact_path)
        return self._bundle

    def reload(self) -> None:
        """Load the promoted version again from its artifact, in this thread.

        After an erasure rewrote the artifact, the copy in memory must not keep serving the
        erased person's row.
        """
        if self._serving is None:
            return
        promoted = self.registry.promoted()
        if promoted is None:
            self._serving = None
        else:
            self._load(promoted.version, promoted.artifact_path)

    def _check(self) -> None:
        try:
            promoted = self.registry.promoted()
        except Exception:
            log.exception("could not read the model registry")
            return
        if promoted is None:
            self._serving = None
            return
        if (
            self._bundle is not None and self._bundle.version == promoted.version
        ) or self._wanted == promoted.version:
            return
        if not self._loading.acquire(blocking=False):
            return
        self._wanted = promoted.version
        # Already in a background thread: load here.
        self._load_then_release(promoted.version, promoted.artifact_path)

    def _load_then_release(self, version: str, path: str) -> None:
        try:
            self._load(version, path)
        finally:
            self._wanted = None
            self._loading.release()

    def _load(self, version: str, path: str) -> None:
        try:
            bundle = load_artifact(path, expected_version=version)
            try:
                data_to = self.registry.get(version).data_to
            except Exception:  # noqa: BLE001 - without it every newer event counts as fresh
                data_to = None
            serving = ServingModel(
                bundle, data_to, fold_in_min_items=self.fold_in_min_items, cold_start=self.cold_start
            )
        except Exception:
            log.exception(
                "could not load model %s from %s; serving stays on the previous model", version, path
            )
            return
        self._serving = serving  # a single reference assignment: requests see old or new, never half
        log.info("serving model %s (%s)", version, bundle.name)
        if serving.wants_ann:
            try:
                tag = str(read_manifest(Path(path)).get("sha256", ""))[:16]
                serving.build_ann(Path(path), tag)
                log.info("model %s now answers top-k from its ANN graphs", version)
            except Exception:
                log.exception("could not build the ANN graphs of model %s", version)
