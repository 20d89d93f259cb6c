"""Per-person features kept current as events arrive (sliding windows, RFM, engagement)."""
