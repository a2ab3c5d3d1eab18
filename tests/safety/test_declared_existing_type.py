"""The old type an Alembic revision declares (``alter_column(existing_type=...)``) tells
static lint what a column of a table made outside the history holds.

MLflow's base tables are created by the application before its first revision, so static
lint used to know nothing of ``tags.value`` and blocked ``VARCHAR(250)`` to ``VARCHAR(5000)``
as a possible narrowing. The revision says what the column was; Alembic hands that to its
impl when it renders SQL offline, and reconciler writes it into the rendered SQL for the
rules. A type the history knows wins over the declaration, and the live catalog over both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import Result

from reconciler.safety import parse_cache
from reconciler.safety.analyse import judge_batch, parse_migration, parse_text
from reconciler.safety.findings import Finding
from reconciler.safety.types import SqlType
from reconciler.source.alembic import AlembicLayout
from reconciler.source.base import Migration
from tests.conftest import pg_query
from tests.schema.alembic_scripts import add_revision, script_dir

Cli = Callable[..., Result]

STATUSES = '"SCHEDULED", "FAILED", "FINISHED", "RUNNING"'
"""MLflow's run statuses before ``KILLED``: the longest has 9 characters."""


def alter(existing: str | None, new: str, *, batch: bool = False) -> str:
    """An ``alter_column`` of ``external.value``, a table no revision creates."""
    declared = f", existing_type={existing}" if existing else ""
    if batch:  # as MLflow writes it
        return (
            'with op.batch_alter_table("external") as batch_op:\n'
            f'    batch_op.alter_column("value", type_={new}{declared}, existing_nullable=True)'
        )
    return f'op.alter_column("external", "value", type_={new}{declared})'


def history(tmp_path: Path, *bodies: str) -> Path:
    """A script directory whose revisions run ``bodies`` in order."""
    folder = script_dir(tmp_path)
    parent = None
    for number, body in enumerate(bodies, 1):
        add_revision(folder, f"r{number}", parent, body)
        parent = f"r{number}"
    return folder


def narrowing(cli: Cli, folder: Path) -> list[str]:
    """Static lint of the folder: the lines of its ``narrowing-type`` findings."""
    result = cli("lint", folder)
    assert result.exit_code in (0, 1), result.output
    return [line for line in result.stdout.splitlines() if "narrowing-type" in line]


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize(
    ("existing", "new"),
    [
        ("sa.String(250)", "sa.String(5000)"),  # MLflow's 7ac759974ad8
        ("sa.String(250)", "sa.String(250)"),
        ("sa.String(250)", "sa.Text()"),
        ("sa.Integer()", "sa.BigInteger()"),
        ("sa.SmallInteger()", "sa.Integer()"),
        ("sa.REAL()", "sa.Float(precision=53)"),
        ("sa.Numeric(10, 2)", "sa.Numeric(12, 3)"),
        ("sa.DateTime()", "sa.DateTime(timezone=True)"),
        # MLflow's cfd24bdc0731: a non-native enum is the VARCHAR of its longest label
        (
            f"sa.Enum({STATUSES}, native_enum=False, create_constraint=True, name='status')",
            f"sa.Enum({STATUSES}, 'KILLED', native_enum=False, create_constraint=True)",
        ),
    ],
)
def test_a_declared_widening_passes_static_lint(
    cli: Cli, tmp_path: Path, existing: str, new: str, batch: bool
) -> None:
    folder = history(tmp_path, alter(existing, new, batch=batch))
    assert narrowing(cli, folder) == []
    assert cli("lint", folder).exit_code == 0


@pytest.mark.parametrize(
    ("existing", "new", "said"),
    [
        ("sa.String(500)", "sa.String(100)", "from varchar(500)"),
        ("sa.Text()", "sa.String(100)", "from text"),
        ("sa.Numeric(10, 3)", "sa.Numeric(10, 2)", "from numeric(10, 3)"),  # rounds silently
        ("sa.BigInteger()", "sa.Integer()", "from int8"),
        ("sa.Float(precision=53)", "sa.REAL()", "from float8"),
        ("sa.Numeric(30, 10)", "sa.Float(precision=53)", "from numeric(30, 10)"),
        (f"sa.Enum({STATUSES}, native_enum=False)", "sa.String(8)", "from varchar(9)"),
        ("sa.Enum('a', 'b', name='kind')", "sa.String(1)", "from kind"),  # a native enum
    ],
)
def test_a_declared_narrowing_still_blocks(
    cli: Cli, tmp_path: Path, existing: str, new: str, said: str
) -> None:
    folder = history(tmp_path, alter(existing, new))
    (line,) = narrowing(cli, folder)
    assert "data-loss narrowing-type BLOCKS" in line
    assert f"changes external.value {said} (as the revision declares it: existing_type)" in line
    assert cli("lint", folder).exit_code == 1


