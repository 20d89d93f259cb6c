"""Behaviour: when users come, what they look at, and how far down the funnel they go.

Everything is drawn for a whole block of users at once with numpy. A session lives in its
own three-hour slot of the period (starting within the slot's first hour, lasting at most
55 minutes), so two sessions of one user are always more than 30 minutes apart. Slots are
picked with a daily activity curve on the user's local clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attune.synth.catalog import Catalog
from attune.synth.pages import (
    CATEGORY_PAGE0,
    CHECKOUT,
    EXTERNAL_SHARES,
    HOME,
    ITEM_PAGE0,
    LOGIN,
    QUERY_PAGE0,
)
from attune.synth.population import CITIES, Population
from attune.synth.segments import BEHAVIOURS, REFERENCE_DAYS
from attune.synth.table import (
    ADD_TO_CART,
    CLICK,
    IDENTIFY,
    PAGE_VIEW,
    PURCHASE,
    RATING,
    SEARCH,
    TYPES,
    VIEW,
    EventTable,
)
from attune.synth.vocabulary import CATEGORIES, QUERIES_PER_CATEGORY

SLOT_SECONDS = 3 * 3600
SLOTS_PER_DAY = 24 * 3600 // SLOT_SECONDS
START_JITTER_SECONDS = 3600
#: Slot length minus jitter minus this leaves 65 minutes between sessions at the least.
MAX_SESSION_SECONDS = 55 * 60
#: Share of item views that follow overall popularity (home page, trending) instead of taste.
EXPLORE_SHARE = 0.15
#: How much less often an unavailable item is shown than its popularity suggests.
UNAVAILABLE_WEIGHT = 0.1
#: Share of users drawn to start anonymously who stay anonymous for two sessions, not one.
TWO_ANONYMOUS_SESSIONS = 0.35

#: Relative activity per local hour of day: quiet nights, a lunch bump, a prime-time peak.
HOURLY_ACTIVITY: tuple[float, ...] = (
    0.8, 0.4, 0.2, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 1.8, 2.0, 2.2,
    2.6, 2.4, 2.2, 2.2, 2.4, 2.8, 3.4, 4.0, 4.4, 4.0, 3.0, 1.6,
)  # fmt: skip

# Seconds before an event of each type (TYPES order): a minimum plus an exponential part.
_GAP_MIN = np.array([1, 1, 3, 5, 5, 2, 5, 20])
_GAP_MEAN = np.array([2.0, 3.0, 15.0, 40.0, 20.0, 12.0, 25.0, 60.0])
# Position of an event inside its session: identify, landing page, searches, then one block
# of up to VIEW_BLOCK positions per viewed item (view, rating, click, cart, purchase).
_VIEW_BLOCK = 8
_FIRST_VIEW_ORDER = 10
_IN_BLOCK = {VIEW: 0, RATING: 1, CLICK: 2, ADD_TO_CART: 3, PURCHASE: 4}

assert len(_GAP_MIN) == len(_GAP_MEAN) == len(TYPES)


class ItemSampler:
    """Draws items by popularity, within a category or overall, for many rows at once."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        # A shop does not promote what it cannot sell; without this a sold-out hit would soak
        # up a big share of views that can never convert.
        weight = catalog.popularity * np.where(catalog.available, 1.0, UNAVAILABLE_WEIGHT)
        self.overall = np.cumsum(weight)
        self.members: list[np.ndarray] = []
        self.cumulative: dict[tuple[int, bool], np.ndarray] = {}
        for cat in range(len(CATEGORIES)):
            members = np.flatnonzero(catalog.category == cat)
            self.members.append(members)
            pop = weight[members]
            self.cumulative[cat, False] = np.cumsum(pop)
            # Weighting by price as well pulls big spenders towards dearer items.
            self.cumulative[cat, True] = np.cumsum(pop * catalog.price[members])

    def draw(
        self, category: np.ndarray, pricey: np.ndarray, explore: np.ndarray, u: np.ndarray
    ) -> np.ndarray:
        """One item per row; ``u`` holds uniform draws in [0, 1), one per row."""
        item = np.empty(len(u), dtype=np.int32)
        rows = np.flatnonzero(explore)
        item[rows] = self._search(self.overall, u[rows])
        for (cat, flag), cumulative in self.cumulative.items():
            rows = np.flatnonzero(~explore & (category == cat) & (pricey == flag))
            if len(rows):
                item[rows] = self.members[cat][self._search(cumulative, u[rows])]
        return item

    @staticmethod
    def _search(cumulative: np.ndarray, u: np.ndarray) -> np.ndarray:
        index = np.searchsorted(cumulative, u * cumulative[-1], side="right")
        return np.minimum(index, len(cumulative) - 1)


