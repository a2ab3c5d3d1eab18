"""Shared fixtures: real PostgreSQL databases, SQLite files, policy files, the CLI.

Tests talk to a real PostgreSQL server (``RECONCILER_TEST_PG``, default the local server with
trust auth). Every test that asks for ``pg_url`` gets a fresh, empty database of its own,
dropped afterwards, so tests never see each other's tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "shop"
PRISMA_SQLITE = EXAMPLES / "prisma" / "migrations"
PRISMA_PG = EXAMPLES / "prisma-postgres" / "migrations"
ALEMBIC = EXAMPLES / "alembic"
SERVER = os.environ.get("RECONCILER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(SERVER, autocommit=True)


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        with _admin():
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {SERVER}: {exc}")
    return SERVER


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh empty PostgreSQL database, as a URL."""
    name = f"rt_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[[str], Path]:
    """Write a policy (dedented) to ``tmp_path/policy.yaml`` and return its path."""

    def write(text: str, name: str = "policy.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run the CLI in-process, as a user would type it (stdin is not a terminal)."""

    def run(*args: str | Path, input: str | None = None) -> Result:
        return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)

    return run


def run_process(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m reconciler`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )
