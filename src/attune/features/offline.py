"""Features of many people at a past instant, computed from the Parquet lake with DuckDB.

Same definitions as the online store (:mod:`attune.features.definitions`): an event counts at
``as_of`` when its time ``t`` (µs) satisfies ``as_of - w < t <= as_of`` (all time: ``t <= as_of``),
so the values are point-in-time correct for any past instant, late arrivals included (events
are placed by their own time). People are canonical profile keys: each event goes to its user
id's key, else its anonymous id's, through the identity links as they are now, which is also
where the online store has moved those events after stitching. Item categories come from the
catalog as it is now (online reads the same cache).

Everything is one ``GROUP BY subject`` with one ``FILTER`` aggregate per reference (plus one
over the item-category join when a reference names a category), so a million people take
seconds. Named features and local clock values are finished in numpy by the functions the
online store uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from sqlalchemy import Engine, select

from attune.events.model import IDENTITY_TYPES
from attune.features.categories import item_categories, normalize_category
from attune.features.definitions import DAY_MICROS, DWELL_PROPERTIES, FeatureDefinitions, to_micros
from attune.features.named import (
    WEEKDAYS,
    daypart,
    engagement_score,
    local_clock_many,
    recency_days,
    share_rate,
)
from attune.features.refs import FeatureRef
from attune.lake.query import events_view_sql
from attune.profiles.identity import SubjectKeys
from attune.storage.tables import identity_links, items

#: Lake column of each stored context attribute.
_CONTEXT_COLUMNS = {
    "device": "device_type",
    "os": "os",
    "browser": "browser",
    "country": "country",
    "city": "city",
}
_NUMERIC_JSON = "('BIGINT', 'UBIGINT', 'DOUBLE')"


@dataclass
class OfflineSource:
    """Where offline features come from: the lake, identity links and item categories."""

    lake_dir: Path
    links: Mapping[str, str] = field(default_factory=dict)
    categories: Mapping[str, Iterable[str]] = field(default_factory=dict)
    keys: SubjectKeys = field(default_factory=SubjectKeys)
    definitions: FeatureDefinitions = field(default_factory=FeatureDefinitions)

    @classmethod
    def from_store(
        cls, engine: Engine, lake_dir: Path, keys: SubjectKeys, definitions: FeatureDefinitions
    ) -> OfflineSource:
        """Read the identity links and the catalog's categories from the SQL store."""
        with engine.connect() as conn:
            links = dict(
                conn.execute(select(identity_links.c.alias_key, identity_links.c.canonical_key)).all()
            )
            categories = {}
            for item_id, attributes in conn.execute(select(items.c.item_id, items.c.attributes)):
                found = item_categories(attributes)
                if found:
                    categories[item_id] = found
        return cls(lake_dir, links, categories, keys, definitions)

    @classmethod
    def from_runtime(cls, runtime: Any) -> OfflineSource:
        """From an open :class:`attune.runtime.Runtime` (its settings, store and subject keys)."""
        settings = runtime.settings
        definitions = FeatureDefinitions.from_settings(settings.features, settings.ingest.max_future_seconds)
        return cls.from_store(runtime.engine, settings.lake_dir, runtime.subject_keys, definitions)


@dataclass
class OfflineFeatures:
    """Values of many people: ``values[ref][i]`` belongs to ``subject_keys[i]`` (sorted keys).

    count/distinct: int64; sum/feature: float64 (NaN for a missing ``recency_days``); context:
    object arrays (None when unknown). Only people with an event at or before ``as_of`` appear.
    """

    subject_keys: np.ndarray
    values: dict[FeatureRef, np.ndarray]
    as_of: float
    events: int = 0