@dataclass(frozen=True, slots=True, eq=False)
class BlockBehaviour:
    """The events of one block of users and, per user, how many sessions were anonymous."""

    table: EventTable
    anonymous_sessions: np.ndarray
    n_sessions: int


def simulate_block(
    rng: np.random.Generator, users: Population, sampler: ItemSampler, start: int, days: int
) -> BlockBehaviour:
    """Simulate ``days`` days from epoch second ``start`` for ``users``.

    The table's ``user`` and ``session`` columns are local to the block, rows are grouped by
    session in session order (not yet sorted by time).
    """
    seg = users.segment.astype(np.intp)
    scale = days / REFERENCE_DAYS

    # Sessions: count, slot, start time, and whether they are anonymous.
    base = np.array([max(2, round(b.base_sessions * scale)) for b in BEHAVIOURS])[seg]
    extra = np.array([b.extra_sessions * scale for b in BEHAVIOURS])[seg]
    s_user = np.repeat(np.arange(len(users)), base + rng.poisson(extra))
    slot = _pick_slots(rng, users, s_user, start, days)
    s_user, slot = _drop_double_bookings(s_user, slot)
    n_sess = np.bincount(s_user, minlength=len(users))
    first_session = np.cumsum(n_sess) - n_sess
    rank = np.arange(len(s_user)) - first_session[s_user]
    s_start = start + slot.astype(np.int64) * SLOT_SECONDS + rng.integers(0, START_JITTER_SECONDS, len(slot))

    wanted = np.where(users.wants_anonymous, 1 + (rng.random(len(users)) < TWO_ANONYMOUS_SESSIONS), 0)
    # At least one session must remain to identify in.
    anonymous_sessions = np.minimum(wanted, n_sess - 1)
    s_known = rank >= anonymous_sessions[s_user]
    s_identify = rank == anonymous_sessions[s_user]
    s_seg = seg[s_user]
    taste_cum = np.cumsum(users.taste, axis=1)

    rows: list[dict[str, np.ndarray]] = []
    sessions = np.arange(len(s_user))
    identify = sessions[s_identify]
    rows.append(_rows(identify, IDENTIFY, 0, page=LOGIN))

    # Landing page: the home page or a category page the user likes.
    landing_cat = _pick_cumulative(rng, taste_cum[s_user])
    landing = np.where(rng.random(len(sessions)) < 0.5, HOME, CATEGORY_PAGE0 + landing_cat)
    rows.append(_rows(sessions, PAGE_VIEW, 1, page=landing))

    p_search = np.array([b.search for b in BEHAVIOURS])[s_seg]
    n_search = (rng.random(len(sessions)) < p_search).astype(np.int64)
    n_search += rng.random(len(sessions)) < p_search * 0.3
    q_session = np.repeat(sessions, n_search)
    q_cat = _pick_cumulative(rng, taste_cum[s_user[q_session]])
    query = q_cat * QUERIES_PER_CATEGORY + rng.integers(QUERIES_PER_CATEGORY, size=len(q_session))
    q_order = 2 + np.arange(len(q_session)) - (np.cumsum(n_search) - n_search)[q_session]
    rows.append(_rows(q_session, SEARCH, q_order, page=QUERY_PAGE0 + query))

    rows.extend(_views(rng, users, sampler, s_user, s_seg, taste_cum))

    table = _assemble(rng, rows, s_user, s_known, s_start)
    return BlockBehaviour(table=table, anonymous_sessions=anonymous_sessions, n_sessions=len(s_user))


def _views(
    rng: np.random.Generator,
    users: Population,
    sampler: ItemSampler,
    s_user: np.ndarray,
    s_seg: np.ndarray,
    taste_cum: np.ndarray,
) -> list[dict[str, np.ndarray]]:
    # Items viewed, then the funnel, each step conditional on the previous one.
    catalog = sampler.catalog
    base = np.array([b.base_views for b in BEHAVIOURS])[s_seg]
    extra = np.array([b.extra_views for b in BEHAVIOURS])[s_seg]
    per_session = base + rng.poisson(extra)
    v_session = np.repeat(np.arange(len(s_user)), per_session)
    v_index = np.arange(len(v_session)) - (np.cumsum(per_session) - per_session)[v_session]
    v_user = s_user[v_session]
    seg = users.segment.astype(np.intp)[v_user]

    wanted_cat = _pick_cumulative(rng, taste_cum[v_user])
    explore = rng.random(len(v_session)) < EXPLORE_SHARE
    pricey = np.array([b.prefers_expensive for b in BEHAVIOURS])[seg]
    item = sampler.draw(wanted_cat, pricey, explore, rng.random(len(v_session)))
    item_cat = catalog.category[item].astype(np.intp)
    price = catalog.price[item]

    click = rng.random(len(item)) < np.array([b.click for b in BEHAVIOURS])[seg]
    cart = click & (rng.random(len(item)) < np.array([b.cart for b in BEHAVIOURS])[seg])
    cart &= catalog.available[item]
    purchase = cart & (rng.random(len(item)) < np.array([b.purchase for b in BEHAVIOURS])[seg])
    rate = rng.random(len(item)) < np.array([b.rating for b in BEHAVIOURS])[seg]
    # Ratings follow taste: the favourite category earns 4-5 stars, disliked ones 1-2.
    affinity = users.taste[v_user, item_cat] / users.taste[v_user].max(axis=1)
    stars = np.clip(np.rint(1.2 + 3.8 * affinity + rng.normal(0.0, 0.6, len(item))), 1, 5)

    order = _FIRST_VIEW_ORDER + _VIEW_BLOCK * v_index
    item_page = ITEM_PAGE0 + item
    out = [_rows(v_session, VIEW, order, item=item, page=item_page)]
    for kind, mask, value, page in (
        (RATING, rate, stars, item_page),
        (CLICK, click, None, item_page),
        (ADD_TO_CART, cart, None, item_page),
        (PURCHASE, purchase, price, np.full(len(item), CHECKOUT)),
    ):
        out.append(
            _rows(
                v_session[mask],
                kind,
                order[mask] + _IN_BLOCK[kind],
                item=item[mask],
                page=page[mask],
                value=None if value is None else value[mask],
            )
        )
    return out


