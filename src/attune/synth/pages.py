"""Page ids and their URLs on the fictional shop, plus external referrers.

Events store a small integer page id instead of a URL string so the behaviour model stays
vectorized; URLs are only spelled out when native events are built.
"""

from __future__ import annotations

from attune.synth.vocabulary import CATEGORIES, QUERIES

BASE_URL = "https://shop.example"

HOME = 0
LOGIN = 1
CHECKOUT = 2
#: Category page of category ``c`` is ``CATEGORY_PAGE0 + c``.
CATEGORY_PAGE0 = 3
#: Search result page of query ``q`` (index into QUERIES) is ``QUERY_PAGE0 + q``.
QUERY_PAGE0 = CATEGORY_PAGE0 + len(CATEGORIES)
#: Page of item row ``i`` is ``ITEM_PAGE0 + i``.
ITEM_PAGE0 = QUERY_PAGE0 + len(QUERIES)

#: Where sessions come from; referrer id ``-(k + 1)`` means ``EXTERNAL_REFERRERS[k]`` ("" = direct).
EXTERNAL_REFERRERS: tuple[str, ...] = (
    "",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.facebook.com/",
    "https://newsletter.example/",
)
EXTERNAL_SHARES: tuple[float, ...] = (0.40, 0.30, 0.05, 0.05, 0.10, 0.10)


def url_table(item_ids: list[str]) -> list[str]:
    """URLs indexable by page id and, from the end, by negative external referrer id.

    Appending the external referrers in reverse makes ``table[-(k + 1)]`` equal
    ``EXTERNAL_REFERRERS[k]``, so one list lookup serves both pages and referrers.
    """
    urls = [f"{BASE_URL}/", f"{BASE_URL}/account/login", f"{BASE_URL}/checkout"]
    urls += [f"{BASE_URL}/c/{category}" for category in CATEGORIES]
    urls += [f"{BASE_URL}/search?q={query}" for query in QUERIES]
    urls += [f"{BASE_URL}/items/{item_id}" for item_id in item_ids]
    urls += list(reversed(EXTERNAL_REFERRERS))
    return urls