def test_without_a_declaration_the_old_type_stays_unknown(cli: Cli, tmp_path: Path) -> None:
    """MLflow's 181f10493468 declares nothing: a ``NUMERIC`` would be rounded by FLOAT(53)."""
    folder = history(tmp_path, alter(None, "sa.Float(precision=53)", batch=True))
    (line,) = narrowing(cli, folder)
    assert "its current type is unknown" in line
    assert "BLOCKS" in line


def test_a_type_the_history_knows_wins_over_the_declaration(cli: Cli, tmp_path: Path) -> None:
    created = (
        'op.create_table("external", sa.Column("id", sa.Integer(), primary_key=True), '
        'sa.Column("value", sa.String(500)))'
    )
    folder = history(tmp_path, created, alter("sa.String(50)", "sa.String(100)"))
    (line,) = narrowing(cli, folder)
    assert "changes external.value from varchar(500) to varchar(100)" in line
    assert "declares" not in line


def test_the_rendered_sql_carries_the_declaration(tmp_path: Path) -> None:
    folder = history(tmp_path, alter("sa.String(250)", "sa.String(5000)", batch=True))
    layout = AlembicLayout(folder)
    (migration,) = layout.migrations()
    sql = layout.sql(migration, "postgresql")
    assert sql is not None
    assert '-- reconciler: existing_type "value" VARCHAR(250)\n' in sql
    ops = parse_migration(migration, sql, "postgresql").sql.ops
    (op,) = [o for o in ops if o.table == "external"]
    assert (op.kind, op.sql_type, op.declared_type) == (
        "alter-type",
        SqlType("varchar", (5000,)),
        SqlType("varchar", (250,)),
    )


DECLARED = (
    "BEGIN;\n\n"
    '-- reconciler: existing_type "value" VARCHAR(250)\n\n'
    "ALTER TABLE tags ALTER COLUMN value SET NOT NULL;\n\n"
    "ALTER TABLE tags ALTER COLUMN value TYPE VARCHAR(5000);\n\n"
    "ALTER TABLE tags ALTER COLUMN value TYPE VARCHAR(6000);\n\n"
    "COMMIT;\n"
)
"""Rendered SQL as the default impl orders one ``alter_column`` (NOT NULL, then the type):
the declaration belongs to the column's next type change, and to that one only."""


def judged(path: Path, sql: str) -> list[Finding]:
    found = Migration("m1", "m1", path, hashlib.sha256(sql.encode()).hexdigest())
    parsed = parse_migration(found, sql, "postgresql")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return judge_batch([parsed], None, now=now, grace_seconds=0, live_batch=False)["m1"]


def test_the_declaration_belongs_to_the_next_type_change_of_its_column() -> None:
    ops = [op for op in parse_text(DECLARED, "postgresql").ops if op.kind != "boundary"]
    assert [op.declared_type for op in ops] == [None, SqlType("varchar", (250,)), None]


def test_a_declaration_survives_the_parse_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    parse_cache.enable()
    try:
        parsed = parse_text(DECLARED, "postgresql")
        parse_cache.store(DECLARED, "postgresql", parsed)
        loaded = parse_cache.load(DECLARED, "postgresql")
    finally:
        parse_cache.enable(False)
    assert loaded == parsed
    assert loaded is not None
    changes = [op for op in loaded.ops if op.kind == "alter-type"]
    assert type(changes[0].declared_type) is SqlType


def test_only_sql_rendered_from_a_revision_declares_a_type(tmp_path: Path) -> None:
    """The same comment in a file written by hand declares nothing."""
    revision = judged(tmp_path / "versions" / "m1.py", DECLARED)
    assert [f.rule for f in revision if f.severity == "data-loss"] == []
    by_hand = judged(tmp_path / "migrations" / "m1" / "migration.sql", DECLARED)
    (finding,) = [f for f in by_hand if f.rule == "narrowing-type"]
    assert finding.severity == "data-loss"
    assert "its current type is unknown" in finding.message


