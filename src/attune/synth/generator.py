"""The entry points: generate a whole data set, stream its events, or produce it in blocks.

Randomness is split by purpose and by block of users with ``numpy.random.SeedSequence``
spawn keys: the catalog, each block's users and each block's behaviour draw from their own
streams. Users are simulated in fixed-size blocks, so a block's users and events do not
depend on how many blocks follow; that is what lets :func:`iter_blocks` scale to millions
of users in bounded memory while producing the same people as :func:`generate`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np

from attune.synth.catalog import Catalog, build_catalog
from attune.synth.native import iter_native_events
from attune.synth.population import Population, build_population
from attune.synth.sessions import BlockBehaviour, ItemSampler, simulate_block
from attune.synth.table import EventTable
from attune.synth.truth import GroundTruth, build_truth

#: The default end of the period: fixed, so output never depends on the wall clock.
DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
#: Users simulated together. Changing it changes every data set, so it is not a parameter.
BLOCK_USERS = 4096

_CATALOG_STREAM, _USERS_STREAM, _BEHAVIOUR_STREAM = 0, 1, 2


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """A generated data set: catalog, users, events (column-wise) and the planted truth.

    ``table`` rows are sorted by timestamp; :meth:`iter_events` turns them into native event
    dicts on the fly. ``first_event_number`` offsets event ids (non-zero only for blocks
    after the first from :func:`iter_blocks`).
    """

    seed: int
    start: datetime
    end: datetime
    days: int
    catalog: Catalog
    population: Population
    table: EventTable
    truth: GroundTruth
    first_event_number: int = 0

    @property
    def n_events(self) -> int:
        """How many events there are."""
        return len(self.table)

    def iter_events(self) -> Iterator[dict[str, Any]]:
        """Native events in timestamp order, built one at a time (cheap on memory)."""
        return iter_native_events(
            self.table, self.catalog, self.population, self.seed, self.first_event_number
        )

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """All native events as a list (built on first access; prefer iter_events for big sets)."""
        # Millions of fresh dicts set off repeated full garbage collections that scan them all
        # for cycles they cannot have; pausing the collector keeps this linear.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return list(self.iter_events())
        finally:
            if enabled:
                gc.enable()

    @cached_property
    def items(self) -> list[dict[str, Any]]:
        """All items as dicts (see :meth:`Catalog.records`)."""
        return self.catalog.records()

    @cached_property
    def users(self) -> list[dict[str, Any]]:
        """All users as dicts (see :meth:`Population.records`)."""
        return self.population.records()


def generate(
    seed: int = 42,
    n_users: int = 1000,
    n_items: int = 500,
    days: int = 28,
    end: datetime | None = None,
    anonymous_share: float = 0.3,
) -> SyntheticData:
    """Generate a synthetic data set with planted structure; the same arguments give the same data.

    ``end`` is the end of the period (default :data:`DEFAULT_END`; naive datetimes are read as
    UTC, fractions of a second are dropped); the period is the ``days`` days before it.
    ``anonymous_share`` of users browse anonymously for their first one or two sessions
    before an identify event links their ``anonymous_id`` to their ``user_id``; every user
    has exactly one identify event, carrying age, gender, country and city as traits.

    Planted segments (shares of users) and the rule that recovers each from the events
    (exact wording and numbers in ``truth.rules``; see :mod:`attune.synth.rules`):

    * ``churned`` (15 %): no event at or after the midpoint of the period.
    * ``drama_fans`` (15 %): at least 20 views, at least half of them on drama items.
    * ``big_spenders`` (10 %): at least 4 purchases, on at least 15 % of views.
    * ``mobile_browsers`` (10 %): only mobile, at least 50 views, no purchase, carts on < 3 % of views.
    * ``casual`` (50 %): none of the above (rules tried in this order).

    Counts are for 28 days and scale with ``days``.
    """
    blocks = list(_blocks(seed, n_users, n_items, days, end, anonymous_share))
    catalog, start, stop = blocks[0][0], blocks[0][1], blocks[0][2]
    populations = [b[3] for b in blocks]
    tables = [b[4].table for b in blocks]
    user_offsets = np.cumsum([0] + [len(p) for p in populations[:-1]]).tolist()
    session_offsets = np.cumsum([0] + [b[4].n_sessions for b in blocks[:-1]]).tolist()
    population = Population.concat(populations)
    table = EventTable.concat(tables, user_offsets, session_offsets).sorted_by_time()
    anonymous_sessions = np.concatenate([b[4].anonymous_sessions for b in blocks])
    return SyntheticData(
        seed=seed,
        start=start,
        end=stop,
        days=days,
        catalog=catalog,
        population=population,
        table=table,
        truth=build_truth(seed, start, stop, days, population, anonymous_sessions),
    )


def iter_events(
    seed: int = 42,
    n_users: int = 1000,
    n_items: int = 500,
    days: int = 28,
    end: datetime | None = None,
    anonymous_share: float = 0.3,
) -> Iterator[dict[str, Any]]:
    """The native events of :func:`generate` with the same arguments, one at a time.

    The column-wise table is held in memory (tens of bytes per event); only the dicts are
    streamed. For bounded memory at any size use :func:`iter_blocks`.
    """
    yield from generate(seed, n_users, n_items, days, end, anonymous_share).iter_events()


def iter_blocks(
    seed: int = 42,
    n_users: int = 1000,
    n_items: int = 500,
    days: int = 28,
    end: datetime | None = None,
    anonymous_share: float = 0.3,
) -> Iterator[SyntheticData]:
    """The data set of :func:`generate` in blocks of :data:`BLOCK_USERS` users.

    Each block has the full catalog, its own users, their events sorted by time and their
    truth. Users and their behaviour equal those of :func:`generate`; events are ordered by
    time only within a block, and event and session ids are numbered per run of blocks, so
    they differ from :func:`generate`'s (while staying unique across blocks).
    """
    first_event = 0
    session_offset = 0
    for catalog, start, stop, users, behaviour in _blocks(seed, n_users, n_items, days, end, anonymous_share):
        table = EventTable.concat([behaviour.table], [0], [session_offset]).sorted_by_time()
        yield SyntheticData(
            seed=seed,
            start=start,
            end=stop,
            days=days,
            catalog=catalog,
            population=users,
            table=table,
            truth=build_truth(seed, start, stop, days, users, behaviour.anonymous_sessions),
            first_event_number=first_event,
        )
        first_event += len(table)
        session_offset += behaviour.n_sessions


def _blocks(
    seed: int, n_users: int, n_items: int, days: int, end: datetime | None, anonymous_share: float
) -> Iterator[tuple[Catalog, datetime, datetime, Population, BlockBehaviour]]:
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    if not 0.0 <= anonymous_share <= 1.0:
        raise ValueError("anonymous_share must be between 0 and 1")
    stop = _period_end(end)
    start = stop - timedelta(days=days)
    catalog = build_catalog(_rng(seed, _CATALOG_STREAM), n_items)
    sampler = ItemSampler(catalog)
    id_width = max(5, len(str(n_users)))
    for block, first in enumerate(range(0, n_users, BLOCK_USERS)):
        size = min(BLOCK_USERS, n_users - first)
        users = build_population(_rng(seed, _USERS_STREAM, block), size, first + 1, id_width, anonymous_share)
        behaviour = simulate_block(
            _rng(seed, _BEHAVIOUR_STREAM, block), users, sampler, int(start.timestamp()), days
        )
        yield catalog, start, stop, users, behaviour


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _period_end(end: datetime | None) -> datetime:
    if end is None:
        return DEFAULT_END
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return end.astimezone(UTC).replace(microsecond=0)
