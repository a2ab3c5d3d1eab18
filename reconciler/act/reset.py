"""``reset``: rebuild a development database from nothing (drop, migrate, seed).

Refused, before any connection is made, for every target whose environment is not
``development``: the guard is the policy, which is reviewed, not a flag typed in a hurry.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from reconciler.act.engine import Outcome, reconcile_schema
from reconciler.db.connection import Database, connect
from reconciler.errors import Refused
from reconciler.source.base import read_utf8

if TYPE_CHECKING:
    from reconciler.ledger import Ledger
    from reconciler.policy.model import Target


def check_resettable(target: Target) -> None:
    if target.environment != "development":
        raise Refused(
            f"reset refused: target {target.name!r} is a {target.environment} target; reset "
            "drops every table and only runs on environment: development. Nothing was touched."
        )


def reset_target(target: Target, ledger: Ledger, *, source: str) -> Outcome:
    check_resettable(target)
    db = connect(target.database)
    try:
        drop_everything(db)
    finally:
        db.close()
    outcome = reconcile_schema(target, ledger, trigger="reset", source=source)
    if outcome.in_sync and target.seed is not None:
        run_seed(target)
    return outcome


def drop_everything(db: Database) -> None:
    if db.dialect == "postgresql":
        schemas = [
            row[0]
            for row in db.query(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname <> 'information_schema'"
            )
        ]
        with db.transaction():
            for schema in schemas:
                db.execute(f'DROP SCHEMA "{schema}" CASCADE')
            db.execute('CREATE SCHEMA IF NOT EXISTS "public"')
        return
    objects = db.query(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "AND type IN ('table', 'view')"
    )
    db.execute("PRAGMA foreign_keys = OFF")
    with db.transaction():
        for kind, name in objects:
            db.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')


def run_seed(target: Target) -> None:
    seed = target.seed
    assert seed is not None
    if not seed.is_file():
        raise Refused(f"seed {seed} not found")
    if seed.suffix == ".sql":
        db = connect(target.database)
        try:
            with db.transaction():
                db.run_script(read_utf8(seed))
        finally:
            db.close()
        return
    url = target.database
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        url.libpq_conninfo() if url.dialect == "postgresql" else f"sqlite:///{url.sqlite_path}"
    )
    result = subprocess.run([str(seed)], env=env, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Refused(f"seed {seed} exited with {result.returncode}: {tail[0]}")
