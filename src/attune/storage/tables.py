"""Table definitions (SQLAlchemy Core). Storage rows stay in storage: repositories
return plain dataclasses or dicts, never these rows.

Subject keys (``user_key``) are produced by :mod:`attune.profiles.identity` and are the
only form in which a person's id is stored, so pseudonymization can change them in one place.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# BigInteger becomes INTEGER on SQLite so the offset is the rowid alias (fast, monotonic).
OffsetType = BigInteger().with_variant(Integer(), "sqlite")

# The append-only event log: offset order is the order consumers see.
events = Table(
    "events",
    metadata,
    Column("offset", OffsetType, primary_key=True, autoincrement=True),
    Column("event_id", String(256), nullable=False),
    Column("type", String(64), nullable=False),
    Column("user_key", String(300)),
    Column("anon_key", String(300)),
    Column("item_id", String(256)),
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("body", LargeBinary, nullable=False),
    UniqueConstraint("event_id", name="uq_events_event_id"),
)
# No per-person index on the log: every append paid for two more B-trees of random keys
# (about half of its time and three quarters of its WAL volume), and only rare per-person
# operations (erasure, export, re-keying) read by person; they scan instead.

# Where each consumer has got to in the log.
consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("scopes", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("revoked_at", Float),
)

items = Table(
    "items",
    metadata,
    Column("item_id", String(256), primary_key=True),
    Column("attributes", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# One row per known subject (a user id or a not-yet-identified anonymous id).
profiles = Table(
    "profiles",
    metadata,
    Column("user_key", String(300), primary_key=True),
    Column("traits", JSON, nullable=False),
    Column("first_seen", Float),
    Column("last_seen", Float),
    Column("event_counts", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Identity stitching: an alias key (an anonymous id, or a user id aliased away) points
# at the canonical subject whose profile holds its history.
identity_links = Table(
    "identity_links",
    metadata,
    Column("alias_key", String(300), primary_key=True),
    Column("canonical_key", String(300), nullable=False),
    Column("linked_at", Float, nullable=False),
    # The log offset of the batch that wrote the link: consumers that follow links (features)
    # ask for "links written after offset N" through an index instead of scanning by time.
    Column("link_offset", BigInteger, nullable=False, server_default="0"),
)
Index("ix_identity_links_canonical", identity_links.c.canonical_key)
Index("ix_identity_links_offset", identity_links.c.link_offset)

# Item interactions per canonical subject: recent activity, seen-item exclusion, training.
interactions = Table(
    "interactions",
    metadata,
    Column("event_offset", OffsetType, primary_key=True, autoincrement=False),
    Column("user_key", String(300), nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("type", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("value", Float),
)
Index("ix_interactions_user_ts", interactions.c.user_key, interactions.c.ts)

# Weighted interaction totals per item and day: the input of time-decayed popularity.
item_daily = Table(
    "item_daily",
    metadata,
    Column("item_id", String(256), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("weight", Float, nullable=False),
    Column("events", Integer, nullable=False),
)

# Import runs, so re-running an import reports what happened before.
import_runs = Table(
    "import_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("source", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("accepted", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    Column("rejected", Integer, nullable=False, default=0),
)

# Trained model versions: configuration, training-data range, held-out metrics, artifact.
# ``status`` is building, ready, promoted, retired or failed; the partial unique index makes
# "at most one promoted version" a property of the store, not only of the code.
model_versions = Table(
    "model_versions",
    metadata,
    Column("version", String(32), primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("data_from", Float),
    Column("data_to", Float),
    Column("n_interactions", Integer, nullable=False),
    Column("n_users", Integer, nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("details", JSON, nullable=False),
    Column("artifact_path", Text),
    Column("created_at", Float, nullable=False),
)
Index(
    "uq_model_versions_promoted",
    model_versions.c.status,
    unique=True,
    sqlite_where=model_versions.c.status == "promoted",
    postgresql_where=model_versions.c.status == "promoted",
)

# Every promotion and rollback, in order: the history a rollback walks back through.
model_promotions = Table(
    "model_promotions",
    metadata,
    Column("seq", OffsetType, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("version", String(32), nullable=False),
    Column("previous_version", String(32)),
    Column("actor", String(200), nullable=False),
    Column("at", Float, nullable=False),
)

# --- privacy (owner: privacy; migration 0004) -------------------------------------------
# Per-person data keys (AES-256), wrapped by a master key. Deleting a row is crypto-shredding:
# every ciphertext made under that key becomes unreadable, wherever copies of it lie.
person_keys = Table(
    "person_keys",
    metadata,
    Column("subject_key", String(300), primary_key=True),
    Column("master_key_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Pseudonymized subjects: the raw id, encrypted under the subject's own data key.
subjects = Table(
    "subjects",
    metadata,
    Column("subject_key", String(300), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("raw_id", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

# The current consent decision per subject and purpose, and every decision ever made.
consent_current = Table(
    "consent_current",
    metadata,
    Column("subject_key", String(300), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("source", String(200), nullable=False),
    Column("updated_at", Float, nullable=False),
)
consent_history = Table(
    "consent_history",
    metadata,
    Column("seq", OffsetType, primary_key=True, autoincrement=True),
    Column("subject_key", String(300), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("source", String(200), nullable=False),
    Column("at", Float, nullable=False),
)
Index("ix_consent_history_subject", consent_history.c.subject_key)

# Append-only, hash-chained audit log: each hash covers the previous hash and the entry.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", OffsetType, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(300), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# --- segments (owner: segments; migration 0005) -----------------------------------------
# Segment definitions as given (rule text, priority, group, …), versioned on every change.
segment_definitions = Table(
    "segment_definitions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Who holds which segment now, with what confidence, since when.
segment_memberships = Table(
    "segment_memberships",
    metadata,
    Column("segment", String(200), primary_key=True),
    Column("user_key", String(300), primary_key=True),
    Column("confidence", Float, nullable=False),
    Column("since", Float, nullable=False),
)
Index("ix_segment_memberships_user", segment_memberships.c.user_key)

# Every entry and exit (``change`` enter/exit) with the segment's size after it.
segment_history = Table(
    "segment_history",
    metadata,
    Column("seq", OffsetType, primary_key=True, autoincrement=True),
    Column("segment", String(200), nullable=False),
    Column("user_key", String(300), nullable=False),
    Column("change", String(8), nullable=False),
    Column("confidence", Float),
    Column("reason", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("size", Integer, nullable=False),
)
Index("ix_segment_history_segment_seq", segment_history.c.segment, segment_history.c.seq)

# Hourly roll-up of the history: entries, exits and the size at the end of each hour.
segment_sizes = Table(
    "segment_sizes",
    metadata,
    Column("segment", String(200), primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("entries", Integer, nullable=False),
    Column("exits", Integer, nullable=False),
    Column("size", Integer, nullable=False),
)

# Durable outbox of webhook deliveries (status pending, delivered or failed).
segment_outbox = Table(
    "segment_outbox",
    metadata,
    Column("id", OffsetType, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
)
Index("ix_segment_outbox_due", segment_outbox.c.status, segment_outbox.c.next_attempt_at)

# (migration 0006) A segment's whole membership as one compressed Arrow table, written by bulk
# re-evaluation; rows of ``segment_memberships`` of that segment override it (confidence 0:
# left since the snapshot).
segment_snapshots = Table(
    "segment_snapshots",
    metadata,
    Column("segment", String(200), primary_key=True),
    Column("taken_at", Float, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# (migration 0006) ``generation``: bumped whenever memberships change other than by history
# rows (snapshot, reset, deletion), so other processes know to reload.
segment_counters = Table(
    "segment_counters",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# --- features (owner: features helper) ---------------------------------------------------
# The features consumer's per-person state (compact binary: recent events plus aggregates of
# pruned ones), written with the consumer's position in one transaction (exactly-once).
feature_state = Table(
    "feature_state",
    metadata,
    Column("subject_key", String(300), primary_key=True),
    Column("state", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)
