"""Two revisions that each create a table with the same ``sa.Enum(..., name=...)``: in one
``alembic upgrade heads`` the second skips its CREATE TYPE, because Alembic remembers for
the whole run which named types it created. Reconciler runs each revision in an ``env.py``
run of its own, and Optuna's history (``v0.9.0.a``, then ``v2.4.0.a``) failed with
``type "studydirection" already exists``; the memo now carries on from one revision to the
next, as in one Alembic run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.schema.alembic_scripts import add_revision, query, script_dir, tables

Cli = Callable[..., Result]

WITH_MOOD = """
op.create_table(
    "{table}",
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("mood", sa.Enum("HAPPY", "SAD", name="mood"), nullable=False),
)
"""


def history(tmp_path: Path) -> Path:
    folder = script_dir(tmp_path)
    add_revision(folder, "a1people", None, WITH_MOOD.format(table="people"))
    add_revision(folder, "a2pets", "a1people", WITH_MOOD.format(table="pets"))
    return folder


def policy_text(url: str, folder: Path, revision: str = "head") -> str:
    return (
        f"ledger: sqlite:///ledger.db\ntargets:\n  - name: app\n    environment: development\n"
        f"    database: {url}\n"
        f"    migrations: {{layout: alembic, path: {folder}, revision: {revision}}}\n"
    )


def test_one_apply_creates_the_named_enum_once(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    policy = write_policy(policy_text(pg_url, history(tmp_path)))
    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 0, applied.output
    assert {"people", "pets"} <= tables(pg_url)
    assert query(pg_url, "SELECT version_num FROM alembic_version") == [("a2pets",)]
    assert query(pg_url, "SELECT count(*) FROM pg_type WHERE typname = 'mood'") == [(1,)]


def test_a_later_apply_fails_as_a_later_alembic_upgrade_does(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    folder = history(tmp_path)
    first = write_policy(policy_text(pg_url, folder, "a1people"))
    assert cli("apply", "-c", first, "--yes").exit_code == 0
    later = write_policy(policy_text(pg_url, folder))
    applied = cli("apply", "-c", later, "--yes")
    assert applied.exit_code != 0
    assert 'type "mood" already exists' in applied.output
    assert "pets" not in tables(pg_url)
