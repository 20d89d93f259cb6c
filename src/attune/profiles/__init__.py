"""Unified profiles: identity stitching, traits with a conflict rule, activity counts."""
