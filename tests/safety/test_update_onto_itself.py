"""``UPDATE t SET c = c`` changes no value (hoppscotch writes ``request`` onto itself to fire
the trigger that fills a new column): static lint used to block it as ``update-overwrites``
because, without a database, it could not measure it. A value computed from the column
(``c = c + 1``) or taken from another (``c = d``) still blocks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.schema.alembic_scripts import query

Cli = Callable[..., Result]

SCHEMA = """\
CREATE TABLE "UserRequest" (
  id INTEGER PRIMARY KEY, request JSONB, other JSONB, "mockExamples" JSONB
);
CREATE FUNCTION sync_mock() RETURNS TRIGGER AS $$
BEGIN
  NEW."mockExamples" := NEW.request;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER sync BEFORE UPDATE OF request ON "UserRequest"
  FOR EACH ROW EXECUTE FUNCTION sync_mock();
"""


def folder(tmp_path: Path, update: str) -> Path:
    migrations = tmp_path / "migrations"
    for name, sql in (("20260101000000_init", SCHEMA), ("20260102000000_backfill", update)):
        (migrations / name).mkdir(parents=True)
        (migrations / name / "migration.sql").write_text(sql, encoding="utf-8")
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    return migrations


def test_static_lint_lets_a_column_written_onto_itself_pass(cli: Cli, tmp_path: Path) -> None:
    update = 'UPDATE "UserRequest" SET request = request WHERE request IS NOT NULL;\n'
    linted = cli("lint", folder(tmp_path, update))
    assert linted.exit_code == 0, linted.output
    assert "writes each value of UserRequest.request onto itself: none changes" in linted.output


def test_a_value_computed_or_taken_from_another_column_still_blocks(
    cli: Cli, tmp_path: Path
) -> None:
    for name, update in (
        ("plus", 'UPDATE "UserRequest" SET id = id + 1;\n'),
        ("other", 'UPDATE "UserRequest" SET request = other;\n'),
        ("qualified", 'UPDATE "UserRequest" u SET request = o.request FROM "UserRequest" o;\n'),
    ):
        linted = cli("lint", folder(tmp_path / name, update))
        assert linted.exit_code == 1, (name, linted.output)
        assert "update-overwrites" in linted.output


def test_on_postgresql_the_values_stay_and_the_trigger_fills_its_column(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    update = 'UPDATE "UserRequest" SET request = request WHERE request IS NOT NULL;\n'
    migrations = folder(tmp_path, update)
    policy = write_policy(
        f"ledger: sqlite:///ledger.db\ntargets:\n  - name: app\n    environment: production\n"
        f"    database: {pg_url}\n    migrations: {{layout: prisma, path: {migrations}}}\n"
    )
    (migrations / "20260102000000_backfill").rename(tmp_path / "later")
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    query(pg_url, """INSERT INTO "UserRequest" (id, request) VALUES (1, '{"a": 1}'), (2, NULL)""")
    (tmp_path / "later").rename(migrations / "20260102000000_backfill")

    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 0, applied.output
    rows = query(pg_url, 'SELECT id, request, "mockExamples" FROM "UserRequest" ORDER BY id')
    assert rows == [(1, {"a": 1}, {"a": 1}), (2, None, None)]


CHOSEN = (
    "UPDATE t SET c = c;",
    "UPDATE t SET c = (c), d = d + 1;",
    'UPDATE t SET "Mixed" = "Mixed", "user" = "user";',
    "UPDATE t SET c = t.c;",
    "UPDATE t SET c = c FROM u WHERE u.id = t.id;",
    "WITH w AS (SELECT 1) UPDATE t SET c = c;",
    "UPDATE t SET (a, b) = (a, b);",
    "UPDATE t SET c[1] = c;",
    "UPDATE t SET c = c::text, d = d WHERE d IS NOT NULL;",
)


def test_the_tree_reads_onto_itself_as_the_printed_sql_did() -> None:
    """``Op.onto_itself`` comes from libpg_query's tree, so that static lint needs no
    printer; it must say what comparing the printed value with the column's bare name said,
    on every UPDATE of the repository's SQL and on the chosen ones above."""
    from reconciler.safety.analyse import parse_text
    from reconciler.safety.printed import print_updates
    from tests.safety.test_parse_cache import CORPUS

    texts = [text for _, dialect, text in CORPUS if dialect == "postgresql"] + list(CHOSEN)
    updates = [
        op for text in texts for op in parse_text(text, "postgresql").ops if op.kind == "update"
    ]
    assert len(updates) > 40
    assert sum(bool(op.onto_itself) for op in updates) >= 4
    for op in updates:
        (printed,) = print_updates((op,))
        values = dict(printed.rewrites)
        quoted = {c: '"' + c.replace('"', '""') + '"' for c in op.columns}
        bare = {c: (c if c == c.lower() else quoted[c]) for c in op.columns}
        expected = tuple(
            c for c in op.columns if c in values and values[c].strip() in (quoted[c], bare[c])
        )
        assert op.onto_itself == expected, op.text
