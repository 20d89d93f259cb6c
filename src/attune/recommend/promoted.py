"""Serving the promoted model: checked periodically, loaded in the background, swapped atomically."""

from __future__ import annotations

import logging
import threading
import time

from attune.training.artifacts import ModelBundle, load_artifact
from attune.training.registry import ModelRegistry

log = logging.getLogger(__name__)


class PromotedModelCache:
    """Holds the bundle of the promoted version for serving.

    Every ``check_seconds`` a request looks at the registry (one indexed query). When another
    version has been promoted (or rolled back to), a background thread loads its artifact
    while requests keep using the current bundle; then one reference assignment swaps it in.
    So a promotion never fails a request, and requests never wait for a load.
    """

    def __init__(self, registry: ModelRegistry, check_seconds: float = 5.0) -> None:
        self.registry = registry
        self.check_seconds = check_seconds
        self._bundle: ModelBundle | None = None
        self._wanted: str | None = None
        self._checked_at = float("-inf")
        self._loading = threading.Lock()

    def current(self) -> ModelBundle | None:
        """The bundle to serve with now (``None`` before any promotion)."""
        if time.monotonic() - self._checked_at >= self.check_seconds:
            self._checked_at = time.monotonic()
            self._check()
        return self._bundle

    def refresh(self) -> ModelBundle | None:
        """Check the registry and load a newly promoted version in this thread (CLI, tests)."""
        promoted = self.registry.promoted()
        if promoted is None:
            self._bundle = None
        elif self._bundle is None or self._bundle.version != promoted.version:
            self._load(promoted.version, promoted.artifact_path)
        return self._bundle

    def _check(self) -> None:
        try:
            promoted = self.registry.promoted()
        except Exception:  # noqa: BLE001 - serving goes on with what it has
            log.exception("could not read the model registry")
            return
        if promoted is None:
            self._bundle = None
            return
        if (self._bundle is not None and self._bundle.version == promoted.version) or self._wanted == promoted.version:
            return
        if not self._loading.acquire(blocking=False):
            return
        self._wanted = promoted.version
        thread = threading.Thread(
            target=self._load_then_release, args=(promoted.version, promoted.artifact_path), daemon=True
        )
        thread.start()

    def _load_then_release(self, version: str, path: str) -> None:
        try:
            self._load(version, path)
        finally:
            self._wanted = None
            self._loading.release()

    def _load(self, version: str, path: str) -> None:
        try:
            bundle = load_artifact(path, expected_version=version)
        except Exception:  # noqa: BLE001 - a bad artifact must not take serving down
            log.exception("could not load model %s from %s; serving stays on the previous model", version, path)
            return
        self._bundle = bundle  # a single reference assignment: requests see old or new, never half
        log.info("serving model %s (%s)", version, bundle.name)
