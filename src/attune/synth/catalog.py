"""The synthetic item catalog: titles, categories, genres, descriptions, prices, popularity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attune.synth.vocabulary import (
    ADJECTIVES,
    CATEGORIES,
    CATEGORY_BASE_PRICE,
    CATEGORY_SHARES,
    NOUNS,
    SENTENCES,
    TITLE_FRAMES,
)

#: Share of items that can be bought; the rest can be viewed but never carted.
AVAILABLE_SHARE = 0.95
#: Exponent of the Zipf-like popularity prior; about 1 gives a long tail with a few hits.
ZIPF_EXPONENT = 1.0


@dataclass(frozen=True, slots=True, eq=False)
class Catalog:
    """All items, column-wise; row ``i`` is item ``item_ids[i]``.

    ``category`` holds indexes into :data:`~attune.synth.vocabulary.CATEGORIES`;
    ``popularity`` is a prior that sums to 1 (a few items hold much of the mass).
    """

    item_ids: list[str]
    titles: list[str]
    category: np.ndarray
    genres: list[str]
    descriptions: list[str]
    price: np.ndarray
    available: np.ndarray
    popularity: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)

    def category_names(self) -> list[str]:
        """The category name of every item, in row order."""
        return [CATEGORIES[c] for c in self.category.tolist()]

    def records(self) -> list[dict[str, Any]]:
        """One dict per item with the ``items.csv`` columns plus ``popularity``."""
        return [
            {
                "item_id": item_id,
                "title": title,
                "category": category,
                "genres": genres,
                "description": description,
                "price": price,
                "available": available,
                "popularity": popularity,
            }
            for item_id, title, category, genres, description, price, available, popularity in zip(
                self.item_ids,
                self.titles,
                self.category_names(),
                self.genres,
                self.descriptions,
                self.price.tolist(),
                self.available.tolist(),
                self.popularity.tolist(),
                strict=True,
            )
        ]


def build_catalog(rng: np.random.Generator, n_items: int) -> Catalog:
    """Draw ``n_items`` items; every category gets at least one item."""
    n_cat = len(CATEGORIES)
    if n_items < n_cat:
        raise ValueError(f"n_items must be at least {n_cat} so every category has an item")
    width = max(5, len(str(n_items)))
    item_ids = [f"i{i:0{width}d}" for i in range(1, n_items + 1)]

    # One guaranteed item per category, the rest by share; shuffled so ids do not reveal categories.
    shares = np.asarray(CATEGORY_SHARES) / np.sum(CATEGORY_SHARES)
    category = np.concatenate([np.arange(n_cat), rng.choice(n_cat, size=n_items - n_cat, p=shares)])
    category = rng.permutation(category).astype(np.int8)

    secondary = _secondary_genres(rng, category)
    genres = [
        "|".join(CATEGORIES[c] for c in (primary, *extra))
        for primary, extra in zip(category.tolist(), secondary, strict=True)
    ]
    titles = _titles(rng, category)
    descriptions = _descriptions(rng, category, secondary)

    base = np.asarray(CATEGORY_BASE_PRICE)[category]
    # Shop-style prices (x.99) scattered log-normally around the category's typical price.
    price = np.clip(np.floor(base * rng.lognormal(0.0, 0.45, n_items)), 1, 98) + 0.99
    available = rng.random(n_items) < AVAILABLE_SHARE

    rank = rng.permutation(n_items)
    popularity = 1.0 / (rank + 1.0) ** ZIPF_EXPONENT
    popularity /= popularity.sum()

    return Catalog(
        item_ids=item_ids,
        titles=titles,
        category=category,
        genres=genres,
        descriptions=descriptions,
        price=np.round(price, 2),
        available=available,
        popularity=popularity,
    )


def _secondary_genres(rng: np.random.Generator, category: np.ndarray) -> list[tuple[int, ...]]:
    n_cat = len(CATEGORIES)
    count = (rng.random(len(category)) < 0.6).astype(int) + (rng.random(len(category)) < 0.15)
    # Offsets 1..n_cat-1 from the primary can never pick the primary itself.
    offsets = np.argsort(rng.random((len(category), n_cat - 1)), axis=1) + 1
    return [
        tuple(int((primary + off) % n_cat) for off in row[:k])
        for primary, row, k in zip(category.tolist(), offsets.tolist(), count.tolist(), strict=True)
    ]


def _pair(rng: np.random.Generator, shape: tuple[int, ...], size: int) -> tuple[np.ndarray, np.ndarray]:
    # Two different word indexes per slot, drawn for all rows at once.
    first = rng.integers(size, size=shape)
    second = (first + rng.integers(1, size, size=shape)) % size
    return first, second


def _titles(rng: np.random.Generator, category: np.ndarray) -> list[str]:
    n = len(category)
    frames = rng.integers(len(TITLE_FRAMES), size=n).tolist()
    adjectives = rng.integers(len(ADJECTIVES[CATEGORIES[0]]), size=n).tolist()
    first, second = _pair(rng, (n,), len(NOUNS[CATEGORIES[0]]))
    titles = []
    for cat, frame, a, i, j in zip(
        category.tolist(), frames, adjectives, first.tolist(), second.tolist(), strict=True
    ):
        nouns = NOUNS[CATEGORIES[cat]]
        titles.append(
            TITLE_FRAMES[frame].format(
                A=ADJECTIVES[CATEGORIES[cat]][a].capitalize(),
                N=nouns[i].capitalize(),
                M=nouns[j].capitalize(),
            )
        )
    return titles


def _descriptions(
    rng: np.random.Generator, category: np.ndarray, secondary: list[tuple[int, ...]]
) -> list[str]:
    n, slots = len(category), 4
    # Two or three sentences in the primary category and at most one in a secondary genre,
    # so the primary category dominates the word counts.
    n_primary = rng.integers(2, 4, size=n).tolist()
    frames = np.argsort(rng.random((n, len(SENTENCES))), axis=1)[:, :slots].tolist()
    adjectives = rng.integers(len(ADJECTIVES[CATEGORIES[0]]), size=(n, slots)).tolist()
    first, second = (a.tolist() for a in _pair(rng, (n, slots), len(NOUNS[CATEGORIES[0]])))
    out = []
    for row, (primary, extra, k) in enumerate(zip(category.tolist(), secondary, n_primary, strict=True)):
        cats = [primary] * k + list(extra[:1])
        sentences = []
        for slot, cat in enumerate(cats):
            name = CATEGORIES[cat]
            sentences.append(
                SENTENCES[frames[row][slot]].format(
                    a=ADJECTIVES[name][adjectives[row][slot]],
                    n=NOUNS[name][first[row][slot]],
                    m=NOUNS[name][second[row][slot]],
                )
            )
        out.append(" ".join(sentences))
    return out
