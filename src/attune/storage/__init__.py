"""Storage: SQLAlchemy Core tables, engines chosen by URL, Alembic migrations."""
