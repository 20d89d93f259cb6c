"""The storage conformance suite: the same tests on every backend (SQLite and PostgreSQL).

Covers the event log (append, read by offset, order, durability, dedupe, head/count,
concurrency), consumer offsets, the upsert helpers, the profiles consumer on the store and
the migrations. Every test here runs once per ``store_url`` parameter.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select, text

from attune.consumers.base import ConsumerRunner
from attune.consumers.profiles import _PROFILES_SQL as PROFILES_SQL
from attune.consumers.profiles import ProfilesConsumer
from attune.consumers.profiles import _Sql as profiles_sql
from attune.events.model import Event
from attune.log.protocol import EventLog
from attune.log.sql import SqlEventLog, SqlOffsetStore
from attune.profiles.identity import SubjectKeys
from attune.profiles.reader import ProfileReader
from attune.storage.engine import make_engine, table_names
from attune.storage.migrate import alembic_config, upgrade
from attune.storage.tables import events, interactions, item_daily, items, metadata
from attune.storage.upsert import insert_ignore, upsert

T0 = 1_790_000_000.0


def make_event(n: int | str, **fields) -> Event:
    """Event number ``n`` with a stable id; ``fields`` override the defaults."""
    defaults = {
        "event_id": f"e{n}",
        "type": "view",
        "timestamp": T0 + (int(n) if str(n).isdigit() else 0),
        "received_at": T0,
        "anonymous_id": "d1",
    }
    return Event(**{**defaults, **fields})


@dataclass
class Store:
    """One opened store: its engine and the event log over it."""

    url: str
    engine: Engine
    keys: SubjectKeys
    log: SqlEventLog

    def reopen(self) -> Store:
        """A new engine and log over the same database (as after a restart)."""
        self.engine.dispose()
        engine = make_engine(self.url)
        return Store(self.url, engine, self.keys, SqlEventLog(engine, self.keys))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    engine = make_engine(store_url)
    upgrade(engine)
    keys = SubjectKeys()
    opened = Store(store_url, engine, keys, SqlEventLog(engine, keys))
    yield opened
    opened.engine.dispose()


# -- event log -------------------------------------------------------------------------


def test_log_satisfies_the_protocol(store: Store) -> None:
    assert isinstance(store.log, EventLog)


def test_empty_log(store: Store) -> None:
    assert store.log.head() == 0
    assert store.log.count() == 0
    assert store.log.read(0, 10) == []


def test_append_then_read_by_offset(store: Store) -> None:
    batch = [make_event(i) for i in range(1, 6)]
    result = store.log.append(batch)
    assert (result.accepted, result.duplicate_indices, result.last_offset) == (5, [], 5)
    logged = store.log.read(0, 100)
    assert [entry.offset for entry in logged] == [1, 2, 3, 4, 5]
    assert [entry.event for entry in logged] == batch
    assert [entry.offset for entry in store.log.read(2, 2)] == [3, 4]
    assert store.log.read(5, 10) == []


def test_events_round_trip_every_field(store: Store) -> None:
    full = make_event(
        1,
        user_id="Zoë 😀",
        item_id="i-1",
        value=4.5,
        session_id="s1",
        context={"ip": "10.0.0.1", "page": {"url": "https://x.test/?q=ü"}, "nul": "a\x00b"},
        properties={"nested": {"list": [1, 2.5, None, True]}, "big": 2**63 - 1},
        traits={"plan": "pro"},
    )
    store.log.append([full])
    assert store.log.read(0, 1)[0].event == full


def test_offsets_follow_append_order_not_event_time(store: Store) -> None:
    late = make_event("late", timestamp=T0 + 1000)
    early = make_event("early", timestamp=T0 - 1000)
    store.log.append([late, early])
    store.log.append([make_event("middle", timestamp=T0)])
    assert [e.event.event_id for e in store.log.read(0, 10)] == ["elate", "eearly", "emiddle"]


def test_log_survives_reopening_the_engine(store: Store) -> None:
    batch = [make_event(i, user_id=f"u{i}") for i in range(1, 4)]
    store.log.append(batch)
    reopened = store.reopen()
    try:
        assert [e.event for e in reopened.log.read(0, 10)] == batch
        assert reopened.log.head() == 3
        # Offsets continue after a restart instead of starting over.
        assert reopened.log.append([make_event(4)]).last_offset == 4
    finally:
        reopened.engine.dispose()


def test_duplicates_within_a_batch_are_dropped(store: Store) -> None:
    result = store.log.append([make_event(1), make_event(2), make_event(1), make_event(1)])
    assert (result.accepted, result.duplicate_indices, result.last_offset) == (2, [2, 3], 2)
    assert store.log.count() == 2


def test_duplicates_against_the_log_are_dropped(store: Store) -> None:
    store.log.append([make_event(1), make_event(2)])
    result = store.log.append([make_event(3), make_event(1), make_event(4), make_event(2)])
    assert (result.accepted, result.duplicate_indices, result.last_offset) == (2, [1, 3], 4)
    again = store.log.append([make_event(1), make_event(3)])
    assert (again.accepted, again.duplicate_indices, again.last_offset) == (0, [0, 1], 4)
    assert [e.event.event_id for e in store.log.read(0, 10)] == ["e1", "e2", "e3", "e4"]


def test_lookups_by_many_keys_are_planned_for_each_call(store: Store) -> None:
    """psycopg prepares a query on its fifth run (until a rollback clears them all); the
    log's dedupe and the profiles consumer's lookups must never be prepared (a generic plan
    cannot hash the keys: every call then compared each row of the table with each key).
    The log's head query, run as often, shows that preparing did happen."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("only psycopg prepares statements")
    for n in range(8):  # one after another: the pool hands out the same connection each time
        store.log.append([make_event(n)])
    with store.engine.begin() as conn:
        lookups = profiles_sql(conn)
        for n in range(8):
            assert lookups.select_in(PROFILES_SQL, [f"u{n}"]) == []
        prepared = [row[0] for row in conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements")]
    assert any("max(" in statement for statement in prepared), prepared
    assert not any("ANY(" in statement for statement in prepared), prepared


def test_head_and_count_track_appends(store: Store) -> None:
    for n in range(1, 4):
        store.log.append([make_event(f"{n}a"), make_event(f"{n}b")])
        assert store.log.head() == 2 * n
        assert store.log.count() == 2 * n


def test_empty_append_is_harmless(store: Store) -> None:
    result = store.log.append([])
    assert (result.accepted, result.duplicate_indices) == (0, [])
    assert store.log.count() == 0


def test_stored_subject_keys_not_raw_ids(store: Store) -> None:
    store.log.append([make_event(1, user_id="u1", anonymous_id="d1", item_id="i1")])
    with store.engine.connect() as conn:
        row = conn.execute(select(events.c.user_key, events.c.anon_key, events.c.item_id)).one()
    assert tuple(row) == (store.keys.user("u1"), store.keys.anon("d1"), "i1")


@pytest.mark.parametrize("shared_log", [True, False], ids=["one-log", "log-per-thread"])
def test_concurrent_appends_are_gapless_and_exactly_once(store: Store, shared_log: bool) -> None:
    """Threads append overlapping batches; each event lands once, offsets have no gaps.

    ``log-per-thread`` gives every thread its own engine, as separate processes would have.
    """
    threads, batches, per_batch = 6, 10, 5
    errors: list[BaseException] = []
    start = threading.Barrier(threads)
    logs = [
        store.log if shared_log else SqlEventLog(make_engine(store.url), store.keys) for _ in range(threads)
    ]

    def work(worker: int) -> None:
        try:
            start.wait()
            for b in range(batches):
                # Every other event id is shared by two neighbouring workers: dedupe under contention.
                ids = [
                    f"w{worker}-b{b}-{k}" if k % 2 else f"shared-{(worker // 2)}-b{b}-{k}"
                    for k in range(per_batch)
                ]
                logs[worker].append([make_event(0, event_id=i) for i in ids])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    if not shared_log:
        for log in logs:
            log.engine.dispose()
    assert not errors, errors
    expected = {
        f"w{w}-b{b}-{k}" for w in range(threads) for b in range(batches) for k in range(1, per_batch, 2)
    }
    expected |= {
        f"shared-{w // 2}-b{b}-{k}"
        for w in range(threads)
        for b in range(batches)
        for k in range(0, per_batch, 2)
    }
    logged = store.log.read(0, 10_000)
    offsets = [entry.offset for entry in logged]
    ids = [entry.event.event_id for entry in logged]
    assert offsets == list(range(1, len(expected) + 1))
    assert sorted(ids) == sorted(expected)
    assert store.log.head() == store.log.count() == len(expected)


# -- consumer offsets ------------------------------------------------------------------


def test_consumer_offsets_get_and_set(store: Store) -> None:
    offsets = SqlOffsetStore(store.engine)
    assert offsets.get("never-ran") == 0
    offsets.set("profiles", 7)
    offsets.set("popularity", 3)
    offsets.set("profiles", 12)
    assert (offsets.get("profiles"), offsets.get("popularity")) == (12, 3)
    store.engine.dispose()
    assert SqlOffsetStore(make_engine(store.url)).get("profiles") == 12


# -- upsert helpers --------------------------------------------------------------------


def test_upsert_overwrites_on_conflict(store: Store) -> None:
    with store.engine.begin() as conn:
        upsert(conn, items, [{"item_id": "i1", "attributes": {"v": 1}, "updated_at": 1.0}], ["item_id"])
        upsert(
            conn,
            items,
            [
                {"item_id": "i1", "attributes": {"v": 2}, "updated_at": 2.0},
                {"item_id": "i2", "attributes": {"v": 3}, "updated_at": 3.0},
            ],
            ["item_id"],
        )
        upsert(conn, items, [], ["item_id"])
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(items.c.item_id, items.c.attributes, items.c.updated_at).order_by(items.c.item_id)
        )
        assert [tuple(r) for r in rows] == [("i1", {"v": 2}, 2.0), ("i2", {"v": 3}, 3.0)]


