"""Bulk import of events, interactions, items and users from CSV, JSON Lines and Parquet."""

from attune.importers.result import ImportResult, RejectedRow
from attune.importers.runner import run_import

__all__ = ["ImportResult", "RejectedRow", "run_import"]
