"""PostgreSQL statement splitting with PostgreSQL's own grammar (pglast, i.e. libpg_query).

Used only where statements must run one at a time (a migration with ``CREATE INDEX
CONCURRENTLY``) and to find syntax errors before anything runs; everything else is sent to
the server whole.
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import parser

from reconciler.errors import MigrationFailed


def syntax_error(script: str) -> str | None:
    """``line N: syntax error ...`` when PostgreSQL's grammar rejects ``script``, else None."""
    try:
        parser.parse_sql(script)
    except parser.ParseError as exc:
        position = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        return f"line {script.count(chr(10), 0, position) + 1}: {exc.args[0]}"
    return None


def split_postgres(script: str) -> Iterator[tuple[int, str]]:
    """Statements of ``script`` with their starting line; raises on a syntax error."""
    problem = syntax_error(script)
    if problem:
        raise MigrationFailed(problem)
    for span in parser.split(script, with_parser=True, only_slices=True):
        yield script.count("\n", 0, span.start) + 1, script[span]
