"""A small shop with planted tastes, for the serving tests.

Two genres of 20 items each (``d00``–``d19`` drama, ``c00``–``c19`` comedy, titled "Drama 3",
"Comedy 7"). Thirty people from France (``fr0``…) each viewed 8 drama items; thirty from the
US (``us0``…) 8 comedy items. Two catalog items have no interactions at all (``d99``,
``c99``), and one drama item is out of stock (``d19``). A model is trained and promoted.
"""

from __future__ import annotations

import time

import numpy as np

from attune.runtime import Runtime
from attune.training.trainer import train

DAY = 86_400.0
TRAINED_AT = time.time() - 30 * DAY


def genre(item_id: str) -> str:
    return "drama" if item_id.startswith("d") else "comedy"


def shop_events() -> list[dict]:
    rng = np.random.default_rng(3)
    events: list[dict] = []
    for country, prefix, letter in (("fr", "fr", "d"), ("us", "us", "c")):
        for n in range(30):
            user = f"{prefix}{n}"
            events.append(
                {
                    "type": "identify",
                    "user_id": user,
                    "traits": {"country": country},
                    "timestamp": TRAINED_AT - DAY,
                }
            )
            for k, i in enumerate(rng.permutation(20)[:8]):
                events.append(
                    {
                        "type": "view",
                        "user_id": user,
                        "item_id": f"{letter}{int(i):02d}",
                        "timestamp": TRAINED_AT - DAY + 60 * k,
                    }
                )
    return [{"event_id": f"shop{n}", **e} for n, e in enumerate(events)]


def shop_catalog() -> list[tuple[str, dict]]:
    items = [(f"d{i:02d}", {"title": f"Drama {i}", "genres": ["drama"]}) for i in range(20)]
    items += [(f"c{i:02d}", {"title": f"Comedy {i}", "genres": ["comedy"]}) for i in range(20)]
    items += [
        ("d99", {"title": "Drama brand new", "genres": ["drama"]}),
        ("c99", {"title": "Comedy brand new", "genres": ["comedy"]}),
    ]
    return items


def build_shop(runtime: Runtime, model: str) -> Runtime:
    report = runtime.ingest.ingest(shop_events())
    assert not report.rejected, report.rejected
    runtime.catch_up()
    runtime.catalog.upsert(shop_catalog())
    train(runtime.engine, runtime.settings, model)
    runtime.catalog.upsert([("d19", {"title": "Drama 19", "genres": ["drama"], "in_stock": False})])
    runtime.recommendations.models.refresh()
    return runtime


def send(runtime: Runtime, events: list[dict]) -> None:
    """Ingest events stamped now and bring the consumers up to date (read-your-writes)."""
    report = runtime.ingest.ingest(
        [{"event_id": f"live-{time.time_ns()}-{n}", **e} for n, e in enumerate(events)]
    )
    assert not report.rejected, report.rejected
    runtime.catch_up()
