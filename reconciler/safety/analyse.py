"""Run the rules over one migration's SQL.

Today: PostgreSQL migrations are parsed with PostgreSQL's own grammar (pglast), and SQL the
server would reject is reported as a blocking ``syntax-error`` finding with its line, before
anything reaches the database. Alembic revisions are Python; their SQL is analysed when it
is rendered, so they have no static findings here.
"""

from __future__ import annotations

from reconciler.db.url import Dialect
from reconciler.safety.findings import Finding
from reconciler.source.base import Migration
from reconciler.source.sql import syntax_error


def analyse(migration: Migration, layout: str, dialect: Dialect) -> list[Finding]:
    if layout != "prisma" or dialect != "postgresql":
        return []
    problem = syntax_error(migration.read())
    if problem is None:
        return []
    where, _, message = problem.partition(": ")
    line = int(where.removeprefix("line "))
    return [
        Finding(
            rule="syntax-error",
            severity="syntax",
            message=f"PostgreSQL cannot parse this migration: {message}",
            file=str(migration.path),
            line=line,
            safe_alternative="fix the SQL; nothing of this migration can run as written",
        )
    ]
