"""Ingest: validate, normalize, enrich, deduplicate and append. Nothing else."""
