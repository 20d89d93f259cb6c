"""Deterministic synthetic data with planted structure, for tests and benchmarks.

>>> from attune.synth import generate, write_dataset
>>> data = generate(seed=7, n_users=200, n_items=100)
>>> data.truth.segment_counts()["drama_fans"]
30

``generate`` builds a catalog (:mod:`~attune.synth.catalog`), users with a latent taste and a
planted segment (:mod:`~attune.synth.population`, :mod:`~attune.synth.segments`), and their
sessions and funnel events (:mod:`~attune.synth.sessions`) as numpy columns; native event
dicts are built lazily (:mod:`~attune.synth.native`). The planted segments and the rules
that recover them from the events are documented in :mod:`attune.synth.rules`.
"""

from attune.synth.catalog import Catalog
from attune.synth.generator import (
    BLOCK_USERS,
    DEFAULT_END,
    SyntheticData,
    generate,
    iter_blocks,
    iter_events,
)
from attune.synth.population import Population
from attune.synth.rules import (
    RULE_ORDER,
    Activity,
    RuleThresholds,
    matching_rules,
    recover_segments,
    summarize,
)
from attune.synth.segments import DEVICES, SEGMENTS
from attune.synth.table import TYPES, EventTable
from attune.synth.truth import GroundTruth
from attune.synth.vocabulary import CATEGORIES
from attune.synth.writer import write_dataset

__all__ = [
    "BLOCK_USERS",
    "CATEGORIES",
    "DEFAULT_END",
    "DEVICES",
    "RULE_ORDER",
    "SEGMENTS",
    "TYPES",
    "Activity",
    "Catalog",
    "EventTable",
    "GroundTruth",
    "Population",
    "RuleThresholds",
    "SyntheticData",
    "generate",
    "iter_blocks",
    "iter_events",
    "matching_rules",
    "recover_segments",
    "summarize",
    "write_dataset",
]
