"""Small Alembic script directories for tests, the databases they migrate, and what is in them.

Each test writes its own script directory into ``tmp_path``: an ``env.py`` that does what most
applications' ``env.py`` does (read ``sqlalchemy.url``, open an engine with ``NullPool``, run
the migrations inside ``context.begin_transaction()``) and revision files built from a few
lines of ``op`` calls.
"""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Callable
from pathlib import Path

from reconciler.ledger import Ledger
from reconciler.policy import Policy, load_policy
from tests.conftest import pg_query

ENV_PY = '''\
"""Alembic environment of a test application: URL from the config, one engine per run."""

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=None)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
'''

REVISION = '''\
"""{message}

Revision ID: {revision}
Revises: {down_text}
"""

import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = {branch_labels!r}
depends_on = {depends_on!r}


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
'''

Revs = str | tuple[str, ...] | None


def script_dir(tmp_path: Path, name: str = "alembic") -> Path:
    """An empty script directory: ``env.py`` and an empty ``versions/``."""
    folder = tmp_path / name
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text(ENV_PY, encoding="utf-8")
    return folder


def revision_source(
    revision: str,
    down_revision: Revs,
    body: str,
    *,
    message: str | None = None,
    branch_labels: Revs = None,
    depends_on: Revs = None,
) -> str:
    down_text = ", ".join(down_revision) if isinstance(down_revision, tuple) else down_revision
    return REVISION.format(
        message=message or f"revision {revision}",
        revision=revision,
        down_revision=down_revision,
        down_text=down_text or "",
        branch_labels=branch_labels,
        depends_on=depends_on,
        body=textwrap.indent(textwrap.dedent(body).strip("\n"), "    "),
    )


def add_revision(
    folder: Path,
    revision: str,
    down_revision: Revs,
    body: str,
    *,
    message: str | None = None,
    branch_labels: Revs = None,
    depends_on: Revs = None,
) -> Path:
    """Write ``versions/<revision>.py`` whose ``upgrade()`` runs ``body``."""
    path = folder / "versions" / f"{revision}.py"
    path.write_text(
        revision_source(
            revision,
            down_revision,
            body,
            message=message,
            branch_labels=branch_labels,
            depends_on=depends_on,
        ),
        encoding="utf-8",
    )
    return path


def create_table(name: str, *columns: str) -> str:
    """An ``op.create_table`` call: an integer ``id`` key plus text ``columns``."""
    extra = "".join(f", sa.Column({c!r}, sa.Text())" for c in columns)
    return f"op.create_table({name!r}, sa.Column('id', sa.Integer(), primary_key=True){extra})"


def alembic_policy(
    write_policy: Callable[[str], Path], url: str, folder: Path, revision: str = "head"
) -> tuple[Path, Policy]:
    """Write the policy for one Alembic target ``app`` and load it."""
    path = write_policy(
        f"""
        ledger: sqlite:///ledger.db
        targets:
          - name: app
            database: {url}
            migrations: {{layout: alembic, path: {folder}, revision: "{revision}"}}
        """
    )
    return path, load_policy(path, environ={})


def ledger_of(policy: Policy) -> Ledger:
    return Ledger(policy.ledger)


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql).fetchall()
    return pg_query(url, sql)


def tables(url: str) -> set[str]:
    """Every table of the database (PostgreSQL: of the ``public`` schema)."""
    if url.startswith("sqlite"):
        if not Path(url.removeprefix("sqlite:///")).exists():
            return set()
        rows = query(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in rows}


def columns(url: str, table: str) -> list[str]:
    """The columns of ``table``, in table order."""
    if url.startswith("sqlite"):
        return [str(r[1]) for r in query(url, f"PRAGMA table_info({table})")]
    rows = query(
        url,
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position",
    )
    return [str(r[0]) for r in rows]


def versions(url: str) -> set[str]:
    """The rows of ``alembic_version``: the revisions Alembic considers heads."""
    return {str(r[0]) for r in query(url, "SELECT version_num FROM alembic_version")}