def offline_values(source: OfflineSource | Any, refs: Iterable[FeatureRef], as_of: float) -> OfflineFeatures:
    """Every person's value of each ref at instant ``as_of`` (epoch seconds), from the lake.

    ``source`` is an :class:`OfflineSource` or an open runtime. Refs are checked like online
    (:meth:`FeatureDefinitions.check`): trait and segment refs are the segments engine's.
    """
    if not isinstance(source, OfflineSource):
        source = OfflineSource.from_runtime(source)
    defs = source.definitions
    refs = list(dict.fromkeys(refs))
    for ref in refs:
        defs.check(ref)
    as_us = to_micros(as_of)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        con.execute(events_view_sql(source.lake_dir))
        columns = {row[0] for row in con.execute("DESCRIBE events").fetchall()}
        has_tz = "timezone" in columns
        plan = _Plan(defs, as_us, has_tz, sql_keys=_register_subjects(con, source, as_us))
        for ref in refs:
            plan.add(ref)
        if plan.needs_categories:
            item_ids = list(source.categories)
            con.register(
                "item_categories",
                pa.table(
                    {
                        "item_id": pa.array(item_ids, pa.string()),
                        "cats": pa.array(
                            [sorted({normalize_category(c) for c in source.categories[i]}) for i in item_ids],
                            pa.list_(pa.string()),
                        ),
                    }
                ),
            )
        table = con.sql(plan.sql()).to_arrow_table()
    finally:
        con.close()
    subjects = np.asarray(table.column("subject").to_pylist(), dtype=object)
    columns_np = {name: table.column(name) for name in table.column_names}
    values = {ref: plan.finish(ref, columns_np) for ref in refs}
    events = int(table.column("__events").to_numpy().sum()) if table.num_rows else 0
    return OfflineFeatures(subject_keys=subjects, values=values, as_of=as_of, events=events)


def _register_subjects(con: duckdb.DuckDBPyConnection, source: OfflineSource, as_us: int) -> bool:
    """Register how raw ids become canonical subject keys; return True for the SQL fast path.

    With plain (not pseudonymized) keys the key is the prefix plus the id, so SQL builds it and
    joins the identity links; otherwise every distinct id goes through :class:`SubjectKeys`.
    """
    keys, links = source.keys, source.links
    con.register(
        "identity_links",
        pa.table(
            {
                "alias": pa.array(list(links), pa.string()),
                "canonical": pa.array(list(links.values()), pa.string()),
            }
        ),
    )
    if keys.user("x") == "u:x" and keys.anon("x") == "a:x" and not getattr(keys, "pseudonymized", False):
        return True
    until = f"epoch_us(timestamp) <= {as_us}"
    users = con.execute(
        f"SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL AND {until}"
    ).fetchnumpy()
    user_ids = users["user_id"].tolist()
    user_keys = [keys.user(u) for u in user_ids]
    con.register(
        "user_subjects",
        pa.table(
            {"user_id": pa.array(user_ids, pa.string()), "subject": [links.get(k, k) for k in user_keys]}
        ),
    )
    anons = con.execute(
        f"SELECT DISTINCT anonymous_id FROM events WHERE user_id IS NULL AND anonymous_id IS NOT NULL AND {until}"
    ).fetchnumpy()
    anon_ids = anons["anonymous_id"].tolist()
    anon_keys = [keys.anon(a) for a in anon_ids]
    con.register(
        "anon_subjects",
        pa.table(
            {"anonymous_id": pa.array(anon_ids, pa.string()), "subject": [links.get(k, k) for k in anon_keys]}
        ),
    )
    return False


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _in(names: Iterable[str]) -> str:
    names = sorted(names)
    return "(" + ", ".join(_lit(n) for n in names) + ")" if names else "(NULL)"


