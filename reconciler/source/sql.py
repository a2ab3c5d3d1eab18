"""PostgreSQL scripts read with PostgreSQL's own lexer and grammar (pglast, i.e. libpg_query).

Used to tell how a migration must run (``transaction_mode``), to cut one that manages its own
transactions, or holds statements that must run outside one (``CREATE INDEX CONCURRENTLY``),
into parts that run one at a time (``script_parts``), and to find syntax errors before
anything runs; scripts (or their parts) are sent to the server whole.

pglast is imported by the functions that parse, not with this module: ``lint`` and ``plan``
read a migrations folder through the Prisma layout, which imports this module, and need no
parser of their own when every migration's operations are in the parse cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from msgspec import Struct

from reconciler.errors import MigrationFailed

if TYPE_CHECKING:
    from pglast import ast


def syntax_error(script: str) -> str | None:
    """``line N: syntax error ...`` when PostgreSQL's grammar rejects ``script``, else None."""
    from pglast import parser

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
    from pglast import parser

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


class ScriptPart(Struct, frozen=True):
    """One piece of a script that manages its own transactions, run as one unit: its
    statements in one transaction of ours (verified before its COMMIT), or, for a statement
    PostgreSQL refuses inside a transaction block, that statement alone outside one."""

    first_line: int
    last_line: int
    text: str
    """The statements as written, behind as many newlines as the script has before them,
    so the server's error positions name the script's own lines."""
    outside: bool = False
    """Runs outside any transaction (``CREATE INDEX CONCURRENTLY``, ``VACUUM``...)."""
    rolled_back: bool = False
    """The script itself ends this transaction with ``ROLLBACK``: it runs, and is undone."""
    modes: str = ""
    """What the script's ``BEGIN`` asks of its transaction (``ISOLATION LEVEL SERIALIZABLE``,
    ``READ ONLY``...), for a ``SET TRANSACTION`` ahead of anything else in it."""

    @property
    def lines(self) -> str:
        if self.first_line == self.last_line:
            return f"line {self.first_line}"
        return f"lines {self.first_line}-{self.last_line}"


def script_parts(script: str) -> list[ScriptPart]:
    """``script`` cut at its top-level transaction control (``BEGIN``, ``COMMIT``,
    ``ROLLBACK``...), read by PostgreSQL's grammar, so every statement that can change data
    runs in a transaction of ours: what the script's own ``BEGIN ... COMMIT`` holds is one
    part, statements between such blocks another, and a statement that cannot run in a
    transaction block is a part alone. Raises ``MigrationFailed`` naming the line of a
    syntax error, of a ``BEGIN`` never committed, or of two-phase commit, before anything
    runs."""
    from pglast import ast, parse_sql, parser

    problem = syntax_error(script)
    if problem:
        raise MigrationFailed(problem)
    spans = list(parser.split(script, with_parser=True, only_slices=True))
    statements = [raw.stmt for raw in parse_sql(script)]
    parts: list[ScriptPart] = []
    pending: list[slice] = []
    explicit: int | None = None  # the line of the script's own BEGIN still open
    modes = ""  # what that BEGIN asks of its transaction

    def close(*, rolled_back: bool = False) -> None:
        if pending:
            start, stop = pending[0].start, pending[-1].stop
            first = script.count("\n", 0, start) + 1
            parts.append(
                ScriptPart(
                    first,
                    script.count("\n", 0, stop) + 1,
                    "\n" * (first - 1) + script[start:stop] + ";",
                    rolled_back=rolled_back,
                    modes=modes if explicit is not None else "",
                )
            )
            pending.clear()

    for span, statement in zip(spans, statements, strict=True):
        line = script.count("\n", 0, span.start) + 1
        control = statement if isinstance(statement, ast.TransactionStmt) else None
        kind = control.kind if control is not None else None
        if kind is not None and kind.name in _TWO_PHASE:
            raise MigrationFailed(f"line {line}: two-phase commit is not supported in a migration")
        if kind is not None and kind.name in _STARTS:
            if explicit is None:  # a BEGIN inside a transaction is only a warning
                close()
                explicit, modes = line, _modes(control)
            continue
        if kind is not None and kind.name in _ENDS:
            close(rolled_back=kind.name == "TRANS_STMT_ROLLBACK")
            # AND CHAIN: the next transaction opens at once, with the same modes.
            explicit = line if control is not None and control.chain else None
            continue
        if explicit is None and transaction_mode(script[span]) == "none":
            close()
            first = line
            parts.append(
                ScriptPart(
                    first,
                    script.count("\n", 0, span.stop) + 1,
                    "\n" * (first - 1) + script[span],
                    outside=True,
                )
            )
            continue
        pending.append(span)
    if explicit is not None:
        raise MigrationFailed(
            f"line {explicit}: BEGIN without a COMMIT: say how the script's transaction ends"
        )
    close()
    return parts


