"""``attune recommend``: batch top-k for a file of user ids, written as CSV.

Each id is resolved to its canonical subject key (identity stitching included), the key the
model was trained on. Items the person has interacted with are never recommended: those in
the training data and those recorded in the store since. People the model has not seen get
the training data's most popular items, and the summary counts them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select

from attune.errors import BadRequest, NotFound, ValidationFailed
from attune.profiles.identity import SubjectKeys
from attune.storage.tables import identity_links, interactions, profiles
from attune.training.artifacts import ModelBundle, load_artifact
from attune.training.registry import ModelRegistry

#: Longest id accepted (the same limit ingest applies).
MAX_ID_LENGTH = 256
#: Ids looked up per query.
_CHUNK = 500
#: Users ranked per matrix product.
_BATCH_USERS = 1024


@dataclass
class UserFile:
    """The ids read from a user file and the lines that were skipped (with reasons)."""

    ids: list[str]
    skipped: list[str] = field(default_factory=list)
    duplicates: int = 0


@dataclass
class BatchSummary:
    """What ``recommend_to_csv`` wrote."""

    version: str
    model: str
    users: int
    personalized: int
    fallback: int
    rows: int
    out: Path
    skipped: list[str] = field(default_factory=list)
    duplicates: int = 0

    def text(self) -> str:
        """One-paragraph summary for the CLI."""
        head = (
            f"wrote {self.rows:,} recommendations for {self.users:,} users to {self.out} "
            f"with {self.version} ({self.model}):"
        )
        parts = [
            f"{self.personalized:,} from the model, {self.fallback:,} not in the training data (given the most popular items)"
        ]
        if self.duplicates:
            parts.append(f"{self.duplicates:,} repeated ids answered once")
        if self.skipped:
            parts.append(f"{len(self.skipped):,} lines skipped")
        return f"{head} {'; '.join(parts)}"


def read_user_file(path: Path) -> UserFile:
    """User ids from ``path``, one per line (an optional ``user_id`` header; blank lines ignored)."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"the user file {path} does not exist")
    if not path.is_file():
        raise BadRequest(f"{path} is not a file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise BadRequest(f"{path} is not UTF-8 text (line {line})") from exc
    out = UserFile([])
    seen: set[str] = set()
    first_field_only = False
    header_possible = True
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and header_possible:
            header_possible = False
            if line.split(",")[0].strip().lower() in ("user_id", "userid", "user"):
                first_field_only = "," in line  # a CSV export: the id is its first column
                continue
        if first_field_only:
            line = line.split(",")[0].strip()
        if not line:
            continue
        reason = _id_problem(line)
        if reason:
            out.skipped.append(f"line {number}: {reason}")
            continue
        if line in seen:
            out.duplicates += 1
            continue
        seen.add(line)
        out.ids.append(line)
    if not out.ids:
        detail = f" ({len(out.skipped)} lines skipped)" if out.skipped else ""
        raise ValidationFailed(f"{path} holds no valid user id{detail}", errors=out.skipped)
    return out


def _id_problem(user_id: str) -> str | None:
    if len(user_id) > MAX_ID_LENGTH:
        return f"the id is longer than {MAX_ID_LENGTH} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in user_id):
        return "the id contains control characters"
    return None


def load_model(registry: ModelRegistry, version: str | None = None) -> ModelBundle:
    """The bundle of ``version``, or of the promoted version when none is given."""
    if version is None:
        promoted = registry.promoted()
        if promoted is None:
            raise NotFound("no model is promoted yet: run `attune train` first (or pass --model VERSION)")
        return load_artifact(promoted.artifact_path, expected_version=promoted.version)
    entry = registry.get(version)
    if entry.status in ("building", "failed") or not entry.artifact_path:
        raise ValidationFailed(f"version {version} is {entry.status} and has no usable artifact")
    return load_artifact(entry.artifact_path, expected_version=version)


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def resolve_keys(
    engine: Engine, keys: SubjectKeys, user_ids: Sequence[str], model_users: set[str]
) -> dict[str, str]:
    """Raw id -> canonical subject key, as :meth:`ProfileReader.canonical_key` resolves one id.

    A user-id form wins over an anonymous-id form; a key known only to the model (trained on
    data that did not come from this store) is used when the store knows neither form.
    """
    resolved: dict[str, str] = {}
    with engine.connect() as conn:
        for chunk in _chunks(user_ids, _CHUNK):
            candidates = [k for raw in chunk for k in (keys.user(raw), keys.anon(raw))]
            links = dict(
                conn.execute(
                    select(identity_links.c.alias_key, identity_links.c.canonical_key).where(
                        identity_links.c.alias_key.in_(candidates)
                    )
                ).all()
            )
            known = set(
                conn.execute(select(profiles.c.user_key).where(profiles.c.user_key.in_(candidates))).scalars()
            )
            for raw in chunk:
                resolved[raw] = _resolve_one(raw, keys, links, known, model_users)
    return resolved


def _resolve_one(
    raw: str, keys: SubjectKeys, links: dict[str, str], known: set[str], model_users: set[str]
) -> str:
    forms = (keys.user(raw), keys.anon(raw))
    for key in forms:
        if key in links:
            return links[key]
        if key in known:
            return key
    for key in (*forms, raw):
        if key in model_users:
            return key
    return keys.user(raw)


def seen_in_store(engine: Engine, subject_keys: Iterable[str]) -> dict[str, set[str]]:
    """Items each subject has interacted with, as the store holds them now."""
    seen: dict[str, set[str]] = {}
    wanted = sorted(set(subject_keys))
    with engine.connect() as conn:
        for chunk in _chunks(wanted, _CHUNK):
            rows = conn.execute(
                select(interactions.c.user_key, interactions.c.item_id).where(
                    interactions.c.user_key.in_(chunk)
                )
            )
            for key, item_id in rows:
                seen.setdefault(key, set()).add(item_id)
    return seen


def recommend_to_csv(
    engine: Engine,
    bundle: ModelBundle,
    users: UserFile,
    k: int,
    out: Path,
    keys: SubjectKeys | None = None,
) -> BatchSummary:
    """Write ``user_id,rank,item_id,score`` rows (rank from 1) for every id in ``users``."""
    if not 1 <= k <= 1000:
        raise ValidationFailed(f"k: must be between 1 and 1000, got {k}")
    out = Path(out)
    if not out.parent.exists():
        raise NotFound(f"the output directory {out.parent} does not exist")
    keys = keys or SubjectKeys()
    model = bundle.model
    model_users = set(model.user_index_)
    resolved = resolve_keys(engine, keys, users.ids, model_users)
    seen = seen_in_store(engine, resolved.values())
    known = [raw for raw in users.ids if resolved[raw] in model_users]
    unknown = [raw for raw in users.ids if resolved[raw] not in model_users]
    results: dict[str, list[tuple[str, float]]] = {}
    batch = max(16, min(_BATCH_USERS, 20_000_000 // max(len(model.item_ids_), 1)))  # bounds the dense scores
    for chunk in _chunks(known, batch):
        chunk_keys = [resolved[raw] for raw in chunk]
        # Items seen after training are not in the model's rows: ask for enough extra to drop them.
        extra = max((len(seen.get(key, ())) for key in chunk_keys), default=0)
        ids, scores = model.recommend_batch(chunk_keys, k=k + extra)
        for raw, key, row_ids, row_scores in zip(chunk, chunk_keys, ids, scores, strict=True):
            blocked = seen.get(key, set())
            kept = [(i, float(s)) for i, s in zip(row_ids, row_scores, strict=False) if i not in blocked]
            results[raw] = kept[:k]
    for raw in unknown:
        results[raw] = bundle.fallback(k, exclude=seen.get(resolved[raw], set()))
    partial = out.with_name(out.name + ".partial")
    rows = 0
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "rank", "item_id", "score"])
        for raw in users.ids:
            for rank, (item_id, score) in enumerate(results[raw], start=1):
                writer.writerow([raw, rank, item_id, f"{score:.6g}"])
                rows += 1
    os.replace(partial, out)
    return BatchSummary(
        version=bundle.version,
        model=bundle.name,
        users=len(users.ids),
        personalized=len(known),
        fallback=len(unknown),
        rows=rows,
        out=out,
        skipped=users.skipped,
        duplicates=users.duplicates,
    )
