"""Rows this apply run's own migrations wrote are not customer data (PostgreSQL, measured
with xmin): a history that seeds a row and later drops its column reaches head on an empty
database in production, with no approval. A row anyone else wrote, before the run (the
application, an earlier run) or during it (a concurrent writer, an application update of the
seed row), keeps the drop blocked; so does one written between the plan and the step, which
the verify measures again inside the step's transaction. Rows written in a subtransaction
(a ``DO`` block with ``EXCEPTION``) are the run's too. SQLite has no xmin: it blocks there
as before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from reconciler.act.engine import reconcile_schema
from reconciler.plan.model import Step
from reconciler.policy import load_policy
from tests.conftest import pg_query, run_process
from tests.safety.test_empty_database_e2e import columns, policy, write_history
from tests.schema.alembic_scripts import add_revision, create_table, query, script_dir, tables
from tests.schema.helpers import add_migration, ledger_of

INIT = (
    "20260101000000_init",
    'CREATE TABLE "users" ("id" SERIAL PRIMARY KEY, "email" TEXT NOT NULL, "url" TEXT);\n',
)
SEED = (
    "20260102000000_service_user",
    'INSERT INTO "users" ("email", "url") VALUES (\'service@example.com\', \'svc\');\n',
)
SEED_IN_SUBTRANSACTION = (
    "20260102000000_service_user",
    "DO $$ BEGIN\n"
    '  INSERT INTO "users" ("email", "url") VALUES (\'service@example.com\', \'svc\');\n'
    "EXCEPTION WHEN unique_violation THEN NULL;\n"
    "END $$;\n",
)
LOWER = ("20260102100000_lower_emails", 'UPDATE "users" SET "email" = lower("email");\n')
DROP = ("20260103000000_drop_url", 'ALTER TABLE "users" DROP COLUMN "url";\n')
PURGE = (
    "20260104000000_purge_service_user",
    'DELETE FROM "users" WHERE "email" = \'service@example.com\';\n',
)


def apply(tmp_path: Path, url: str, history: list[tuple[str, str]]) -> tuple[int, str]:
    folder = tmp_path / "migrations"
    write_history(folder, "postgresql", history)
    config = policy(tmp_path, [("app", "production", url)], folder)
    done = run_process("apply", "-c", config, "--yes", cwd=tmp_path)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(
    "history",
    [
        [INIT, SEED, DROP],
        [INIT, SEED_IN_SUBTRANSACTION, DROP],
        [INIT, SEED, LOWER, DROP, PURGE],
    ],
    ids=["seed", "seed-in-a-subtransaction", "seed-updated-dropped-deleted"],
)
def test_a_new_database_reaches_head(
    tmp_path: Path, pg_url: str, history: list[tuple[str, str]]
) -> None:
    code, output = apply(tmp_path, pg_url, history)
    assert code == 0, output
    assert f"applied {len(history)} migrations" in output
    assert "url" not in columns(pg_url, "users")
    # The preview said, before it asked, why the step it marks blocked may yet run.
    assert "the database holds no row yet: if 202601" in output


@pytest.mark.parametrize(
    "outside",
    [
        "INSERT INTO users (email, url) VALUES ('ana@example.com', 'ana')",
        "UPDATE users SET url = 'edited by the app'",
    ],
    ids=["row-inserted-before-the-run", "seed-row-updated-between-runs"],
)
def test_rows_from_before_the_run_block(tmp_path: Path, pg_url: str, outside: str) -> None:
    folder = tmp_path / "migrations"
    write_history(folder, "postgresql", [INIT, SEED])
    config = policy(tmp_path, [("app", "production", pg_url)], folder)
    first = run_process("apply", "-c", config, "--yes", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    pg_query(pg_url, outside)
    add_migration(folder, *DROP)

    done = run_process("apply", "-c", config, "--yes", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "20260103000000_drop_url is blocked" in done.stdout + done.stderr
    assert "holds no row yet" not in done.stdout + done.stderr  # a row is there: no promise
    assert "url" in columns(pg_url, "users")


def run_with_a_writer(
    tmp_path: Path,
    url: str,
    history: list[tuple[str, str]],
    when: str,
    sql: str,
    approved: str = "",
) -> tuple[str, str]:
    """Apply through the engine, another session running ``sql`` just before (``before``)
    the drop's step or just after (``after``) the second migration's; the outcome.
    ``approved``: tables an approval of the drop names."""
    folder = tmp_path / "migrations"
    write_history(folder, "postgresql", history)
    config = policy(tmp_path, [("app", "production", url)], folder)
    if approved:
        checksum = hashlib.sha256((folder / DROP[0] / "migration.sql").read_bytes()).hexdigest()
        with config.open("a", encoding="utf-8") as text:
            text.write(
                "    safety:\n      approvals:\n"
                f"        - {{migration: '{DROP[0]}', checksum: '{checksum[:12]}', "
                f"tables: [{approved}], reason: the app's test rows go too}}\n"
            )
    target = load_policy(config).targets[0]
    watched = history[1][0] if when == "after" else DROP[0]

    def on_step(step: Step, result: object) -> None:
        if step.migration.id == watched and (result is None) == (when == "before"):
            with psycopg.connect(url, autocommit=True) as other:
                other.execute(sql)

    outcome = reconcile_schema(
        target,
        ledger_of(load_policy(tmp_path / "policy.yaml")),
        trigger="test",
        source="test",
        on_step=on_step,
    )
    return outcome.reason, outcome.message


@pytest.mark.parametrize(
    ("history", "sql"),
    [
        ([INIT, SEED, DROP], "INSERT INTO users (email, url) VALUES ('ana@example.com', 'a')"),
        ([INIT, SEED, DROP], "UPDATE users SET url = 'edited by the app'"),
        (
            [INIT, SEED, LOWER, DROP],
            "INSERT INTO users (email, url) VALUES ('Ana@example.com', 'a')",
        ),
    ],
    ids=["inserted", "seed-row-updated", "inserted-then-updated-by-a-migration"],
)
def test_a_concurrent_writers_row_blocks(
    tmp_path: Path, pg_url: str, history: list[tuple[str, str]], sql: str
) -> None:
    reason, message = run_with_a_writer(tmp_path, pg_url, history, "after", sql)
    assert reason == "AwaitingApproval", message
    assert "20260103000000_drop_url is blocked" in message
    assert "url" in columns(pg_url, "users")


def test_a_row_written_after_the_plan_is_refused_inside_the_step(
    tmp_path: Path, pg_url: str
) -> None:
    """The plan found only the run's row; another session writes one before the step's
    transaction begins: the verify measures again there and rolls the step back."""
    sql = "INSERT INTO users (email, url) VALUES ('ana@example.com', 'a')"
    reason, message = run_with_a_writer(tmp_path, pg_url, [INIT, SEED, DROP], "before", sql)
    assert reason == "VerifyFailed", message
    assert "users now holds rows that this run's migrations did not write" in message
    assert "url" in columns(pg_url, "users")
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(2,)]


def test_sqlite_keeps_blocking(tmp_path: Path) -> None:
    """No xmin on SQLite: a row the history seeded blocks its drop as before."""
    folder = tmp_path / "migrations"
    write_history(
        folder, "sqlite", [(n, s.replace("SERIAL", "INTEGER")) for n, s in (INIT, SEED, DROP)]
    )
    config = policy(tmp_path, [("app", "production", f"sqlite:///{tmp_path / 'app.db'}")], folder)
    done = run_process("apply", "-c", config, "--yes", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "20260103000000_drop_url is blocked" in done.stdout + done.stderr


READS_THEN_DROPS = """
bind = op.get_bind()
bind.execute(sa.text("SELECT count(*) FROM workspaces")).scalar()
op.drop_table("legacy")
"""


def test_an_unanalysable_revision_after_the_runs_own_row(tmp_path: Path, pg_url: str) -> None:
    """MLflow's case: a revision inserts the ``default`` row, a later one cannot be rendered
    offline; the only row in the database is the run's, so it runs in production."""
    folder = script_dir(tmp_path)
    add_revision(folder, "a1tables", None, create_table("legacy", "note"))
    add_revision(
        folder,
        "a2workspaces",
        "a1tables",
        create_table("workspaces", "name")
        + "\nop.execute(\"INSERT INTO workspaces (name) VALUES ('default')\")",
    )
    add_revision(folder, "a3readdrop", "a2workspaces", READS_THEN_DROPS)
    config = tmp_path / "policy.yaml"
    config.write_text(
        f"ledger: sqlite:///ledger.db\ntargets:\n  - name: app\n    environment: production\n"
        f"    database: {pg_url}\n    migrations: {{layout: alembic, path: {folder}}}\n",
        encoding="utf-8",
    )
    done = run_process("apply", "-c", config, "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "legacy" not in tables(pg_url)
    assert query(pg_url, "SELECT version_num FROM alembic_version") == [("a3readdrop",)]


MOVE = (
    "20260105000000_move_urls",
    'CREATE TABLE "archive" ("id" INTEGER NOT NULL, "url" TEXT);\n'
    'INSERT INTO "archive" SELECT "id", "url" FROM "users";\n'
    'ALTER TABLE "users" DROP COLUMN "url";\n',
)
DROP_ARCHIVE = ("20260106000000_drop_archive", 'DROP TABLE "archive";\n')


def test_rows_copied_from_customer_data_are_customer_data(tmp_path: Path, pg_url: str) -> None:
    """A run that begins on a database with rows counts none of its rows as its own: the
    urls it moved into a new table (an approved move) are the customers', and dropping that
    table later in the same run still blocks."""
    folder = tmp_path / "migrations"
    write_history(folder, "postgresql", [INIT])
    config = policy(tmp_path, [("app", "production", pg_url)], folder)
    assert run_process("apply", "-c", config, "--yes", cwd=tmp_path).returncode == 0
    pg_query(pg_url, "INSERT INTO users (email, url) VALUES ('ana@example.com', 'ana')")
    moved = add_migration(folder, *MOVE)
    add_migration(folder, *DROP_ARCHIVE)
    checksum = hashlib.sha256(moved.read_bytes()).hexdigest()[:12]
    with config.open("a", encoding="utf-8") as text:
        text.write(
            "    safety:\n      approvals:\n"
            f"        - {{migration: '{MOVE[0]}', checksum: '{checksum}', "
            "rules: [drop-column], reason: moved to archive}\n"
        )

    done = run_process("apply", "-c", config, "--yes", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{DROP_ARCHIVE[0]} is blocked" in done.stdout + done.stderr
    assert pg_query(pg_url, "SELECT url FROM archive") == [("ana",)]


def test_the_rehearsal_accepts_what_the_plan_found_to_be_the_runs(
    tmp_path: Path, pg_url: str
) -> None:
    """With a backup and a rehearsal, the copy shows the seed's url dropped and its row
    deleted: losses of the run's own rows, which the plan found, so the live apply goes on."""
    folder = tmp_path / "migrations"
    write_history(folder, "postgresql", [INIT, SEED, DROP, PURGE])
    config = policy(tmp_path, [("app", "production", pg_url)], folder)
    with config.open("a", encoding="utf-8") as text:
        text.write("    backup: {driver: pg_dump, dir: backups}\n    rehearse: true\n")
    done = run_process("apply", "-c", config, "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "url" not in columns(pg_url, "users")
    assert pg_query(pg_url, "SELECT count(*) FROM users") == [(0,)]


def test_an_approval_covers_a_row_written_after_the_plan(tmp_path: Path, pg_url: str) -> None:
    sql = "INSERT INTO users (email, url) VALUES ('ana@example.com', 'a')"
    reason, message = run_with_a_writer(
        tmp_path, pg_url, [INIT, SEED, DROP], "before", sql, approved="users"
    )
    assert reason == "InSync", message
    assert "url" not in columns(pg_url, "users")
