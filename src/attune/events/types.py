"""Canonical event-type names.

Clients send ``Product Added``, ``addToCart``, ``add-to-cart`` or ``ADD_TO_CART``; all of
them become ``add_to_cart`` so that consumers and rules see one name.
"""

from __future__ import annotations

import re
from functools import lru_cache

STANDARD_TYPES = (
    "page_view",
    "screen_view",
    "view",
    "click",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "rating",
    "search",
    "identify",
    "alias",
    "group",
    "like",
    "dislike",
    "skip",
    "share",
    "email_open",
    "consent",
)

# Segment e-commerce spec names and common spellings, already in snake form.
ALIASES = {
    "page": "page_view",
    "pageview": "page_view",
    "screen": "screen_view",
    "screenview": "screen_view",
    "product_viewed": "view",
    "item_viewed": "view",
    "product_clicked": "click",
    "addtocart": "add_to_cart",
    "product_added": "add_to_cart",
    "cart_add": "add_to_cart",
    "product_removed": "remove_from_cart",
    "order_completed": "purchase",
    "checkout_completed": "purchase",
    "products_searched": "search",
    "product_rated": "rating",
    "rate": "rating",
}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-./:]+")
VALID_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@lru_cache(maxsize=4096)
def canonical_type(raw: str) -> str | None:
    """Return the canonical name of ``raw``, or ``None`` when it cannot be a type name."""
    name = _CAMEL.sub("_", raw.strip())
    name = _SEPARATORS.sub("_", name).lower().strip("_")
    name = re.sub(r"_+", "_", name)
    name = ALIASES.get(name, name)
    return name if VALID_TYPE.match(name) else None
