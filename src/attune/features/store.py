"""The online feature store: every person's recent events in compact binary form, in memory.

Each person keeps the events of the retention horizon (the longest window plus the clock-skew
slack) as one packed ``bytearray`` of 42-byte records (time in µs, log offset, type code, item
code, context code, value, dwell), read back as a numpy structured view when a value is asked
for. Keeping exact times rather than time buckets is what makes windows exact: a late event is
simply another record, and the value at ``now`` counts the records with
``now - w < t <= now`` whatever order they came in. Events older than the horizon are folded
into per-person all-time aggregates (:class:`Pruned`), so memory stays bounded while all-time
counts, sums and distinct items stay exact.

Types, items and context tuples are interned to small integer codes shared by all people.
The store is not thread-safe by itself: callers hold :attr:`FeatureStore.lock`.
"""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from attune.errors import ValidationFailed
from attune.features.catalog import STORED_CONTEXT
from attune.features.categories import ItemCategories, normalize_category
from attune.features.definitions import (
    DAY_MICROS,
    FeatureDefinitions,
    format_window,
    is_behaviour,
    to_micros,
)
from attune.features.named import WEEKDAYS, daypart, engagement_score, local_clock, recency_days, share_rate
from attune.features.refs import FeatureRef

#: One event record; ``item``/``ctx`` are -1 when absent, ``val``/``dwell`` NaN.
EVENT_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("off", "<i8"),
        ("typ", "<i2"),
        ("item", "<i4"),
        ("ctx", "<i4"),
        ("val", "<f8"),
        ("dwell", "<f8"),
    ]
)
_RECORD = struct.Struct("<qqhiidd")
RECORD_SIZE = _RECORD.size
assert RECORD_SIZE == EVENT_DTYPE.itemsize
#: Index of the time zone in an interned context tuple (after the stored attributes).
TZ_INDEX = len(STORED_CONTEXT)
_NO_CONTEXT: tuple[str | None, ...] = (None,) * (TZ_INDEX + 1)
#: Pruning is considered every this many appended events of a person.
_PRUNE_EVERY = 64
_EMPTY = np.zeros(0, dtype=EVENT_DTYPE)
_NAN = float("nan")


@dataclass
class Pruned:
    """All-time aggregates of a person's events older than the retention horizon."""

    #: Greatest event time folded in (µs); windowed values are exact for ``now - w >= max_ts``.
    max_ts: int = -(2**62)
    #: (type code, category or None) -> [count, value sum, dwell sum, set of item codes].
    agg: dict[tuple[int, str | None], list[Any]] = field(default_factory=dict)
    #: (ts, offset, context code) of the latest behavioural event folded in.
    last_behaviour: tuple[int, int, int] | None = None
    #: Per stored context attribute: (ts, offset, value) of the latest event that carried it.
    context: list[tuple[int, int, str] | None] = field(default_factory=lambda: [None] * TZ_INDEX)


class Person:
    """One person's state: packed recent events and the aggregates of older ones."""

    __slots__ = ("buf", "pruned")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pruned: Pruned | None = None

    def records(self) -> np.ndarray:
        """A structured view of the recent events (do not keep it past the store's lock)."""
        return np.frombuffer(self.buf, dtype=EVENT_DTYPE) if self.buf else _EMPTY


