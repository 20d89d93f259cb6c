"""Ranking metrics: known values and properties that must hold for any ranking."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from attune.evaluation.metrics import (
    average_precision_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)

METRICS = (precision_at_k, recall_at_k, ndcg_at_k, average_precision_at_k, reciprocal_rank_at_k, hit_rate_at_k)

rankings = st.lists(st.integers(0, 50), min_size=0, max_size=30, unique=True)
relevant_sets = st.sets(st.integers(0, 50), min_size=1, max_size=15)
ks = st.integers(1, 20)


def test_known_values():
    ranked, relevant = [3, 1, 7, 9], {1, 9, 42}
    assert precision_at_k(ranked, relevant, 4) == 0.5
    assert recall_at_k(ranked, relevant, 4) == 2 / 3
    assert recall_at_k(ranked, relevant, 2) == 0.5  # denominator is min(k, |relevant|)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert math.isclose(ndcg_at_k(ranked, relevant, 4), (1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert math.isclose(average_precision_at_k(ranked, relevant, 4), (1 / 2 + 2 / 4) / 3)
    assert reciprocal_rank_at_k(ranked, relevant, 4) == 0.5
    assert hit_rate_at_k(ranked, relevant, 1) == 0.0 and hit_rate_at_k(ranked, relevant, 2) == 1.0


@given(rankings, relevant_sets, ks)
def test_every_metric_is_between_zero_and_one(ranked, relevant, k):
    for metric in METRICS:
        assert 0.0 <= metric(ranked, relevant, k) <= 1.0 + 1e-12


@given(relevant_sets, ks)
def test_a_perfect_ranking_scores_one(relevant, k):
    ranked = sorted(relevant) + [100 + i for i in range(k)]
    for metric in (recall_at_k, ndcg_at_k, average_precision_at_k, reciprocal_rank_at_k, hit_rate_at_k):
        assert math.isclose(metric(ranked, relevant, k), 1.0)


@given(rankings, relevant_sets, ks)
def test_a_ranking_without_relevant_items_scores_zero(ranked, relevant, k):
    ranked = [item for item in ranked if item not in relevant]
    for metric in METRICS:
        assert metric(ranked, relevant, k) == 0.0


@given(st.lists(st.integers(0, 50), min_size=2, max_size=30, unique=True), relevant_sets, ks)
def test_moving_a_hit_up_never_lowers_ndcg(ranked, relevant, k):
    hits = [i for i, item in enumerate(ranked) if item in relevant]
    misses = [i for i, item in enumerate(ranked) if item not in relevant]
    if not hits or not misses or misses[0] > hits[-1]:
        return
    miss = misses[0]
    hit = next(h for h in hits if h > miss)
    better = list(ranked)
    better[miss], better[hit] = better[hit], better[miss]
    assert ndcg_at_k(better, relevant, k) >= ndcg_at_k(ranked, relevant, k) - 1e-12