class _Plan:
    """Builds the aggregates a set of refs needs and turns result columns into values."""

    def __init__(self, defs: FeatureDefinitions, as_us: int, has_tz: bool, sql_keys: bool = False) -> None:
        self.defs = defs
        self.sql_keys = sql_keys
        self.as_us = as_us
        self.has_tz = has_tz
        self.aggs: dict[str, str] = {"__events": "count(*)"}
        self.needs_dwell = False
        self.needs_categories = False

    def _since(self, window: float | None) -> str:
        return "TRUE" if window is None else f"ts > {self.as_us - to_micros(window)}"

    def _agg(self, expr: str) -> str:
        for name, existing in self.aggs.items():
            if existing == expr:
                return name
        name = f"a{len(self.aggs)}"
        self.aggs[name] = expr
        return name

    def add(self, ref: FeatureRef) -> None:
        since = self._since(self.defs.window_of(ref))
        if ref.kind in ("count", "sum", "distinct"):
            self._agg(self._window_aggregate(ref))
        elif ref.kind == "feature":
            for part in self._parts(ref.name or "", since):
                self._agg(part)
        else:
            for part in self._context_parts(ref.name or ""):
                self._agg(part)

    def _window_aggregate(self, ref: FeatureRef) -> str:
        """The aggregate of a count/sum/distinct ref."""
        where = f"type = {_lit(ref.event_type or '')} AND {self._since(ref.window_seconds)}"
        if ref.category is not None:
            # One row per event with its item's category list: no join fan-out, one pass.
            self.needs_categories = True
            where += f" AND list_contains(cats, {_lit(normalize_category(ref.category))})"
        if ref.kind == "count":
            return f"count(*) FILTER (WHERE {where})"
        if ref.kind == "distinct":
            return f"count(DISTINCT item_id) FILTER (WHERE {where})"
        column = "dwell" if ref.field == "dwell_seconds" else "value"
        self.needs_dwell |= column == "dwell"
        return f"sum({column}) FILTER (WHERE {where})"

    def _parts(self, name: str, since: str) -> list[str]:
        behaviour = f"type NOT IN {_in(IDENTITY_TYPES)}"
        parts = {
            "recency_days": [f"max(ts) FILTER (WHERE {behaviour})"],
            "frequency": [f"count(*) FILTER (WHERE {behaviour} AND {since})"],
            "active_days": [f"count(DISTINCT ts // {DAY_MICROS}) FILTER (WHERE {behaviour} AND {since})"],
            "monetary": [f"sum(value) FILTER (WHERE type IN {_in(self.defs.purchase_types)} AND {since})"],
            "dwell_seconds": [f"sum(dwell) FILTER (WHERE {since})"],
            "share_rate": [
                f"count(*) FILTER (WHERE type IN {_in(self.defs.share_types)} AND {since})",
                f"count(*) FILTER (WHERE type IN {_in(self.defs.view_types)} AND {since})",
            ],
        }
        if name == "engagement_score":
            return [
                p
                for n in ("dwell_seconds", "share_rate", "active_days", "frequency", "monetary")
                for p in self._parts(n, since)
            ]
        if name == "dwell_seconds":
            self.needs_dwell = True
        return parts[name]

    def _context_parts(self, name: str) -> list[str]:
        if name in _CONTEXT_COLUMNS:
            column = _CONTEXT_COLUMNS[name]
            return [f"arg_max({column}, row(ts, off)) FILTER (WHERE {column} IS NOT NULL)"]
        behaviour = f"type NOT IN {_in(IDENTITY_TYPES)}"
        tz = "timezone" if self.has_tz else "CAST(NULL AS VARCHAR)"
        return [
            f"max(ts) FILTER (WHERE {behaviour})",
            f"arg_max_null({tz}, row(ts, off)) FILTER (WHERE {behaviour})",
        ]

    def sql(self) -> str:
        dwell = "CAST(NULL AS DOUBLE)"
        if self.needs_dwell:
            # First property that is a JSON number >= 0, exactly as the consumer reads it.
            options = [
                f"CASE WHEN json_type(properties, '$.{p}') IN {_NUMERIC_JSON} "
                f"AND CAST(json_extract(properties, '$.{p}') AS DOUBLE) >= 0 "
                f"THEN CAST(json_extract(properties, '$.{p}') AS DOUBLE) END"
                for p in DWELL_PROPERTIES
            ]
            dwell = f"coalesce({', '.join(options)})"
        tz = ", e.timezone" if self.has_tz else ""
        cats, join = "", ""
        if self.needs_categories:
            cats, join = ", c.cats", "LEFT JOIN item_categories c ON e.item_id = c.item_id"
        day = self.as_us // DAY_MICROS
        if self.sql_keys:
            key = "CASE WHEN e.user_id IS NOT NULL THEN 'u:' || e.user_id ELSE 'a:' || e.anonymous_id END"
            subject = "coalesce(l.canonical, e.key)"
            source = f"(SELECT *, {key} AS key FROM events e) e LEFT JOIN identity_links l ON l.alias = e.key"
        else:
            subject = "coalesce(u.subject, a.subject)"
            source = (
                "events e LEFT JOIN user_subjects u ON e.user_id = u.user_id "
                "LEFT JOIN anon_subjects a ON e.user_id IS NULL AND e.anonymous_id = a.anonymous_id"
            )
        base = f"""
            SELECT {subject} AS subject, e.type, e.item_id, e.value, {dwell} AS dwell,
                   epoch_us(e.timestamp) AS ts, e."offset" AS off,
                   e.device_type, e.os, e.browser, e.country, e.city{tz}{cats}
            FROM {source}
            {join}
            WHERE e.date <= DATE '1970-01-01' + INTERVAL {day} DAY AND epoch_us(e.timestamp) <= {self.as_us}
        """
        main = ", ".join(f"{expr} AS {name}" for name, expr in self.aggs.items())
        query = f"WITH ev AS ({base}) SELECT subject, {main} FROM ev GROUP BY subject"
        return query + " ORDER BY subject"

    def _column(self, expr: str, columns: dict[str, pa.ChunkedArray]) -> pa.ChunkedArray:
        for name, existing in self.aggs.items():
            if existing == expr:
                return columns[name]
        raise KeyError(expr)

    def _numbers(self, expr: str, columns: dict[str, pa.ChunkedArray]) -> np.ndarray:
        return self._column(expr, columns).to_numpy(zero_copy_only=False).astype(np.float64)

    def finish(self, ref: FeatureRef, columns: dict[str, pa.ChunkedArray]) -> np.ndarray:
        window = self.defs.window_of(ref)
        since = self._since(window)
        if ref.kind in ("count", "sum", "distinct"):
            numbers = np.nan_to_num(self._numbers(self._window_aggregate(ref), columns), nan=0.0)
            return numbers if ref.kind == "sum" else numbers.astype(np.int64)
        if ref.kind == "feature":
            name = ref.name or ""
            if name == "recency_days":
                last = self._numbers(self._parts(name, since)[0], columns)
                return recency_days(self.as_us, last)
            if name == "engagement_score":
                components = {
                    n: self._feature(n, since, columns)
                    for n in ("dwell_seconds", "share_rate", "active_days", "frequency", "monetary")
                }
                return engagement_score(components, self.defs)
            return self._feature(name, since, columns)
        return self._context(ref.name or "", columns)

    def _feature(self, name: str, since: str, columns: dict[str, pa.ChunkedArray]) -> np.ndarray:
        parts = [np.nan_to_num(self._numbers(p, columns), nan=0.0) for p in self._parts(name, since)]
        if name == "share_rate":
            return share_rate(parts[0], parts[1])
        if name in ("frequency", "active_days"):
            return parts[0].astype(np.int64)
        return parts[0]

    def _context(self, name: str, columns: dict[str, pa.ChunkedArray]) -> np.ndarray:
        parts = self._context_parts(name)
        if name in _CONTEXT_COLUMNS:
            return np.asarray(self._column(parts[0], columns).to_pylist(), dtype=object)
        last = self._column(parts[0], columns).to_pylist()
        zones = self._column(parts[1], columns).to_pylist()
        out = np.full(len(last), None, dtype=object)
        present = np.flatnonzero(np.array([t is not None for t in last], dtype=bool))
        if len(present):
            zoned = [zones[i] for i in present]
            hours, weekdays = local_clock_many(
                np.array([last[i] for i in present], dtype=np.int64),
                zoned if any(z is not None for z in zoned) else None,
            )
            if name == "hour":
                out[present] = hours.astype(object)
            elif name == "weekday":
                out[present] = np.array(WEEKDAYS, dtype=object)[weekdays]
            else:
                out[present] = np.array([daypart(h) for h in range(24)], dtype=object)[hours]
        return out