class FeatureStore:
    """Per-person features kept current event by event; answers :class:`FeatureRef` values."""

    def __init__(
        self, definitions: FeatureDefinitions | None = None, categories: ItemCategories | None = None
    ) -> None:
        self.defs = definitions or FeatureDefinitions()
        self.categories = categories or ItemCategories()
        self.lock = threading.RLock()
        self.persons: dict[str, Person] = {}
        self.type_codes: dict[str, int] = {}
        self.type_names: list[str] = []
        self.item_codes: dict[str, int] = {}
        self.item_names: list[str] = []
        self.context_codes: dict[tuple[str | None, ...], int] = {_NO_CONTEXT: 0}
        self.contexts: list[tuple[str | None, ...]] = [_NO_CONTEXT]
        #: Newest event time seen (µs): pruning keeps everything within the horizon of it.
        self.watermark = -(2**62)
        self._retention = self.defs.retention_micros
        self._category_masks: dict[str, np.ndarray] = {}
        self._category_version = -1
        self._context_masks: dict[int, np.ndarray] = {}
        self._type_masks: dict[frozenset[str] | str, np.ndarray] = {}

    # -- interning -----------------------------------------------------------
    def type_code(self, name: str) -> int:
        """The code of event type ``name`` (new types get the next code)."""
        code = self.type_codes.get(name)
        if code is None:
            code = self.type_codes[name] = len(self.type_names)
            self.type_names.append(name)
            self._type_masks.clear()
        return code

    def item_code(self, item_id: str) -> int:
        """The code of item ``item_id``."""
        code = self.item_codes.get(item_id)
        if code is None:
            code = self.item_codes[item_id] = len(self.item_names)
            self.item_names.append(item_id)
        return code

    def context_code(self, context: tuple[str | None, ...]) -> int:
        """The code of a context tuple (stored attributes, then the time zone)."""
        code = self.context_codes.get(context)
        if code is None:
            code = self.context_codes[context] = len(self.contexts)
            self.contexts.append(context)
        return code

    # -- updates -------------------------------------------------------------
    def add(
        self,
        key: str,
        ts_us: int,
        offset: int,
        type_code: int,
        item_code: int,
        context_code: int,
        value: float,
        dwell: float,
    ) -> None:
        """Record one event for person ``key`` (codes from the interning methods; NaN for absent)."""
        person = self.persons.get(key)
        if person is None:
            person = self.persons[key] = Person()
        self.watermark = max(self.watermark, ts_us)
        pruned = person.pruned
        if pruned is not None and ts_us <= pruned.max_ts:
            # A late event older than what was already folded: no window can still hold it.
            self._fold(pruned, ts_us, offset, type_code, item_code, context_code, value, dwell)
            return
        person.buf += _RECORD.pack(ts_us, offset, type_code, item_code, context_code, value, dwell)
        if len(person.buf) % (_PRUNE_EVERY * RECORD_SIZE) == 0:
            self.prune(person)

    def prune(self, person: Person) -> None:
        """Fold events older than the horizon into the all-time aggregates."""
        cutoff = self.watermark - self._retention
        records = person.records()
        old = records["ts"] < cutoff
        if not old.any():
            return
        pruned = person.pruned or Pruned()
        for rec in records[old].tolist():
            self._fold(pruned, *rec)
        person.pruned = pruned
        person.buf = bytearray(records[~old].tobytes())

    def _fold(
        self, pruned: Pruned, ts: int, off: int, typ: int, item: int, ctx: int, value: float, dwell: float
    ) -> None:
        pruned.max_ts = max(pruned.max_ts, ts)
        item_name = self.item_names[item] if item >= 0 else None
        keys: list[str | None] = [None]
        if item_name is not None:
            keys.extend(self.categories.get(item_name))
        for category in keys:
            entry = pruned.agg.get((typ, category))
            if entry is None:
                entry = pruned.agg[(typ, category)] = [0, 0.0, 0.0, set()]
            entry[0] += 1
            if not math.isnan(value):
                entry[1] += value
            if not math.isnan(dwell):
                entry[2] += dwell
            if item >= 0:
                entry[3].add(item)
        stamp = (ts, off)
        if is_behaviour(self.type_names[typ]):
            last = pruned.last_behaviour
            if last is None or stamp > last[:2]:
                pruned.last_behaviour = (ts, off, ctx)
        context = self.contexts[ctx]
        for i in range(TZ_INDEX):
            if context[i] is not None:
                current = pruned.context[i]
                if current is None or stamp > current[:2]:
                    pruned.context[i] = (ts, off, context[i])

    def merge(self, source: str, target: str) -> bool:
        """Move person ``source``'s events into ``target`` (identity stitching); False if none."""
        moved = self.persons.pop(source, None)
        if moved is None:
            return False
        into = self.persons.get(target)
        if into is None:
            self.persons[target] = moved
            return True
        into.buf += moved.buf
        if moved.pruned is not None:
            if into.pruned is None:
                into.pruned = moved.pruned
            else:
                _merge_pruned(into.pruned, moved.pruned)
        return True

    def remove(self, key: str) -> None:
        """Forget person ``key`` (erasure)."""
        self.persons.pop(key, None)

    def clear(self) -> None:
        """Forget everyone (before a replay)."""
        self.persons.clear()
        self.watermark = -(2**62)

    # -- masks shared by all people -------------------------------------------
    def _types_mask(self, names: frozenset[str] | str) -> np.ndarray:
        """Bool array over type codes: which codes are in ``names`` ('behaviour' for behavioural)."""
        mask = self._type_masks.get(names)
        if mask is None or len(mask) < len(self.type_names):
            if names == "behaviour":
                mask = np.array([is_behaviour(t) for t in self.type_names] + [False], dtype=bool)
            else:
                mask = np.array([t in names for t in self.type_names] + [False], dtype=bool)
            self._type_masks[names] = mask
        return mask

    def _category_mask(self, category: str) -> np.ndarray:
        """Bool array over item codes + 1 (index 0: no item): items of ``category``."""
        if self._category_version != self.categories.version:
            self._category_masks.clear()
            self._category_version = self.categories.version
        mask = self._category_masks.get(category)
        known = 0 if mask is None else len(mask) - 1
        if mask is None or known < len(self.item_names):
            get = self.categories.get
            extra = np.array([category in get(name) for name in self.item_names[known:]], dtype=bool)
            mask = np.concatenate([mask if mask is not None else np.zeros(1, dtype=bool), extra])
            self._category_masks[category] = mask
        return mask

    def _context_mask(self, index: int) -> np.ndarray:
        """Bool array over context codes: which carry stored attribute ``index``."""
        mask = self._context_masks.get(index)
        if mask is None or len(mask) < len(self.contexts):
            mask = np.array([c[index] is not None for c in self.contexts], dtype=bool)
            self._context_masks[index] = mask
        return mask

    # -- reads ---------------------------------------------------------------
    def values(self, subject_key: str, refs: Iterable[FeatureRef], now: float) -> dict[FeatureRef, Any]:
        """The value of each ref for one person at instant ``now`` (epoch seconds).

        count/distinct: int (0 without events); sum: float (0.0 without events); feature: float
        (``recency_days`` None without events; frequency/active_days int); context: str or int,
        None when unknown. Raises :class:`ValidationFailed` for refs the features cannot answer
        (see :meth:`FeatureDefinitions.check`) or an instant so far back that the events it needs
        were already folded into aggregates.
        """
        with self.lock:
            return _Reader(self, self.persons.get(subject_key), to_micros(now)).values(refs)

    def snapshot(self, subject_key: str, now: float) -> dict[str, Any]:
        """A readable summary of one person's features at ``now`` (for the API and CLI).

        ``windows``: per configured window, per event type ``{count, distinct, value}`` and per
        item category ``{count}``; ``features``: every named feature; ``context``: every context
        attribute. Empty sections for an unknown person.
        """
        from attune.features.catalog import CONTEXT_ATTRIBUTES, FEATURE_NAMES

        with self.lock:
            person = self.persons.get(subject_key)
            reader = _Reader(self, person, to_micros(now))
            windows: dict[str, Any] = {}
            records = reader.records
            codes = sorted(set(records["typ"].tolist()))
            items = records["item"]
            categories = sorted(
                {c for i in set(items[items >= 0].tolist()) for c in self.categories.get(self.item_names[i])}
            )
            for window in self.defs.windows:
                per_type: dict[str, Any] = {}
                for code in codes:
                    name = self.type_names[code]
                    got = reader.values(
                        [FeatureRef(k, name, window_seconds=window) for k in ("count", "distinct")]
                        + [FeatureRef("sum", name, field="value", window_seconds=window)]
                    )
                    count, distinct, total = got.values()
                    if count:
                        per_type[name] = {"count": count, "distinct": distinct, "value": total}
                per_category: dict[str, int] = {}
                for category in categories:
                    n = sum(
                        reader.values(
                            [
                                FeatureRef(
                                    "count", self.type_names[c], window_seconds=window, category=category
                                )
                            ]
                        ).popitem()[1]
                        for c in codes
                    )
                    if n:
                        per_category[category] = n
                windows[format_window(window)] = {"events": per_type, "categories": per_category}
            feature_refs = [FeatureRef("feature", name=n) for n in sorted(FEATURE_NAMES)]
            context_refs = [FeatureRef("context", name=n) for n in sorted(CONTEXT_ATTRIBUTES)]
            features = reader.values(feature_refs)
            context = reader.values(context_refs)
        return {
            "windows": windows,
            "features": {r.name: v for r, v in features.items()},
            "context": {r.name: v for r, v in context.items()},
        }

    def next_expiry(self, subject_key: str, windows: Iterable[float], now: float) -> float | None:
        """The earliest instant after ``now`` at which a windowed value changes without new events.

        That is when the oldest event inside a window leaves it (its time + the window) or when
        a future-dated event's time arrives; ``None`` when nothing is pending.
        """
        now_us = to_micros(now)
        with self.lock:
            person = self.persons.get(subject_key)
            if person is None or not person.buf:
                return None
            ts = person.records()["ts"].copy()
        candidates: list[int] = []
        future = ts[ts > now_us]
        if len(future):
            candidates.append(int(future.min()))
        for window in windows:
            w_us = to_micros(window)
            inside = ts[(ts > now_us - w_us) & (ts <= now_us)]
            if len(inside):
                candidates.append(int(inside.min()) + w_us)
        return min(candidates) / 1e6 if candidates else None

    def subject_keys(self) -> list[str]:
        """Every person the store knows."""
        with self.lock:
            return list(self.persons)

    # -- persistence ---------------------------------------------------------
    def dump(self, subject_key: str) -> bytes | None:
        """One person's state as bytes (self-contained: names, not codes); None if unknown."""
        person = self.persons.get(subject_key)
        if person is None:
            return None
        records = person.records().copy()
        header: dict[str, Any] = {}
        for column, names, tag in (
            ("typ", self.type_names, "t"),
            ("item", self.item_names, "i"),
            ("ctx", self.contexts, "c"),
        ):
            unique, inverse = _unique_inverse(records[column])
            header[tag] = [names[c] if c >= 0 else None for c in unique]
            records[column] = inverse
        header["p"] = self._dump_pruned(person.pruned) if person.pruned is not None else None
        head = orjson.dumps(header)
        return struct.pack("<I", len(head)) + head + records.tobytes()

    def load(self, subject_key: str, blob: bytes) -> None:
        """Restore one person's state written by :meth:`dump`."""
        (size,) = struct.unpack_from("<I", blob)
        header = orjson.loads(blob[4 : 4 + size])
        records = np.frombuffer(blob[4 + size :], dtype=EVENT_DTYPE).copy()
        maps = {
            "typ": [self.type_code(n) for n in header["t"]],
            "item": [self.item_code(n) if n is not None else -1 for n in header["i"]],
            "ctx": [self.context_code(tuple(n)) for n in header["c"]],
        }
        for column, mapping in maps.items():
            if len(records):
                records[column] = np.asarray(mapping, dtype=np.int64)[records[column]]
        person = Person()
        person.buf = bytearray(records.tobytes())
        if header["p"] is not None:
            person.pruned = self._load_pruned(header["p"])
        if len(records):
            self.watermark = max(self.watermark, int(records["ts"].max()))
        self.persons[subject_key] = person

    def _dump_pruned(self, pruned: Pruned) -> dict[str, Any]:
        last = pruned.last_behaviour
        return {
            "max_ts": pruned.max_ts,
            "agg": [
                [self.type_names[t], c, n, v, d, [self.item_names[i] for i in sorted(items)]]
                for (t, c), (n, v, d, items) in pruned.agg.items()
            ],
            "last": None if last is None else [last[0], last[1], list(self.contexts[last[2]])],
            "ctx": [None if c is None else list(c) for c in pruned.context],
        }

    def _load_pruned(self, data: dict[str, Any]) -> Pruned:
        pruned = Pruned(max_ts=int(data["max_ts"]))
        self.watermark = max(self.watermark, pruned.max_ts)
        for t, c, n, v, d, item_names in data["agg"]:
            pruned.agg[(self.type_code(t), c)] = [n, v, d, {self.item_code(i) for i in item_names}]
        if data["last"] is not None:
            ts, off, ctx = data["last"]
            pruned.last_behaviour = (ts, off, self.context_code(tuple(ctx)))
        pruned.context = [None if c is None else (c[0], c[1], c[2]) for c in data["ctx"]]
        return pruned


