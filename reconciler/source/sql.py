"""PostgreSQL scripts read with PostgreSQL's own lexer and grammar (pglast, i.e. libpg_query).

Used to tell how a migration must run (``transaction_mode``), to split the statements of
one that must run one at a time (``CREATE INDEX CONCURRENTLY``) and to find syntax errors
before anything runs; scripts themselves are sent to the server whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

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


TransactionMode = Literal["ours", "own", "none"]

_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_OUTSIDE_WORDS = frozenset({"CONCURRENTLY", "VACUUM"})
_OUTSIDE_PAIRS = frozenset({("ALTER", "SYSTEM_P"), ("CREATE", "DATABASE"), ("DROP", "DATABASE")})
_CONTROL = frozenset({"BEGIN_P", "COMMIT", "ROLLBACK", "ABORT_P", "END_P"})


def transaction_mode(script: str) -> TransactionMode:
    """How a migration must run: ``none`` when PostgreSQL refuses part of it inside a
    transaction block (``CONCURRENTLY``, ``VACUUM``, ``ALTER SYSTEM``, ``CREATE`` or ``DROP
    DATABASE``); ``own`` when it opens or ends transactions itself (a statement that is
    ``BEGIN``, ``COMMIT``, ``START TRANSACTION``...); else ``ours``, one transaction around
    it. Read from tokens: a comment, a string or a function body (``END;`` on its own line)
    never counts. A script the lexer cannot read runs in ours, where its error stops it."""
    try:
        names = [t.name for t in parser.scan(script) if t.name not in _COMMENTS]
    except parser.ParseError:  # an unterminated string or quote: the server will say so
        return "ours"
    own = False
    for index, name in enumerate(names):
        following = names[index + 1] if index + 1 < len(names) else ""
        if name in _OUTSIDE_WORDS or (name, following) in _OUTSIDE_PAIRS:
            return "none"
        starts = index == 0 or names[index - 1] == "ASCII_59"
        if starts and (name in _CONTROL or (name, following) == ("START", "TRANSACTION")):
            own = True
    return "own" if own else "ours"


def split_postgres(script: str) -> Iterator[tuple[int, str]]:
    """Statements of ``script`` with their starting line; raises on a syntax error."""
    problem = syntax_error(script)
    if problem:
        raise MigrationFailed(problem)
    for span in parser.split(script, with_parser=True, only_slices=True):
        yield script.count("\n", 0, span.start) + 1, script[span]
