"""An Alembic revision that cannot be rendered offline, next in line on a database whose
tables hold no rows, has nothing to lose: it no longer blocks a new environment in
production (MLflow's and Optuna's histories read data through ``op.get_bind()`` in seven and
six revisions). With a row anywhere in the database that this apply run's migrations did
not write it still blocks, and so does a revision further down the batch until the ones
before it have run and the database is asked again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.schema.alembic_scripts import add_revision, create_table, query, script_dir, tables

Cli = Callable[..., Result]

READS_THEN_DROPS = """
bind = op.get_bind()
kept = bind.execute(sa.text("SELECT count(*) FROM legacy")).scalar()
op.drop_table("legacy")
"""

FILLS_LEGACY = """
op.execute("INSERT INTO legacy (note) VALUES ('a customer''s note')")
"""


def production_policy(url: str, folder: Path) -> str:
    return (
        f"ledger: sqlite:///ledger.db\ntargets:\n  - name: app\n    environment: production\n"
        f"    database: {url}\n    migrations: {{layout: alembic, path: {folder}}}\n"
    )


def test_it_runs_on_a_database_with_no_rows(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    folder = script_dir(tmp_path)
    add_revision(folder, "a1legacy", None, create_table("legacy", "note"))
    add_revision(folder, "a2readdrop", "a1legacy", READS_THEN_DROPS)
    add_revision(folder, "a3again", "a2readdrop", create_table("legacy", "note"))
    add_revision(folder, "a4readdrop", "a3again", READS_THEN_DROPS)
    policy = write_policy(production_policy(pg_url, folder))

    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 0, applied.output
    assert "legacy" not in tables(pg_url)
    assert query(pg_url, "SELECT version_num FROM alembic_version") == [("a4readdrop",)]


def test_a_row_anywhere_still_blocks_it(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    folder = script_dir(tmp_path)
    add_revision(folder, "a1legacy", None, create_table("legacy", "note"))
    add_revision(folder, "a2fill", "a1legacy", FILLS_LEGACY)
    policy = write_policy(production_policy(pg_url, folder))
    # The row is written by an earlier run: in the run that reaches a3readdrop it is data.
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    add_revision(folder, "a3readdrop", "a2fill", READS_THEN_DROPS)
    add_revision(folder, "a4next", "a3readdrop", create_table("later", "note"))

    planned = cli("plan", "-c", policy)
    assert "x apply a3readdrop" in planned.stdout, planned.output
    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 3, applied.output
    assert "a3readdrop is blocked" in applied.output
    assert "unanalysable-revision" in applied.output
    assert query(pg_url, "SELECT note FROM legacy") == [("a customer's note",)]
