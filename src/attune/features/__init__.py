"""Per-person features kept current as events arrive (sliding windows, RFM, engagement).

- :mod:`~attune.features.refs` — :class:`FeatureRef`, what a segment rule may ask about a person.
- :mod:`~attune.features.definitions` — :class:`FeatureDefinitions` (settings section ``features``)
  and the window semantics: at instant ``now`` a window ``w`` holds the events with
  ``now - w < t <= now`` (times in integer µs, as the lake stores them); late events land by
  their own time.
- :mod:`~attune.features.catalog` — ``FEATURE_NAMES``, ``CONTEXT_ATTRIBUTES``, ``FEATURE_CATALOG``.
- :mod:`~attune.features.store` — :class:`FeatureStore` (online, in memory): ``values``,
  ``snapshot``, ``next_expiry``. Kept by :class:`attune.consumers.features.FeaturesConsumer`.
- :mod:`~attune.features.offline` — ``offline_values(source, refs, as_of)`` over the lake (DuckDB),
  point-in-time correct and equal to the online values.
- :mod:`~attune.features.named` — named features and local time, shared by both paths.
"""
