"""Business filters every answer obeys: excluded ids, categories, availability."""

from __future__ import annotations

from dataclasses import dataclass

from attune.errors import ValidationFailed


@dataclass(frozen=True)
class Filters:
    """What a request may not (or may only) contain.

    ``categories`` keeps only items in at least one of them; ``exclude_categories`` drops items
    in any of them (names compare case-insensitively against an item's ``category``,
    ``categories`` and ``genres`` attributes). Unavailable items (``available`` or ``in_stock``
    false) are never shown, whatever the filters. ``diversity`` in 0..1 re-ranks by MMR.
    """

    exclude: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    diversity: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.diversity <= 1.0:
            raise ValidationFailed(f"diversity: must be between 0 and 1, got {self.diversity}")

    @classmethod
    def parse(
        cls,
        exclude: str | None = None,
        category: str | None = None,
        exclude_category: str | None = None,
        diversity: float | None = None,
    ) -> Filters:
        """Filters from comma-separated query parameters (blank parts ignored)."""
        return cls(
            exclude=_split(exclude),
            categories=frozenset(c.lower() for c in _split(category)),
            exclude_categories=frozenset(c.lower() for c in _split(exclude_category)),
            diversity=float(diversity or 0.0),
        )

    @property
    def restricts_categories(self) -> bool:
        """Whether a category filter applies."""
        return bool(self.categories or self.exclude_categories)


def _split(text: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip()) if text else frozenset()


NO_FILTERS = Filters()
