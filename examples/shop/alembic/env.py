"""Alembic environment for the shop schema, usable with SQLite and PostgreSQL.

There is no alembic.ini for this directory. The caller builds an
``alembic.config.Config`` in code and sets ``script_location`` and
``sqlalchemy.url`` on it. A caller that already holds a connection can put it
in ``config.attributes["connection"]``; the migrations then run on that
connection and the caller stays in charge of its transaction.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, make_url

config = context.config

# The revisions are written by hand; there is no model metadata to compare against.
target_metadata = None


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set on the Alembic config")
    return url


def run_migrations_offline() -> None:
    """Emit the migrations as a SQL script instead of running them."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=make_url(url).get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against a live database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return

    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as new_connection:
            do_run_migrations(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
