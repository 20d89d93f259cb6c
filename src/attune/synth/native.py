"""Turn event-table rows into native Attune event dicts, lazily and in order."""

from __future__ import annotations

from collections.abc import Iterator
from math import isnan
from typing import Any

import numpy as np

from attune.synth.catalog import Catalog
from attune.synth.pages import QUERY_PAGE0, url_table
from attune.synth.population import CITIES, USER_AGENTS, Population
from attune.synth.segments import DEVICES
from attune.synth.table import ADD_TO_CART, IDENTIFY, PURCHASE, SEARCH, TYPES, EventTable
from attune.synth.vocabulary import QUERIES

CURRENCY = "EUR"
_CHUNK = 65_536


def iso_strings(timestamps: np.ndarray) -> list[str]:
    """ISO 8601 UTC text (``2026-11-01T10:00:00Z``) for integer epoch seconds, vectorized."""
    text = np.datetime_as_string(timestamps.astype("datetime64[s]"), unit="s")
    return [t + "Z" for t in text.tolist()]


def iter_native_events(
    table: EventTable, catalog: Catalog, users: Population, seed: int, first_number: int = 0
) -> Iterator[dict[str, Any]]:
    """Yield one native event dict per table row, in row order.

    Event ids are ``syn-{seed}-{n}`` with ``n`` counting from ``first_number``; session ids
    are ``sess-{seed}-{session}``. Every event carries the device's ``anonymous_id``; the
    ``user_id`` only once the user has identified.
    """
    urls = url_table(catalog.item_ids)
    item_ids = catalog.item_ids
    item_category = catalog.category_names()
    item_price = catalog.price.tolist()
    user_ids, anonymous_ids, ips = users.user_ids, users.anonymous_ids, users.ip
    agents = [USER_AGENTS[a] for a in users.agent.tolist()]
    devices = [DEVICES[d] for d in users.device.tolist()]
    places = [CITIES[c] for c in users.city.tolist()]
    type_names = TYPES

    for begin in range(0, len(table), _CHUNK):
        part = slice(begin, begin + _CHUNK)
        columns = zip(
            range(first_number + begin, first_number + begin + len(table.timestamp[part])),
            iso_strings(table.timestamp[part]),
            table.session[part].tolist(),
            table.user[part].tolist(),
            table.type[part].tolist(),
            table.item[part].tolist(),
            table.value[part].tolist(),
            table.page[part].tolist(),
            table.referrer[part].tolist(),
            table.known[part].tolist(),
            strict=True,
        )
        for number, timestamp, session, user, kind, item, value, page, referrer, known in columns:
            _, user_agent, os_name, browser = agents[user]
            country, city, _, _ = places[user]
            event: dict[str, Any] = {"event_id": f"syn-{seed}-{number}", "type": type_names[kind]}
            if known:
                event["user_id"] = user_ids[user]
            event["anonymous_id"] = anonymous_ids[user]
            properties: dict[str, Any] = {}
            if item >= 0:
                event["item_id"] = item_ids[item]
                properties["category"] = item_category[item]
                if kind == ADD_TO_CART or kind == PURCHASE:
                    properties["price"] = item_price[item]
                    properties["quantity"] = 1
                    if kind == PURCHASE:
                        properties["currency"] = CURRENCY
            elif kind == SEARCH:
                properties["query"] = QUERIES[page - QUERY_PAGE0]
            if not isnan(value):  # NaN marks "no value"
                event["value"] = value
            event["timestamp"] = timestamp
            event["context"] = {
                "device": {"type": devices[user], "os": os_name, "browser": browser},
                "ip": ips[user],
                "user_agent": user_agent,
                "geo": {"country": country, "city": city},
                "page": {"url": urls[page], "referrer": urls[referrer]},
                "session_id": f"sess-{seed}-{session}",
            }
            event["properties"] = properties
            if kind == IDENTIFY:
                event["traits"] = users.traits(user)
            yield event
