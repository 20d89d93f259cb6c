"""Recommendation models behind one estimator API (see :mod:`.base`)."""
