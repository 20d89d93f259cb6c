"""The planted user segments and the behaviour knobs that make each one recognisable.

Each segment differs from ``casual`` in one or two strong, documented ways (see
:mod:`attune.synth.rules` for the rule that recovers it from the events):

* ``drama_fans``: taste concentrated on drama (82–95 %), many sessions with many views.
* ``big_spenders``: high click, cart and purchase rates, and a pull towards pricier items.
* ``mobile_browsers``: always on a phone, very many views, nearly never add to cart, never buy.
* ``churned``: ordinary behaviour, but every session falls in the first half of the period.
* ``casual``: everyone else.

Outside ``drama_fans`` drama is never the main favourite (at most a secondary one), which
keeps the drama rule precise.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Segment names; a user's segment is stored as an index into this tuple.
SEGMENTS: tuple[str, ...] = ("casual", "drama_fans", "big_spenders", "mobile_browsers", "churned")

#: Planted share of users per segment (same order as SEGMENTS); casual takes the rest.
SEGMENT_SHARES: tuple[float, ...] = (0.50, 0.15, 0.10, 0.10, 0.15)

#: Devices, stored as indexes into this tuple.
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")

#: The period length the session counts below are written for; other lengths scale them.
REFERENCE_DAYS = 28


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the users of one segment behave.

    Session counts are ``base_sessions + Poisson(extra_sessions)`` over :data:`REFERENCE_DAYS`
    days; item views per session are ``base_views + Poisson(extra_views)``. The funnel
    probabilities are conditional: ``click`` per view, ``cart`` per click, ``purchase`` per cart.
    """

    base_sessions: int
    extra_sessions: float
    base_views: int
    extra_views: float
    click: float
    cart: float
    purchase: float
    rating: float
    search: float
    device_weights: tuple[float, float, float]
    prefers_expensive: bool = False
    first_half_only: bool = False


#: Behaviour per segment, in SEGMENTS order.
BEHAVIOURS: tuple[Behaviour, ...] = (
    # casual
    Behaviour(2, 3.0, 1, 2.5, 0.30, 0.25, 0.40, 0.05, 0.30, (0.50, 0.35, 0.15)),
    # drama_fans: heavy viewers who rate a lot; buying like everyone else
    Behaviour(5, 7.0, 1, 3.5, 0.30, 0.20, 0.35, 0.10, 0.25, (0.35, 0.35, 0.30)),
    # big_spenders
    Behaviour(4, 5.0, 1, 3.0, 0.60, 0.65, 0.85, 0.05, 0.35, (0.30, 0.55, 0.15), prefers_expensive=True),
    # mobile_browsers
    Behaviour(10, 4.0, 2, 4.0, 0.35, 0.005, 0.0, 0.02, 0.30, (1.0, 0.0, 0.0)),
    # churned
    Behaviour(2, 3.0, 1, 2.5, 0.30, 0.25, 0.40, 0.05, 0.30, (0.50, 0.35, 0.15), first_half_only=True),
)

DRAMA_FANS = SEGMENTS.index("drama_fans")
BIG_SPENDERS = SEGMENTS.index("big_spenders")
MOBILE_BROWSERS = SEGMENTS.index("mobile_browsers")
CHURNED = SEGMENTS.index("churned")
