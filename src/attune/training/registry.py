"""The registry of trained model versions, with promotion and rollback.

Lifecycle of a version: ``building`` (reserved while its artifact is written) -> ``ready`` ->
``promoted`` (the one version serving uses) -> ``retired`` (promoted once, replaced since);
``failed`` when the artifact could not be written. At most one version is ``promoted``: the
store enforces it with a partial unique index, and every change happens in one transaction.

Every promotion and rollback is appended to ``model_promotions``. Replaying that history as a
stack (a promotion pushes, a rollback pops) gives what a rollback returns to: the version
promoted before the current one, and again the one before that on a second rollback.

Serving: ``p = registry.promoted()`` (one indexed query, cheap to poll) names the version and
its artifact directory; ``load_artifact(p.artifact_path, expected_version=p.version)`` loads
it. A server polls ``promoted()`` and, when the version changes, loads the new bundle first
and then swaps one reference, so requests in flight finish on the old model.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from attune.errors import AttuneError, NotFound, ValidationFailed
from attune.storage.tables import model_promotions, model_versions

PROMOTABLE = frozenset({"ready", "retired", "promoted"})
_RESERVE_ATTEMPTS = 5


class RegistryConflict(AttuneError):
    """The registry is not in a state that allows the change (nothing to roll back to, a race)."""

    status = 409
    title = "Conflict"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version."""

    version: str
    name: str
    params: dict[str, Any]
    status: str
    data_from: float | None
    data_to: float | None
    n_interactions: int
    n_users: int
    n_items: int
    metrics: dict[str, Any]
    details: dict[str, Any]
    artifact_path: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class PromotedModel:
    """What serving needs to load the promoted version."""

    version: str
    name: str
    artifact_path: str


@dataclass(frozen=True)
class Promotion:
    """One entry of the promotion history."""

    seq: int
    action: str
    version: str
    previous_version: str | None
    actor: str
    at: float


def _version_of(row: Any, models_dir: Path) -> ModelVersion:
    return ModelVersion(
        version=row["version"],
        name=row["name"],
        params=dict(row["params"] or {}),
        status=row["status"],
        data_from=row["data_from"],
        data_to=row["data_to"],
        n_interactions=row["n_interactions"],
        n_users=row["n_users"],
        n_items=row["n_items"],
        metrics=dict(row["metrics"] or {}),
        details=dict(row["details"] or {}),
        artifact_path=_resolve(row["artifact_path"], models_dir),
        created_at=row["created_at"],
    )


def _resolve(stored: str | None, models_dir: Path) -> str | None:
    """An artifact path as stored (relative to ``DATA_DIR/models``, so a data directory can move
    and roles on other machines can mount it elsewhere) made absolute."""
    if stored is None:
        return None
    return str((models_dir / stored).resolve())