def policy(write_policy: Callable[[str], Path], url: str, folder: Path) -> Path:
    """One Alembic target; ``external`` is made outside the history, as MLflow's base
    tables are: drift is reported, not blocked."""
    return write_policy(
        f"""
        ledger: sqlite:///ledger.db
        targets:
          - name: app
            database: {url}
            migrations: {{layout: alembic, path: {folder}, revision: head}}
            drift: report
        """
    )


def test_the_live_catalog_wins_over_the_declaration(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    """A revision that declares the wrong old type is judged by what the column holds."""
    pg_query(pg_url, "CREATE TABLE external (id integer PRIMARY KEY, value varchar(500))")
    pg_query(pg_url, "INSERT INTO external VALUES (1, repeat('x', 300)), (2, 'short')")
    folder = history(tmp_path, alter("sa.String(50)", "sa.String(100)"))
    planned = cli("plan", "-c", policy(write_policy, pg_url, folder))
    assert planned.exit_code == 2, planned.output
    assert (
        "changes external.value from varchar(500) to varchar(100): "
        "1 values are longer than 100 characters"
    ) in planned.stdout
    assert "declares" not in planned.stdout


def test_a_declared_widening_applies_with_every_value_kept(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    pg_query(pg_url, "CREATE TABLE external (id integer PRIMARY KEY, value varchar(250))")
    pg_query(pg_url, "INSERT INTO external VALUES (1, repeat('x', 250)), (2, 'padded  ')")
    folder = history(tmp_path, alter("sa.String(250)", "sa.String(5000)", batch=True))
    assert cli("lint", folder).exit_code == 0
    applied = cli("apply", "-c", policy(write_policy, pg_url, folder), "--yes")
    assert applied.exit_code == 0, applied.output
    assert pg_query(pg_url, "SELECT value FROM external ORDER BY id") == [
        ("x" * 250,),
        ("padded  ",),
    ]


def test_postgresql_narrows_varchar_by_failing_or_cutting_trailing_spaces(pg_url: str) -> None:
    """The premise of the line drawn in ``docs/rules/narrowing-type.md``: without ``USING``
    the assignment cast refuses a value too long, except for its trailing spaces, which it
    cuts silently; an explicit cast cuts any value; a smaller numeric scale rounds."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (c varchar(20), n numeric(10, 3))")
        conn.execute("INSERT INTO t VALUES ('abcdef', 1.235)")
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            conn.execute("ALTER TABLE t ALTER COLUMN c TYPE varchar(4)")
        conn.execute("UPDATE t SET c = 'abc     '")
        conn.execute("ALTER TABLE t ALTER COLUMN c TYPE varchar(4)")
        conn.execute("ALTER TABLE t ALTER COLUMN n TYPE numeric(10, 2)")
        assert conn.execute("SELECT c, n::text FROM t").fetchall() == [("abc ", "1.24")]
        conn.execute("ALTER TABLE t ALTER COLUMN c TYPE varchar(2) USING c::varchar(2)")
        assert conn.execute("SELECT c FROM t").fetchall() == [("ab",)]


def test_sqlite_renders_the_declaration_where_alembic_renders_the_change(tmp_path: Path) -> None:
    """A plain ``alter_column`` renders for SQLite with its declaration (SQLite would refuse
    the statement itself); batch mode, SQLite's way, needs reflection offline: unrendered."""
    plain = AlembicLayout(history(tmp_path / "plain", alter("sa.String(250)", "sa.String(500)")))
    (migration,) = plain.migrations()
    ops = parse_migration(migration, plain.sql(migration, "sqlite"), "sqlite").sql.ops
    assert [op.declared_type for op in ops if op.kind == "alter-type"] == [
        SqlType("varchar", (250,))
    ]
    batch = history(tmp_path / "batch", alter("sa.String(250)", "sa.String(500)", batch=True))
    layout = AlembicLayout(batch)
    (migration,) = layout.migrations()
    assert layout.sql(migration, "sqlite") is None
    assert "requires a live database connection" in (layout.unanalysable(migration, "sqlite") or "")
