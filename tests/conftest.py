"""Shared fixtures: real PostgreSQL databases, SQLite files, policy files, the CLI.

Tests talk to a real PostgreSQL server (``RECONCILER_TEST_PG``, default the local server with
trust auth). Every test that asks for ``pg_url`` gets a fresh, empty database of its own,
dropped afterwards, so tests never see each other's tables.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@pytest.fixture(scope="session", autouse=True)
def parse_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The command line keeps parses in ``$RECONCILER_CACHE_DIR``: the tests' own folder,
    never the user's ``~/.cache``; the commands run as processes inherit it."""
    folder = tmp_path_factory.mktemp("parse-cache")
    before = os.environ.get("RECONCILER_CACHE_DIR")
    os.environ["RECONCILER_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("RECONCILER_CACHE_DIR", None)
    else:
        os.environ["RECONCILER_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        with _admin():
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {SERVER}: {exc}")
    return SERVER


@pytest.fixture(scope="session", autouse=True)
def neighbours() -> Iterator[None]:
    """What a shared server holds besides the tests' own databases, for the whole run:
    another application's database with sessions in it, one named like a rehearsal's
    scratch database of a target called ``shop``, and the advisory locks another
    deployment's reconciler and Prisma hold there (in PostgreSQL a lock belongs to one
    database). Every test must pass beside them, and none may touch them.

    With the tests spread over several processes (pytest-xdist), each process keeps its own
    neighbours, named after it (``gw0``, ``gw1``; ``main`` when not spread): a process's
    tests then pass beside every process's neighbours, and each checks only its own at the
    end, so one process finishing early never drops another's."""
    try:
        admin = _admin()
    except psycopg.OperationalError:
        yield  # no server: the PostgreSQL tests fail on their own, with the reason
        return
    from reconciler.runtime.leader import lock_key
    from reconciler.source.prisma import PRISMA_ADVISORY_LOCK

    token = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:6]}"
    names = [f"rt_neighbour_{token}", f"rcl_scratch_shop_20000101000000_{token}"]
    sessions: list[psycopg.Connection[tuple[object, ...]]] = []
    try:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
            url = f"{SERVER.rsplit('/', 1)[0]}/{name}"
            for application in ("reconciler", "prisma-migrate"):
                conn = psycopg.connect(url, autocommit=True, application_name=application)
                sessions.append(conn)
            sessions[-2].execute("SELECT pg_advisory_lock(%s)", (PRISMA_ADVISORY_LOCK,))
            for target in ("shop", "admin"):
                sessions[-1].execute("SELECT pg_advisory_lock(%s, %s)", lock_key(target))
        yield
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,)
        ).fetchall()
        assert sorted(r[0] for r in left) == sorted(names), "a test dropped a neighbour"
    finally:
        for conn in sessions:
            conn.close()
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def _fresh_database(server: str) -> Iterator[str]:
    name = f"rt_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh empty PostgreSQL database, as a URL."""
    with _fresh_database(pg_server) as url:
        yield url


@pytest.fixture
def other_pg_url(pg_server: str) -> Iterator[str]:
    """A second fresh empty database, for tests of several targets."""
    with _fresh_database(pg_server) as url:
        yield url


def pg_query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


def scratch_databases(url: str, target: str = "shop") -> list[str]:
    """The scratch databases that exist for ``target`` on the database at ``url``: only
    this test's own, whatever else the shared server holds."""
    from reconciler.backup.scratch import scratch_prefix
    from reconciler.db.url import parse_database_url

    pattern = scratch_prefix(parse_database_url(url), target).replace("_", "\\_") + "%"
    rows = pg_query(SERVER, "SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,))
    return [str(r[0]) for r in rows]


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


def run_on_terminal(*args: str | Path, answer: str, cwd: Path | None = None) -> tuple[int, str]:
    """Run ``python -m reconciler`` on a pseudo-terminal, as a person at a terminal does,
    and type ``answer`` at its prompt (output that ends in ``": "`` with no newline). Returns
    the exit code and what the terminal showed, the typed answer included."""
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *map(str, args)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
    )
    os.close(follower)
    shown = b""
    answered = False
    deadline = time.monotonic() + 120
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"no exit within 120 s; the terminal showed: {shown!r}")
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the process exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if not answered and shown.endswith(b": "):
                os.write(leader, answer.encode() + b"\n")
                answered = True
        return process.wait(timeout=60), shown.decode().replace("\r\n", "\n")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
