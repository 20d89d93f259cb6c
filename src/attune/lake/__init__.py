"""The Parquet lake and its DuckDB queries."""