class ModelRegistry:
    """Reads and changes the registry tables; artifacts live under ``models_dir``."""

    def __init__(self, engine: Engine, models_dir: Path) -> None:
        self.engine = engine
        self.models_dir = Path(models_dir)

    # -- registering -------------------------------------------------------------------
    def reserve(
        self,
        name: str,
        params: dict[str, Any],
        *,
        data_from: float | None,
        data_to: float | None,
        n_interactions: int,
        n_users: int,
        n_items: int,
        metrics: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> str:
        """Insert a ``building`` version and return its id (``v1``, ``v2``, …)."""
        for _ in range(_RESERVE_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    seq = (
                        int(conn.execute(select(func.coalesce(func.max(model_versions.c.seq), 0))).scalar())
                        + 1
                    )
                    version = f"v{seq}"
                    conn.execute(
                        insert(model_versions).values(
                            version=version,
                            seq=seq,
                            name=name,
                            params=params,
                            status="building",
                            data_from=data_from,
                            data_to=data_to,
                            n_interactions=n_interactions,
                            n_users=n_users,
                            n_items=n_items,
                            metrics=metrics or {},
                            details=details or {},
                            artifact_path=version,  # relative to the models directory
                            created_at=time.time(),
                        )
                    )
                return version
            except IntegrityError:
                continue  # another trainer took this number at the same moment: take the next
        raise RegistryConflict("could not reserve a version number; other trainings keep taking them, retry")

    def mark_ready(self, version: str) -> ModelVersion:
        """The artifact is written: the version may be promoted."""
        return self._set_status(version, "ready", expect={"building"})

    def mark_failed(self, version: str, reason: str) -> None:
        """The version cannot be used (its artifact could not be written)."""
        with self.engine.begin() as conn:
            current = self._get(conn, version)
            details = {**current.details, "failure": reason}
            conn.execute(
                update(model_versions)
                .where(model_versions.c.version == version)
                .values(status="failed", details=details)
            )

    def _set_status(self, version: str, status: str, expect: set[str]) -> ModelVersion:
        with self.engine.begin() as conn:
            current = self._get(conn, version)
            if current.status not in expect:
                raise RegistryConflict(
                    f"version {version} is {current.status}, not {' or '.join(sorted(expect))}"
                )
            conn.execute(
                update(model_versions).where(model_versions.c.version == version).values(status=status)
            )
            return self._get(conn, version)

    # -- reading -----------------------------------------------------------------------
    def _get(self, conn: Connection, version: str) -> ModelVersion:
        row = (
            conn.execute(select(model_versions).where(model_versions.c.version == version)).mappings().first()
        )
        if row is None:
            raise NotFound(f"there is no model version {version!r} (see `attune models list`)")
        return _version_of(row, self.models_dir)

    def get(self, version: str) -> ModelVersion:
        """One version, or :class:`NotFound`."""
        with self.engine.connect() as conn:
            return self._get(conn, version)

    def list(self) -> list[ModelVersion]:
        """Every version, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(model_versions).order_by(model_versions.c.seq.desc())).mappings().all()
        return [_version_of(r, self.models_dir) for r in rows]

    def promoted(self) -> PromotedModel | None:
        """The promoted version (id, model name, artifact directory), or None before any promotion."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(model_versions.c.version, model_versions.c.name, model_versions.c.artifact_path).where(
                    model_versions.c.status == "promoted"
                )
            ).first()
        return PromotedModel(row[0], row[1], _resolve(row[2], self.models_dir)) if row is not None else None

    def history(self) -> list[Promotion]:
        """Every promotion and rollback, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(model_promotions).order_by(model_promotions.c.seq)).mappings().all()
        return [
            Promotion(r["seq"], r["action"], r["version"], r["previous_version"], r["actor"], r["at"])
            for r in rows
        ]

    # -- promotion ---------------------------------------------------------------------
    def promote(self, version: str, actor: str = "cli") -> ModelVersion:
        """Make ``version`` the one serving uses; promoting the promoted version changes nothing."""
        with self.engine.begin() as conn:
            target = self._get(conn, version)
            if target.status == "promoted":
                return target
            if target.status not in PROMOTABLE:
                raise ValidationFailed(
                    f"version {version} is {target.status}; only ready or retired versions can be promoted"
                )
            self._check_artifact(target)
            current = self._current(conn)
            self._switch(conn, current, version)
            self._record(conn, "promote", version, current, actor)
            return self._get(conn, version)

    def rollback(self, actor: str = "cli") -> ModelVersion:
        """Promote again the version that was promoted before the current one."""
        with self.engine.begin() as conn:
            stack = self._stack(conn)
            current = self._current(conn)
            if current is None or len(stack) < 2:
                only = f"; {current} is the only version promoted so far" if current else ""
                raise RegistryConflict(f"there is no earlier promoted version to roll back to{only}")
            target = self._get(conn, stack[-2])
            self._check_artifact(target)
            self._switch(conn, current, target.version)
            self._record(conn, "rollback", target.version, current, actor)
            return self._get(conn, target.version)

    def _current(self, conn: Connection) -> str | None:
        return conn.execute(
            select(model_versions.c.version).where(model_versions.c.status == "promoted").with_for_update()
        ).scalar()

    def _stack(self, conn: Connection) -> list[str]:
        stack: list[str] = []
        for action, version in conn.execute(
            select(model_promotions.c.action, model_promotions.c.version).order_by(model_promotions.c.seq)
        ):
            if action == "promote":
                stack.append(version)
            elif stack:
                stack.pop()
        return stack

    def _switch(self, conn: Connection, current: str | None, version: str) -> None:
        try:
            if current is not None:
                conn.execute(
                    update(model_versions).where(model_versions.c.version == current).values(status="retired")
                )
            conn.execute(
                update(model_versions).where(model_versions.c.version == version).values(status="promoted")
            )
        except IntegrityError as exc:
            raise RegistryConflict("another promotion happened at the same moment; retry") from exc

    def _record(self, conn: Connection, action: str, version: str, previous: str | None, actor: str) -> None:
        conn.execute(
            insert(model_promotions).values(
                action=action, version=version, previous_version=previous, actor=actor, at=time.time()
            )
        )

    def _check_artifact(self, target: ModelVersion) -> None:
        if not target.artifact_path or not (Path(target.artifact_path) / "manifest.json").is_file():
            raise ValidationFailed(
                f"version {target.version} cannot be promoted: its artifact is missing from {target.artifact_path}"
            )
