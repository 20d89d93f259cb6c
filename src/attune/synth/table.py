"""The column-wise event table the behaviour model produces.

A million events as Python dicts cost gigabytes and seconds; as a dozen numpy columns they
cost tens of megabytes, and sorting or filtering them is instant. Dicts are built only when
native events are asked for (:mod:`attune.synth.native`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

#: Event type names; the ``type`` column stores indexes into this tuple.
TYPES: tuple[str, ...] = (
    "identify",
    "page_view",
    "search",
    "view",
    "rating",
    "click",
    "add_to_cart",
    "purchase",
)
IDENTIFY, PAGE_VIEW, SEARCH, VIEW, RATING, CLICK, ADD_TO_CART, PURCHASE = range(len(TYPES))


@dataclass(frozen=True, slots=True, eq=False)
class EventTable:
    """Events column-wise.

    ``user`` and ``item`` are row indexes into the population and catalog (``item`` is -1 when
    the event has none); ``value`` is NaN when absent; ``page``/``referrer`` are page ids (see
    :mod:`attune.synth.pages`); ``known`` says whether the event carries the ``user_id``;
    ``order`` is the event's position key inside its session.
    """

    timestamp: np.ndarray  # int64 epoch seconds
    session: np.ndarray  # int64
    order: np.ndarray  # int32
    user: np.ndarray  # int32
    type: np.ndarray  # int8
    item: np.ndarray  # int32
    value: np.ndarray  # float64
    page: np.ndarray  # int32
    referrer: np.ndarray  # int32
    known: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.timestamp)

    def take(self, index: np.ndarray) -> EventTable:
        """The rows at ``index`` (an integer or boolean array), in that order."""
        return EventTable(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def sorted_by_time(self) -> EventTable:
        """Rows by timestamp; ties keep session order so a session never runs backwards."""
        return self.take(np.lexsort((self.order, self.session, self.timestamp)))

    def count(self, type_name: str) -> int:
        """How many events have type ``type_name``."""
        return int(np.count_nonzero(self.type == TYPES.index(type_name)))

    @staticmethod
    def concat(parts: list[EventTable], user_offsets: list[int], session_offsets: list[int]) -> EventTable:
        """Join tables from separately simulated user blocks, shifting their row indexes."""
        columns = {}
        for f in fields(EventTable):
            values = [getattr(p, f.name) for p in parts]
            if f.name == "user":
                values = [v + off for v, off in zip(values, user_offsets, strict=True)]
            elif f.name == "session":
                values = [v + off for v, off in zip(values, session_offsets, strict=True)]
            columns[f.name] = np.concatenate(values)
        return EventTable(**columns)