def _rows(
    session: np.ndarray,
    kind: int,
    order: int | np.ndarray,
    *,
    page: int | np.ndarray,
    item: np.ndarray | None = None,
    value: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    n = len(session)
    return {
        "session": session,
        "type": np.full(n, kind, dtype=np.int8),
        "order": np.broadcast_to(order, n),
        "item": np.full(n, -1, dtype=np.int32) if item is None else item,
        "value": np.full(n, np.nan) if value is None else value.astype(np.float64),
        "page": np.broadcast_to(page, n),
    }


def _assemble(
    rng: np.random.Generator,
    rows: list[dict[str, np.ndarray]],
    s_user: np.ndarray,
    s_known: np.ndarray,
    s_start: np.ndarray,
) -> EventTable:
    col = {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}
    index = np.lexsort((col["order"], col["session"]))
    col = {name: values[index] for name, values in col.items()}
    session, kind = col["session"].astype(np.int64), col["type"]

    counts = np.bincount(session, minlength=len(s_user))
    first_row = np.cumsum(counts) - counts
    # Every session has its landing page view, so no session is empty.
    is_first = np.zeros(len(session), dtype=bool)
    is_first[first_row] = True

    gap = _GAP_MIN[kind] + np.floor(rng.exponential(_GAP_MEAN[kind])).astype(np.int64)
    gap[is_first] = 0
    offset = _offsets(gap, session, first_row)
    # Squeeze over-long sessions to the cap, keeping at least a second between events so
    # timestamps still strictly increase inside a session.
    last_row = first_row + counts - 1
    duration = offset[last_row]
    steps = counts - 1
    too_long = duration > MAX_SESSION_SECONDS
    if too_long.any():
        shrink = np.ones(len(counts))
        shrink[too_long] = (MAX_SESSION_SECONDS - steps[too_long]) / (duration[too_long] - steps[too_long])
        squeezed = 1 + np.floor((gap - 1) * shrink[session]).astype(np.int64)
        gap = np.where(too_long[session] & ~is_first, squeezed, gap)
        offset = _offsets(gap, session, first_row)

    referrer = np.empty(len(session), dtype=np.int32)
    referrer[1:] = col["page"][:-1]
    external = rng.choice(len(EXTERNAL_SHARES), size=int(is_first.sum()), p=EXTERNAL_SHARES)
    referrer[is_first] = -(external + 1)

    return EventTable(
        timestamp=s_start[session] + offset,
        session=session,
        order=col["order"].astype(np.int32),
        user=s_user[session].astype(np.int32),
        type=kind.astype(np.int8),
        item=col["item"].astype(np.int32),
        value=col["value"],
        page=col["page"].astype(np.int32),
        referrer=referrer,
        known=s_known[session],
    )


def _offsets(gap: np.ndarray, session: np.ndarray, first_row: np.ndarray) -> np.ndarray:
    # Seconds since the session's first event: a running sum restarted at each session.
    # (The first row's own gap is zero, so subtracting its running total is enough.)
    total = np.cumsum(gap)
    return total - total[first_row[session]]


def _pick_cumulative(rng: np.random.Generator, cumulative: np.ndarray) -> np.ndarray:
    # One categorical draw per row of row-wise cumulative weights.
    u = rng.random(len(cumulative)) * cumulative[:, -1]
    return np.minimum((cumulative <= u[:, None]).sum(axis=1), cumulative.shape[1] - 1)


def _pick_slots(
    rng: np.random.Generator, users: Population, s_user: np.ndarray, start: int, days: int
) -> np.ndarray:
    n_slots = days * SLOTS_PER_DAY
    half = n_slots // 2
    first_half_only = np.array([b.first_half_only for b in BEHAVIOURS])[users.segment.astype(np.intp)][s_user]
    is_first = np.ones(len(s_user), dtype=bool)
    is_first[1:] = s_user[1:] != s_user[:-1]
    # Everyone who has not churned gets one session in the second half, so "no activity
    # after the midpoint" singles out the churned exactly.
    lo = np.where(is_first & ~first_half_only, half, 0)
    hi = np.where(first_half_only, half, n_slots)

    position = _pick_cumulative(rng, np.cumsum(_slot_weights(start), axis=1)[users.city[s_user]])
    # The day is uniform among days whose slot at this position lies inside [lo, hi).
    day_lo = -((position - lo) // SLOTS_PER_DAY)
    day_hi = (hi - 1 - position) // SLOTS_PER_DAY
    u = rng.random(len(s_user))
    slot = (day_lo + np.floor(u * (day_hi - day_lo + 1)).astype(np.int64)) * SLOTS_PER_DAY + position
    # Very short periods can leave no such day; any slot in range will do then.
    empty = day_hi < day_lo
    slot[empty] = lo[empty] + np.floor(u[empty] * (hi - lo)[empty]).astype(np.int64)
    return slot


def _slot_weights(start: int) -> np.ndarray:
    # (city, slot position in day): activity at the slot's middle on the city's local clock.
    start_hour = (start % 86400) / 3600
    middle = start_hour + SLOT_SECONDS / 3600 * (np.arange(SLOTS_PER_DAY) + 0.5)
    offsets = np.array([c[2] for c in CITIES])
    local = np.floor(middle[None, :] + offsets[:, None]).astype(int) % 24
    return np.asarray(HOURLY_ACTIVITY)[local]


def _drop_double_bookings(s_user: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Two sessions of one user in the same slot would overlap: keep one, in slot order.
    index = np.lexsort((slot, s_user))
    s_user, slot = s_user[index], slot[index]
    keep = np.ones(len(slot), dtype=bool)
    keep[1:] = (s_user[1:] != s_user[:-1]) | (slot[1:] != slot[:-1])
    return s_user[keep], slot[keep]
