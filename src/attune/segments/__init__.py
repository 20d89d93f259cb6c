"""Dynamic segments: declarative rules, real-time membership, overlaps, learnt segments."""