def test_upsert_can_increment(store: Store) -> None:
    with store.engine.begin() as conn:
        for weight in (1.5, 2.0, 0.5):
            upsert(
                conn,
                item_daily,
                [{"item_id": "i1", "day": 10, "weight": weight, "events": 1}],
                ["item_id", "day"],
                increment=("weight", "events"),
            )
    with store.engine.connect() as conn:
        assert tuple(conn.execute(select(item_daily.c.weight, item_daily.c.events)).one()) == (4.0, 3)


def test_insert_ignore_keeps_existing_rows(store: Store) -> None:
    row = {"event_offset": 1, "user_key": "u:a", "item_id": "i1", "type": "view", "ts": 1.0, "value": None}
    with store.engine.begin() as conn:
        insert_ignore(conn, interactions, [row])
        insert_ignore(conn, interactions, [{**row, "item_id": "changed"}, {**row, "event_offset": 2}])
        insert_ignore(conn, interactions, [])
    with store.engine.connect() as conn:
        stored = conn.execute(
            select(interactions.c.event_offset, interactions.c.item_id).order_by("event_offset")
        )
        assert [tuple(r) for r in stored] == [(1, "i1"), (2, "i1")]


# -- the profiles consumer on the store ------------------------------------------------


@pytest.fixture
def profiles(store: Store):
    """Append events, run the profiles consumer, read profiles."""

    class Harness:
        reader = ProfileReader(store.engine, store.keys)

        def __init__(self, priority: dict[str, int] | None = None) -> None:
            self.runner = ConsumerRunner(
                ProfilesConsumer(store.keys, priority or {}), store.log, store.engine
            )

        def feed(self, *batch: Event) -> None:
            store.log.append(list(batch))
            self.runner.drain()

    return Harness


