"""Rule language speed: parse, scalar evaluation (real-time path), vectorized bulk evaluation.

    .venv/bin/python benchmarks/segments_rules.py [--rows 1000000]

Figures are CPU seconds (time.process_time) so a shared machine disturbs them less; wall
seconds are printed beside them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from attune.features.refs import FeatureRef
from attune.segments.rules import evaluate, parse_rule

THREE_CLAUSE = 'count(view, window=7d, category="drama") > 3 and trait.age between 18 and 24 and context.device == "mobile"'

#: 20 rules in the shape of DESIGN.md's examples (windows, categories, traits, context, negation).
RULES = [
    "count(view, window=7d) >= 3",
    'count(view, window=7d, category="drama") > 3 and trait.age between 18 and 24',
    "sum(purchase.value, window=30d) >= 100 or engagement_score >= 0.7",
    'context.device == "mobile" and not exists(purchase, window=30d)',
    'trait.country in ("DE", "FR") and count(view, window=1d) >= 1',
    "count(view, window=1h) >= 5",
    "count(purchase, window=30d) >= 2 and sum(purchase.value, window=30d) < 50",
    "engagement_score between 0.3 and 0.7",
    "recency_days > 14 and frequency >= 3",
    'context.device != "desktop" or trait.age < 25',
    'count(view, window=7d, category="comedy") > 2 or count(view, window=7d, category="drama") > 2',
    "not exists(view, window=7d) and exists(view, window=30d)",
    "distinct(view, window=30d) >= 20",
    'trait.country not in ("US", "GB") and engagement_score > 0.5',
    "trait.age between 25 and 34 and sum(purchase.value, window=30d) >= 20",
    "count(view, window=1d) > 10 or count(view, window=1h) > 3",
    'context.device == "tablet" and recency_days <= 3',
    "frequency >= 10 and not engagement_score < 0.2",
    "(count(view, window=7d) >= 1 or exists(purchase, window=7d)) and trait.age >= 18",
    'trait.country == "DE" and (engagement_score >= 0.8 or sum(purchase.value, window=30d) > 200)',
]


def columns(rules: list, n: int, seed: int = 7) -> dict[FeatureRef, np.ndarray]:
    """Synthetic columns as the offline feature path would hand them over."""
    rng = np.random.default_rng(seed)
    out: dict[FeatureRef, np.ndarray] = {}
    for ref in {ref for rule in rules for ref in rule.refs}:
        if ref.kind in ("count", "distinct"):
            out[ref] = rng.poisson(3, n).astype(np.int64)
        elif ref.kind == "sum":
            out[ref] = rng.gamma(2.0, 30.0, n)
        elif ref.kind == "feature":
            values = rng.random(n) * (30 if ref.name != "engagement_score" else 1)
            values[rng.random(n) < 0.05] = np.nan  # some people have no value yet
            out[ref] = values
        elif ref.name == "age":
            ages = rng.integers(13, 80, n).astype(float)
            ages[rng.random(n) < 0.2] = np.nan
            out[ref] = ages
        elif ref.name == "country":
            out[ref] = rng.choice(np.array(["DE", "FR", "US", "GB", "IT", None], dtype=object), n)
        else:  # device
            out[ref] = rng.choice(np.array(["mobile", "desktop", "tablet", None], dtype=object), n)
    return out


def timed(fn) -> tuple[float, float, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--scalar-evals", type=int, default=200_000)
    args = parser.parse_args()

    cpu, _, rules = timed(lambda: [parse_rule(text) for text in RULES * 10])
    print(f"parse: {len(RULES) * 10 / cpu:,.0f} rules/s (CPU)")

    rule = parse_rule(THREE_CLAUSE)
    refs = {r.kind: r for r in rule.refs}
    people = [
        {refs["count"]: 4, refs["trait"]: 20.0, refs["context"]: "mobile"},
        {refs["count"]: 1, refs["trait"]: 20.0, refs["context"]: "mobile"},  # fails at the first clause
        {refs["count"]: 9, refs["trait"]: None, refs["context"]: "desktop"},
    ]
    for person in people:
        evaluate(rule, person)
    per = args.scalar_evals // len(people)

    def scalar_loop() -> None:
        for person in people:
            for _ in range(per):
                evaluate(rule, person)

    cpu, wall = timed(scalar_loop)[:2]
    print(
        f"scalar, 3-clause rule: {per * len(people) / cpu:,.0f} evals/s CPU "
        f"({cpu / (per * len(people)) * 1e6:.2f} µs/eval; wall {wall:.2f}s)"
    )

    rules = [parse_rule(text) for text in RULES]
    cpu, wall, data = timed(lambda: columns(rules, args.rows))
    print(f"synthetic columns for {args.rows:,} rows: {cpu:.2f}s CPU")
    cpu, wall, results = timed(lambda: [evaluate(r, data) for r in rules])
    shares = ", ".join(f"{res.mean():.2f}" for res in results[:5])
    print(
        f"vectorized, {len(rules)} rules x {args.rows:,} rows: {cpu:.2f}s CPU, {wall:.2f}s wall "
        f"(share matching, first 5 rules: {shares})"
    )


if __name__ == "__main__":
    main()
