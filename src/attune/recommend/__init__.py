"""Recommendations: rankers and the serving service."""
