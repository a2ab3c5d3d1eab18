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
    target_option,
)
from reconciler.errors import ReconcilerError
from reconciler.secrets import redact


@click.command()
@config_option
@target_option
@click.option(
    "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@errors_to_exit
def drift(config: Path, target: str | None, output: str) -> None:
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
            reports.append(report.to_json())
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
