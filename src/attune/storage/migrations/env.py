"""Alembic environment: uses the engine handed over in ``config.attributes``."""

from alembic import context

from attune.storage.tables import metadata

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=engine.dialect.name == "sqlite",
        )
        context.run_migrations()


run_migrations_online()
