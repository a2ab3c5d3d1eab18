"""Analyse a batch of pending migrations: parse, ask the live database, judge.

The planner calls ``analyse_batch`` once per plan with every pending migration, in order,
so rules can see across migrations (a column added by one and dropped by the next). Live
facts are gathered in one round: one catalog query, one scan per table touched.

SQLite migrations are read statement by statement with the same PostgreSQL parser; the
statements it cannot read (SQLite-only syntax) are skipped rather than reported, and
Prisma's SQLite table rebuild (``new_<table>`` copied, old table dropped, new one renamed)
is recognised as what it is: the columns left out of the copy are dropped, not the table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import Struct
from msgspec.structs import replace

from reconciler.safety import parse_cache
from reconciler.safety.constraints import Constraints
from reconciler.safety.copies import Copies
from reconciler.safety.declared import Declared
from reconciler.safety.findings import Finding
from reconciler.safety.kept_rows import KeptRows
from reconciler.safety.links import Links
from reconciler.safety.operations import Op, ParsedSql
from reconciler.safety.rules import Expansion, Judge, fills, request_facts

if TYPE_CHECKING:
    from reconciler.db.url import Dialect
    from reconciler.observe.facts import Facts, FactsRequest
    from reconciler.source.base import Migration


class Parsed(Struct, frozen=True):
    migration: Migration
    file: str
    sql: ParsedSql


_CACHE: dict[tuple[str, str, str, int], ParsedSql] = {}
_CACHE_SIZE = 4096


def parse_migration(migration: Migration, sql: str | None, dialect: Dialect) -> Parsed:
    """Operations of one migration; ``sql`` None means its SQL could not be obtained.

    SQL rendered from a Python revision (Alembic) has no lines of its own in the file:
    its findings point at the revision's ``def upgrade``. Parses are cached by content, so a
    plan re-made under the lock, or a daemon's next cycle, parses nothing twice; and on disk
    when the command line turns ``parse_cache`` on, so the next process need not either."""
    where = str(migration.path)
    if sql is None:
        return Parsed(migration, where, ParsedSql())
    key = (str(migration.path), migration.checksum, dialect, hash(sql))
    cached = _CACHE.get(key)
    if cached is None:
        cached = _parse(migration, sql, dialect)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = cached
    return Parsed(migration, where, cached)


def _parse(migration: Migration, sql: str, dialect: Dialect) -> ParsedSql:
    parsed = parse_cache.load(sql, dialect)
    if parsed is None:
        parsed = parse_text(sql, dialect)
        parse_cache.store(sql, dialect, parsed)
    if migration.path.suffix != ".py" and any(op.declared_type for op in parsed.ops):
        # Only SQL rendered from an Alembic revision declares old types: the same comment
        # in a file written by hand is a comment.
        parsed = replace(parsed, ops=tuple(replace(op, declared_type=None) for op in parsed.ops))
    if migration.path.suffix == ".py":
        line = _upgrade_line(migration.path)
        parsed = replace(
            parsed,
            ops=tuple(replace(op, line=line) for op in parsed.ops),
            error_line=line if parsed.error else 0,
        )
    return parsed


def parse_text(sql: str, dialect: Dialect) -> ParsedSql:
    """What ``sql`` does, whatever file it comes from: the unit the disk cache keeps."""
    if dialect == "postgresql":
        from reconciler.safety.ops import parse  # pglast: only when something is parsed

        return parse(sql)
    return ParsedSql(tuple(_rebuilds(_sqlite_ops(sql))))


_CREATE_TABLE = re.compile(
    r'^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?["`]?(\w+)', re.IGNORECASE
)


def _sqlite_ops(sql: str) -> list[Op]:
    from reconciler.db.sqlite import split_sqlite_script  # sqlite3, for SQLite histories only
    from reconciler.safety.ops import parse

    ops: list[Op] = []
    for line, statement in split_sqlite_script(sql):
        parsed = parse(statement)
        if parsed.error is None:
            ops.extend(replace(op, line=op.line + line - 1) for op in parsed.ops)
            continue
        code = "\n".join(ln for ln in statement.splitlines() if not ln.strip().startswith("--"))
        created = _CREATE_TABLE.match(code)
        if created:  # SQLite-only column syntax (AUTOINCREMENT ...): the table is still new
            ops.append(Op("create-table", created.group(1), line=line))
    return ops


def _upgrade_line(path: Path) -> int:
    try:
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if text.startswith("def upgrade"):
                return number
    except OSError:
        pass
    return 1


def _rebuilds(ops: list[Op]) -> list[Op]:
    """Prisma's SQLite rebuild: CREATE new_t; INSERT INTO new_t (...) SELECT ... FROM t;
    DROP TABLE t; ALTER TABLE new_t RENAME TO t. Keep only what it means for t's data."""
    renamed = {op.table: op.new_name for op in ops if op.kind == "rename-table"}
    rebuilt = {new: old for new, old in renamed.items() if new == f"new_{old}"}
    if not rebuilt:
        return ops
    out: list[Op] = []
    copied = {op.table: op.columns for op in ops if op.kind == "insert" and op.table in rebuilt}
    for op in ops:
        if op.table in rebuilt or (op.kind == "create-table" and op.table in rebuilt):
            continue
        if op.kind == "drop-table" and op.table in rebuilt.values():
            new = next(n for n, o in rebuilt.items() if o == op.table)
            out.append(replace(op, kind="rebuild", columns=copied.get(new, ())))
            continue
        out.append(op)
    return out