def test_profile_consumer_stitches_anonymous_history(store: Store, profiles) -> None:
    harness = profiles()
    harness.feed(make_event(1, item_id="i1"), make_event(2, item_id="i2"))
    harness.feed(make_event(3, type="identify", user_id="u1", anonymous_id="d1", traits={"plan": "free"}))
    harness.feed(make_event(4, item_id="i3"))  # anonymous only, after login
    profile = harness.reader.get("u1")
    assert profile.anonymous_ids == ["d1"]
    assert profile.event_counts == {"view": 3, "identify": 1}
    assert {i["item_id"] for i in profile.recent_interactions} == {"i1", "i2", "i3"}
    assert profile.traits == {"plan": "free"}
    assert harness.reader.seen_items(store.keys.user("u1")) == {"i1", "i2", "i3"}


def test_profile_consumer_merges_aliased_users(store: Store, profiles) -> None:
    harness = profiles()
    harness.feed(make_event(1, user_id="old", anonymous_id=None, item_id="i1", traits={"a": 1}))
    harness.feed(make_event(2, user_id="new", anonymous_id=None, item_id="i2", traits={"b": 2}))
    harness.feed(
        make_event(3, type="alias", user_id="new", anonymous_id=None, properties={"previous_id": "old"})
    )
    profile = harness.reader.get("old")  # the previous id resolves to the merged profile
    assert profile.user_id == "new"
    assert profile.merged_user_ids == ["old"]
    assert profile.traits == {"a": 1, "b": 2}
    assert {i["item_id"] for i in profile.recent_interactions} == {"i1", "i2"}


def test_profile_consumer_trait_rule(store: Store, profiles) -> None:
    harness = profiles({"crm": 10})
    harness.feed(
        make_event(
            1, type="identify", user_id="u1", timestamp=T0, traits={"tier": "gold"}, context={"source": "crm"}
        ),
        make_event(
            2, type="identify", user_id="u1", timestamp=T0 + 60, traits={"tier": "basic", "city": "Oslo"}
        ),
        make_event(3, type="identify", user_id="u1", timestamp=T0 - 60, traits={"city": "Rome"}),
    )
    profile = harness.reader.get("u1")
    assert profile.traits == {"tier": "gold", "city": "Oslo"}
    assert profile.trait_sources["tier"]["source"] == "crm"


def test_profile_consumer_is_exactly_once_across_restarts(store: Store, profiles) -> None:
    harness = profiles()
    harness.feed(make_event(1, user_id="u1", item_id="i1"))
    # A new runner starts from the committed position: nothing is applied twice.
    again = profiles()
    again.feed(make_event(2, user_id="u1", item_id="i2"))
    assert again.reader.get("u1").event_counts == {"view": 2}


# -- migrations ------------------------------------------------------------------------


@pytest.fixture
def fresh_engine(store_url: str, tmp_path) -> Iterator[Engine]:
    """An engine over an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if store_url.startswith("sqlite"):
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    schema = f"fresh_{secrets.token_hex(4)}"
    admin = make_engine(store_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{store_url}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_migrations_are_idempotent(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    upgrade(fresh_engine)  # a second run finds nothing to do
    head = ScriptDirectory.from_config(alembic_config(fresh_engine)).get_current_head()
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 0
    tables = table_names(fresh_engine)
    assert set(metadata.tables) <= tables