def _merge_pruned(into: Pruned, other: Pruned) -> None:
    into.max_ts = max(into.max_ts, other.max_ts)
    for key, (n, v, d, items) in other.agg.items():
        entry = into.agg.get(key)
        if entry is None:
            into.agg[key] = [n, v, d, set(items)]
        else:
            entry[0] += n
            entry[1] += v
            entry[2] += d
            entry[3] |= items
    if other.last_behaviour is not None and (
        into.last_behaviour is None or other.last_behaviour[:2] > into.last_behaviour[:2]
    ):
        into.last_behaviour = other.last_behaviour
    for i, theirs in enumerate(other.context):
        if theirs is not None and (into.context[i] is None or theirs[:2] > into.context[i][:2]):
            into.context[i] = theirs


class _Reader:
    """Answers refs for one person at one instant, reusing masks between refs."""

    def __init__(self, store: FeatureStore, person: Person | None, now_us: int) -> None:
        self.store = store
        self.defs = store.defs
        self.now_us = now_us
        self.pruned = person.pruned if person is not None else None
        # A copy, so nothing here holds the person's buffer (which must stay resizable).
        self.records = person.records().copy() if person is not None else _EMPTY
        self.ts = self.records["ts"]
        self._windows: dict[float | None, np.ndarray] = {}

    def window(self, seconds: float | None) -> np.ndarray:
        mask = self._windows.get(seconds)
        if mask is None:
            mask = self.ts <= self.now_us
            if seconds is not None:
                floor = self.now_us - to_micros(seconds)
                if self.pruned is not None and self.pruned.max_ts > floor:
                    raise ValidationFailed(
                        f"window {format_window(seconds)} at this instant reaches events already folded "
                        "into all-time aggregates; online values are exact only near the present"
                    )
                mask &= self.ts > floor
            elif self.pruned is not None and self.pruned.max_ts > self.now_us:
                raise ValidationFailed("all-time values at this instant would include later, folded events")
            self._windows[seconds] = mask
        return mask

    def values(self, refs: Iterable[FeatureRef]) -> dict[FeatureRef, Any]:
        out: dict[FeatureRef, Any] = {}
        for ref in refs:
            self.defs.check(ref)
            if ref.kind in ("count", "sum", "distinct"):
                out[ref] = self.aggregate(ref)
            elif ref.kind == "feature":
                out[ref] = self.feature(ref.name or "", self.defs.window_of(ref))
            else:
                out[ref] = self.context(ref.name or "")
        return out

    def aggregate(self, ref: FeatureRef) -> int | float:
        store = self.store
        code = store.type_codes.get(ref.event_type or "")
        category = normalize_category(ref.category) if ref.category is not None else None
        records = self.records
        if code is None or not len(records):
            mask = np.zeros(len(records), dtype=bool)
        else:
            mask = self.window(ref.window_seconds) & (records["typ"] == code)
            if category is not None:
                mask &= store._category_mask(category)[records["item"] + 1]
        folded = None
        if ref.window_seconds is None and self.pruned is not None and code is not None:
            folded = self.pruned.agg.get((code, category))
        if ref.kind == "count":
            return int(mask.sum()) + (folded[0] if folded else 0)
        if ref.kind == "sum":
            column, slot = ("dwell", 2) if ref.field == "dwell_seconds" else ("val", 1)
            values = records[column][mask]
            total = float(values[~np.isnan(values)].sum())
            return total + (folded[slot] if folded else 0.0)
        items = records["item"][mask]
        distinct = set(items[items >= 0].tolist())
        if folded:
            distinct |= folded[3]
        return len(distinct)

    def _latest(self, mask: np.ndarray) -> int | None:
        """Index of the latest record (by time, then offset) among ``mask``; None if none."""
        idx = np.flatnonzero(mask)
        if not len(idx):
            return None
        ts = self.ts[idx]
        top = idx[ts == ts.max()]
        if len(top) > 1:
            top = top[self.records["off"][top] == self.records["off"][top].max()]
        return int(top[0])

    def last_behaviour(self) -> tuple[int, int, str | None] | None:
        """(time, offset, time zone) of the latest behavioural event at or before now."""
        records = self.records
        best: tuple[int, int, str | None] | None = None
        if len(records):
            behaviour = self.store._types_mask("behaviour")[records["typ"]] & (self.ts <= self.now_us)
            i = self._latest(behaviour)
            if i is not None:
                ctx = int(records["ctx"][i])
                best = (int(self.ts[i]), int(records["off"][i]), self.store.contexts[ctx][TZ_INDEX])
        folded = self.pruned.last_behaviour if self.pruned is not None else None
        if folded is not None and folded[0] <= self.now_us and (best is None or folded[:2] > best[:2]):
            best = (folded[0], folded[1], self.store.contexts[folded[2]][TZ_INDEX])
        return best

    def feature(self, name: str, window: float | None) -> Any:
        if name == "recency_days":
            last = self.last_behaviour()
            return None if last is None else float(recency_days(self.now_us, last[0]))
        records = self.records
        store = self.store
        if not len(records):
            inside = np.zeros(0, dtype=bool)
        else:
            inside = self.window(window)
        typ = records["typ"]
        behaviour = inside & store._types_mask("behaviour")[typ] if len(records) else inside
        if name == "frequency":
            return int(behaviour.sum())
        if name == "active_days":
            return len(np.unique(self.ts[behaviour] // DAY_MICROS))
        if name == "monetary":
            return _nansum(records["val"][inside & store._types_mask(self.defs.purchase_types)[typ]])
        if name == "dwell_seconds":
            return _nansum(records["dwell"][inside])
        if name == "share_rate":
            return self._share_rate(inside, typ)
        components = {
            "dwell_seconds": _nansum(records["dwell"][inside]),
            "share_rate": self._share_rate(inside, typ),
            "active_days": len(np.unique(self.ts[behaviour] // DAY_MICROS)),
            "frequency": int(behaviour.sum()),
            "monetary": _nansum(records["val"][inside & store._types_mask(self.defs.purchase_types)[typ]]),
        }
        return float(engagement_score(components, self.defs))

    def _share_rate(self, inside: np.ndarray, typ: np.ndarray) -> float:
        shares = int((inside & self.store._types_mask(self.defs.share_types)[typ]).sum())
        views = int((inside & self.store._types_mask(self.defs.view_types)[typ]).sum())
        return float(share_rate(shares, views))

    def context(self, name: str) -> Any:
        if name in ("hour", "weekday", "daypart"):
            last = self.last_behaviour()
            if last is None:
                return None
            hour, weekday = local_clock(last[0], last[2])
            return hour if name == "hour" else WEEKDAYS[weekday] if name == "weekday" else daypart(hour)
        index = STORED_CONTEXT.index(name)
        records = self.records
        best: tuple[int, int, str] | None = None
        if len(records):
            carries = self.store._context_mask(index)[records["ctx"]] & (self.ts <= self.now_us)
            i = self._latest(carries)
            if i is not None:
                value = self.store.contexts[int(records["ctx"][i])][index]
                best = (int(self.ts[i]), int(records["off"][i]), value)  # type: ignore[assignment]
        folded = self.pruned.context[index] if self.pruned is not None else None
        if folded is not None and folded[0] <= self.now_us and (best is None or folded[:2] > best[:2]):
            best = folded
        return None if best is None else best[2]


def _nansum(values: np.ndarray) -> float:
    return float(values[~np.isnan(values)].sum())


#: Below this many records a Python dict beats ``np.unique``'s fixed cost (~20 µs a call).
_SMALL = 64


def _unique_inverse(codes: np.ndarray) -> tuple[list[int], Any]:
    """Sorted distinct ``codes`` and each code's index among them (``np.unique(..., return_inverse=True)``).

    Most people hold a handful of records, and :meth:`FeatureStore.dump` runs this three
    times per person on every flush, so small arrays take a plain-Python path with the same
    result.
    """
    if len(codes) > _SMALL:
        unique, inverse = np.unique(codes, return_inverse=True)
        return unique.tolist(), inverse
    values = codes.tolist()
    unique = sorted(set(values))
    position = {code: i for i, code in enumerate(unique)}
    return unique, [position[code] for code in values]