def drops_database(part: ScriptPart) -> bool:
    """Whether ``part`` is a ``DROP DATABASE``: it runs outside any transaction, so what it
    loses can neither be measured before it takes effect nor rolled back."""
    from pglast import ast, parse_sql

    return part.outside and any(
        isinstance(raw.stmt, ast.DropdbStmt) for raw in parse_sql(part.text)
    )


def _modes(begin: ast.TransactionStmt | None) -> str:
    """The transaction modes a ``BEGIN`` or ``START TRANSACTION`` names, as ``SET
    TRANSACTION`` takes them."""
    said: list[str] = []
    for option in (begin.options if begin is not None else None) or ():
        value = getattr(getattr(option.arg, "val", None), "sval", None) or getattr(
            getattr(option.arg, "val", None), "ival", 0
        )
        if option.defname == "transaction_isolation":
            said.append(f"ISOLATION LEVEL {str(value).upper()}")
        elif option.defname == "transaction_read_only":
            said.append("READ ONLY" if value else "READ WRITE")
        elif option.defname == "transaction_deferrable":
            said.append("DEFERRABLE" if value else "NOT DEFERRABLE")
    return ", ".join(said)


# Members of pglast's TransactionStmtKind, by name.
_STARTS = frozenset({"TRANS_STMT_BEGIN", "TRANS_STMT_START"})
_ENDS = frozenset({"TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"})
_TWO_PHASE = frozenset(
    {"TRANS_STMT_PREPARE", "TRANS_STMT_COMMIT_PREPARED", "TRANS_STMT_ROLLBACK_PREPARED"}
)


def concurrent_index(part: ScriptPart) -> tuple[str, str] | None:
    """``(index, table)`` for a part that is one named ``CREATE INDEX CONCURRENTLY``: the
    index's name and its table's name as written (schema-qualified when the script says so),
    both quoted. Such a statement interrupted or failed leaves its index behind, INVALID, and
    the same statement run again fails with "already exists" until it is dropped."""
    from pglast import ast, parse_sql

    if not part.outside:
        return None
    statements = [raw.stmt for raw in parse_sql(part.text)]
    index = statements[0] if len(statements) == 1 else None
    if not isinstance(index, ast.IndexStmt) or not index.concurrent or not index.idxname:
        return None
    relation = index.relation
    if relation is None or not relation.relname:
        return None
    table = _quoted(relation.relname)
    if relation.schemaname:
        table = f"{_quoted(relation.schemaname)}.{table}"
    return _quoted(index.idxname), table


def runs_again(part: ScriptPart) -> bool:
    """Whether a part can simply run again after it was cut short: one of ours rolled back
    whole, a ``VACUUM`` / ``ANALYZE`` changes no data, and a named ``CREATE INDEX
    CONCURRENTLY`` does once its INVALID leftover is dropped. ``CREATE`` or ``DROP
    DATABASE``, ``ALTER SYSTEM`` and the like are left to a person."""
    from pglast import ast, parse_sql

    if not part.outside:
        return True
    if concurrent_index(part) is not None:
        return True
    return all(isinstance(raw.stmt, ast.VacuumStmt) for raw in parse_sql(part.text))


def what_parts_made(parts: Sequence[ScriptPart]) -> str:
    """The objects the statements of ``parts`` create, change or fill, named as written
    (``table "audit", index "audit_id_idx", rows of "audit"``): what stays in effect when a
    later part of the script fails."""
    from pglast import parse_sql

    named: list[str] = []
    for part in parts:
        if part.rolled_back:
            continue
        for raw in parse_sql(part.text):
            said = _made(raw.stmt) if raw.stmt is not None else None
            if said and said not in named:
                named.append(said)
    return ", ".join(named)


_MADE: tuple[tuple[str, str, str], ...] = (
    ("CreateStmt", "table", "relation"),
    ("CreateTableAsStmt", "table", "into.rel"),
    ("IndexStmt", "index", "idxname"),
    ("AlterTableStmt", "changes to", "relation"),
    ("InsertStmt", "rows of", "relation"),
    ("UpdateStmt", "rows of", "relation"),
    ("DeleteStmt", "rows of", "relation"),
    ("CompositeTypeStmt", "type", "typevar"),
    ("ViewStmt", "view", "view"),
    ("CreateSeqStmt", "sequence", "sequence"),
)
"""pglast's node classes, by name: what each makes or changes, and where its name is."""


def _made(statement: ast.Node) -> str | None:
    """What one statement makes or changes, as ``table "x"``; None for the others."""
    from pglast import ast

    if isinstance(statement, ast.CreateEnumStmt):
        names = statement.typeName or ()
        return f"type {_quoted(str(names[-1].sval))}" if names else None
    if isinstance(statement, ast.DropStmt):
        return "a DROP"
    for kind, what, path in _MADE:
        if isinstance(statement, getattr(ast, kind)):
            node: object = statement
            for attribute in path.split("."):
                node = getattr(node, attribute, None)
            name = node if isinstance(node, str) else getattr(node, "relname", None)
            return f"{what} {_quoted(str(name))}" if name else None
    return None


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
