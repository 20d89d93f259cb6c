"""The data-mart views built over the lake's ``events`` view.

Both views are plain SQL over ``events``, so they are always current with the files on disk
and cost nothing until queried. ``date`` is the UTC day of the event (the partition).

``daily_item_stats`` — one row per (date, item_id) for events that name an item:

    date             DATE         UTC day of the events.
    item_id          VARCHAR      The item.
    views            BIGINT       ``view`` events.
    clicks           BIGINT       ``click`` events.
    add_to_carts     BIGINT       ``add_to_cart`` events.
    purchases        BIGINT       ``purchase`` events.
    ratings          BIGINT       ``rating`` events.
    unique_users     BIGINT       Distinct people (user_id, else anonymous_id) with any event on the item.
    revenue          DOUBLE       Sum of ``value`` over purchases (0 when none carry a value).
    conversion_rate  DOUBLE       purchases / views; NULL when the item had no views that day.

``daily_user_activity`` — one row per (date, person); a person is user_id, else anonymous_id
(events before and after an identify count as two people here; profiles do the stitching):

    date             DATE         UTC day of the events.
    user_id          VARCHAR      coalesce(user_id, anonymous_id) of the events.
    events           BIGINT       Events of any type.
    sessions         BIGINT       Distinct session ids.
    items            BIGINT       Distinct items acted on.
    views            BIGINT       ``view`` events.
    purchases        BIGINT       ``purchase`` events.
    revenue          DOUBLE       Sum of ``value`` over purchases (0 when none carry a value).
    first_seen       TIMESTAMPTZ  Earliest event time that day.
    last_seen        TIMESTAMPTZ  Latest event time that day.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mart:
    """A named view and the SQL ``SELECT`` that defines it."""

    name: str
    select: str
    description: str

    def create_sql(self) -> str:
        """The ``CREATE OR REPLACE VIEW`` statement for this mart."""
        return f"CREATE OR REPLACE VIEW {self.name} AS {self.select}"

    def comment_sql(self) -> str:
        """``COMMENT ON VIEW`` so ``duckdb_views()`` shows what the view holds."""
        return f"COMMENT ON VIEW {self.name} IS '{self.description.replace(chr(39), chr(39) * 2)}'"


DAILY_ITEM_STATS = Mart(
    name="daily_item_stats",
    description="One row per (date, item_id) for events that name an item.",
    select="""
SELECT
    date,
    item_id,
    count(*) FILTER (WHERE type = 'view') AS views,
    count(*) FILTER (WHERE type = 'click') AS clicks,
    count(*) FILTER (WHERE type = 'add_to_cart') AS add_to_carts,
    count(*) FILTER (WHERE type = 'purchase') AS purchases,
    count(*) FILTER (WHERE type = 'rating') AS ratings,
    count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_users,
    coalesce(sum(value) FILTER (WHERE type = 'purchase'), 0.0) AS revenue,
    CAST(count(*) FILTER (WHERE type = 'purchase') AS DOUBLE)
        / nullif(count(*) FILTER (WHERE type = 'view'), 0) AS conversion_rate
FROM events
WHERE item_id IS NOT NULL
GROUP BY date, item_id
""",
)

DAILY_USER_ACTIVITY = Mart(
    name="daily_user_activity",
    description="One row per (date, person); a person is user_id, else anonymous_id.",
    select="""
SELECT
    date,
    coalesce(user_id, anonymous_id) AS user_id,
    count(*) AS events,
    count(DISTINCT session_id) AS sessions,
    count(DISTINCT item_id) AS items,
    count(*) FILTER (WHERE type = 'view') AS views,
    count(*) FILTER (WHERE type = 'purchase') AS purchases,
    coalesce(sum(value) FILTER (WHERE type = 'purchase'), 0.0) AS revenue,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen
FROM events
GROUP BY date, coalesce(user_id, anonymous_id)
""",
)

#: Every mart registered by :func:`attune.lake.query.connect`, in creation order.
MARTS = (DAILY_ITEM_STATS, DAILY_USER_ACTIVITY)
