"""A command loads only the libraries it uses.

Importing SQLAlchemy, psycopg or Alembic costs a few tenths of a second each, more than
``--help`` or a pre-commit ``lint`` should take in all. What each command may load is checked
here by module name, in a fresh interpreter; how long it takes is measured in
``bench/bench_startup.py``, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PRISMA_PG, ROOT

HEAVY = (
    "alembic",
    "apscheduler",
    "httpx",
    "prometheus_client",
    "psycopg",
    "pydantic",
    "sqlalchemy",
    "svix",
    "pglast",
    "yaml",
)

# Runs the command line in this interpreter and reports, at exit, which of HEAVY it loaded.
PROBE = """
import atexit, json, sys
heavy = json.loads(sys.argv[1])
atexit.register(lambda: print("LOADED " + json.dumps(sorted(m for m in heavy if m in sys.modules))))
sys.argv = ["reconciler", *sys.argv[2:]]
from reconciler.cli import run_command_line
run_command_line()
"""


def loaded_by(*args: str, cwd: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the SQLite default
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("LOADED ")]
    assert lines, f"no report (exit {result.returncode}): {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr
    return set(json.loads(lines[-1].removeprefix("LOADED ")))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["plan", "--help"]])
def test_help_and_version_load_no_library_but_click(args: list[str]) -> None:
    assert loaded_by(*args, cwd=ROOT) == set()


def test_static_lint_loads_only_the_sql_parser(tmp_path: Path) -> None:
    """The pre-commit hook's command: no policy, so not even pydantic or the YAML parser."""
    assert loaded_by("lint", str(PRISMA_PG), cwd=tmp_path) == {"pglast"}


def test_plan_on_sqlite_loads_neither_sqlalchemy_nor_psycopg(tmp_path: Path) -> None:
    loaded = loaded_by("plan", "-c", str(ROOT / "config.example.yaml"), cwd=tmp_path)
    assert {"pydantic", "yaml", "pglast"} <= loaded  # it did read the policy and plan
    assert not loaded & {"sqlalchemy", "psycopg", "alembic", "httpx", "apscheduler", "svix"}
