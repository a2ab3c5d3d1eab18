"""The ``drift`` verb: what changed in the live schema outside the migrations.

A thin face over ``reconciler.drift``, imported when the command runs, so loading this
module costs ``--help`` nothing. Exit 0 no drift, 2 drift, 1 error (as ``plan``: 2 says
"something to look at", 1 "could not tell")."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli_support import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PENDING,
    chosen_targets,
    config_option,
    errors_to_exit,
    output_option,
    target_option,
)
from reconciler.errors import ReconcilerError
from reconciler.secrets import redact


@click.command()
@config_option
@target_option
@output_option
@click.option(
    "--sql",
    is_flag=True,
    help="Print the sync_state migration that, added to the history, "
    "reproduces the live schema; with -o json, as each target's 'sql'.",
)
@errors_to_exit
def drift(config: Path, target: str | None, output: str, sql: bool) -> None:
    """Compare the live schema with the one its applied migrations build (replayed on a
    scratch database). Exit 0 no drift, 2 drift, 1 error."""
    from reconciler.drift import check_drift, ledger_tables
    from reconciler.policy import load_policy

    policy = load_policy(config)
    code = EXIT_OK
    reports: list[dict[str, Any]] = []
    for index, spec in enumerate(chosen_targets(policy, target)):
        try:
            report = check_drift(spec, ledger_tables(policy, spec))
            migration = _sync_sql(report, spec.database.dialect) if sql else None
        except ReconcilerError as exc:
            code = EXIT_ERROR
            if output == "json":
                reports.append({"target": spec.name, "error": redact(str(exc))})
            else:
                click.echo(f"reconciler: error: {spec.name}: {redact(str(exc))}", err=True)
            continue
        if report.differences and code == EXIT_OK:
            code = EXIT_PENDING
        if output == "json":
            reports.append(report.to_json() | ({"sql": migration} if sql else {}))
            continue
        if migration is not None:
            click.echo(("\n" if index else "") + redact(_sql_text(report, migration)), nl=False)
            continue
        count = len(report.differences)
        head = (
            f"{spec.name}: no drift"
            if not count
            else f"{spec.name}: {count} difference{'' if count == 1 else 's'} from the schema "
            "the applied migrations build"
        )
        lines = [head + f" ({report.replayed} migrations replayed)"]
        lines += [f"  {d.message}" for d in report.differences]
        lines += [f"  note: {note}" for note in report.notes]
        click.echo(("\n" if index else "") + redact("\n".join(lines)))
    if output == "json":
        click.echo(redact(json.dumps({"targets": reports}, indent=2)))
    sys.exit(code)


def _sync_sql(report: Any, dialect: str) -> str:
    """The statements of the ``sync_state`` migration, one per paragraph ('' without drift):
    PostgreSQL alters in place; SQLite rebuilds the tables whose columns or keys drifted."""
    from reconciler.drift.sql import sync_sql
    from reconciler.drift.sql_sqlite import sync_sql_sqlite

    assert report.live is not None
    assert report.expected is not None
    write = sync_sql_sqlite if dialect == "sqlite" else sync_sql
    return "\n\n".join(write(report.live, report.expected))


def _sql_text(report: Any, migration: str) -> str:
    """The migration file as printed: a comment saying where it comes from, then the SQL."""
    count = len(report.differences)
    if not count:
        return f"-- {report.target}: no drift ({report.replayed} migrations replayed)\n"
    head = [
        f"-- {report.target}: the live schema, from the {report.replayed} applied migrations "
        f"({count} difference{'' if count == 1 else 's'}; reconciler drift --sql)"
    ]
    head += [f"-- note: {note}" for note in report.notes]
    return "\n".join(head) + "\n\n" + migration + "\n"
