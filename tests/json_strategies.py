"""Hypothesis strategies for arbitrary JSON documents, shared by the "never a 500" tests.

Importable from any test module: pytest puts ``tests/`` on ``sys.path`` for its conftest.
"""

from __future__ import annotations

from hypothesis import strategies as st


def json_values(
    *,
    integers: st.SearchStrategy[int] | None = None,
    allow_infinity: bool = False,
    text_size: int = 20,
    key_size: int = 8,
    width: int = 4,
    max_leaves: int = 15,
) -> st.SearchStrategy:
    """Any JSON value (objects, arrays, scalars), nested; NaN is never drawn."""
    leaves = (
        st.none()
        | st.booleans()
        | (integers if integers is not None else st.integers())
        | st.floats(allow_nan=False, allow_infinity=allow_infinity)
        | st.text(max_size=text_size)
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=width)
            | st.dictionaries(st.text(max_size=key_size), children, max_size=width)
        ),
        max_leaves=max_leaves,
    )
