"""FeatureStore serialization: the small-array path gives exactly what ``np.unique`` gives."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from attune.features.store import _SMALL, _unique_inverse


@given(st.lists(st.integers(min_value=-1, max_value=40), max_size=2 * _SMALL))
def test_unique_inverse_matches_numpy(values: list[int]) -> None:
    codes = np.asarray(values, dtype=np.int64)
    unique, inverse = _unique_inverse(codes)
    expected_unique, expected_inverse = np.unique(codes, return_inverse=True)
    assert unique == expected_unique.tolist()
    assert np.asarray(inverse, dtype=np.int64).tolist() == np.asarray(expected_inverse).tolist()
    # The inverse rebuilds the codes.
    assert [unique[i] for i in np.asarray(inverse, dtype=np.int64).tolist()] == values