def measurable(batch: Sequence[Parsed]) -> list[Parsed]:
    """``batch`` with each UPDATE's expressions printed as SQL: the measuring SELECTs are
    made of them. Only a check against live data needs them, so pglast's printer is loaded
    then and only then (``printed``); an UPDATE already printed is left as it is."""
    out = []
    for item in batch:
        if any(op.text for op in item.sql.ops):
            from reconciler.safety.printed import print_updates

            item = replace(item, sql=replace(item.sql, ops=print_updates(item.sql.ops)))
        out.append(item)
    return out


def facts_request(batch: Sequence[Parsed]) -> FactsRequest:
    from reconciler.observe.facts import FactsRequest  # a live database only

    request = FactsRequest()
    for item in measurable(batch):
        request_facts(item.sql.ops, request)
        for op in item.sql.ops:
            if op.kind == "rebuild":
                request.table(op.table).every_column = True
    return request


def syntax_findings(item: Parsed) -> list[Finding]:
    if item.sql.error is None:
        return []
    message = item.sql.error.split(": ", 1)[-1]
    return [
        Finding(
            "syntax-error",
            "syntax",
            f"PostgreSQL cannot parse this migration: {message}",
            item.file,
            item.sql.error_line,
        )
    ]


def judge_batch(
    batch: Sequence[Parsed],
    facts: Facts | None,
    *,
    now: datetime,
    grace_seconds: float,
    history: Sequence[Expansion] = (),
    live_batch: bool = True,
) -> dict[str, list[Finding]]:
    """Findings per migration id. ``live_batch``: earlier migrations of the batch run before
    later ones (a plan); False for static lint of unrelated files. There each migration gets
    a judge of its own, which takes over what the history's earlier files made (``carried``:
    their state is handed over, not copied, as the earlier judge is done)."""
    if facts is not None:
        batch = measurable(batch)
    judge = Judge(facts, now, grace_seconds, list(history))
    results: dict[str, list[Finding]] = {}
    folder = None
    for item in batch:
        if not live_batch:
            same = _history_of(item) == folder
            judge = Judge(
                facts,
                now,
                grace_seconds,
                list(history),
                column_types=judge.column_types if same else {},
                enums=judge.enums if same else {},
                copies=judge.copies.carried() if same else Copies(),
                constraints=judge.constraints.carried() if same else Constraints(),
                declared=judge.declared.carried() if same else Declared(),
                kept_rows=judge.kept_rows.carried() if same else KeptRows(),
                links=judge.links.carried() if same else Links(),
            )
            folder = _history_of(item)
        findings = syntax_findings(item)
        if not findings:
            findings = judge.migration(
                item.migration.id, item.file, _expand_rebuilds(item.sql.ops, judge)
            )
        results[item.migration.id] = findings
    return results


def _history_of(item: Parsed) -> Path:
    """The history a file belongs to (a Prisma migrations folder, an Alembic versions
    folder): lint of unrelated files judges each on its own, but a column's type, an
    enum's labels and its keys are what the earlier files of the same history made them (a
    copy made by one counts only in its own file: ``Copies.carried``)."""
    path = item.migration.path
    return path.parent.parent if path.name == "migration.sql" else path.parent


def _expand_rebuilds(ops: Sequence[Op], judge: Judge) -> list[Op]:
    out: list[Op] = []
    for op in ops:
        if op.kind != "rebuild":
            out.append(op)
            continue
        facts = judge.facts.table(op.table) if judge.facts else None
        live = list(facts.columns) if facts and facts.exists else []
        for column in live:
            if column not in op.columns:
                out.append(replace(op, kind="drop-column", column=column, columns=()))
    return out


def expansions_in(parsed: Parsed, applied_at: datetime | None) -> list[Expansion]:
    """Replacements an applied migration filled from other columns: what a later drop of
    those columns must wait for."""
    return fills(parsed.migration.id, parsed.sql.ops, applied_at)
