"""Alembic environment for the verifier: online migrations only, URL from the caller."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from verifier.db import metadata

config = context.config


def run() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section) or {},
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


run()
