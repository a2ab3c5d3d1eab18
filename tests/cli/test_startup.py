"""A command loads only the libraries it uses.

Importing SQLAlchemy, psycopg or Alembic costs a few tenths of a second each, more than
``--help`` or a pre-commit ``lint`` should take in all. What each command may load is checked
here by module name, in a fresh interpreter; how long it takes is measured in
``bench/bench_startup.py``, not here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ALEMBIC, PRISMA_PG, ROOT

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
    "reconciler.safety.ops",
    "yaml",
    "_hashlib",
    "logging",
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


def loaded_by(*args: str, cwd: Path, cache: Path | None = None) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the SQLite default
    if cache is not None:
        env["RECONCILER_CACHE_DIR"] = str(cache)
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
    # A command's own --help comes after the group has set up its logging.
    assert loaded_by(*args, cwd=ROOT) == ({"logging"} if args[0] == "plan" else set())


PARSER = "reconciler.safety.ops"
"""Loaded when a file is parsed: libpg_query's grammar, without pglast's Python layer."""


def test_static_lint_loads_only_the_sql_parser(tmp_path: Path) -> None:
    """The pre-commit hook's command: no policy, so not even pydantic or the YAML parser;
    once the parse cache holds every file, not even the parser; and for plain DDL, never
    pglast's node classes and printer."""
    cache = tmp_path / "cache"
    assert loaded_by("lint", str(PRISMA_PG), cwd=tmp_path, cache=cache) == {PARSER}
    assert loaded_by("lint", str(PRISMA_PG), cwd=tmp_path, cache=cache) == set()
    assert loaded_by("lint", "--no-cache", str(PRISMA_PG), cwd=tmp_path, cache=cache) == {PARSER}
    # Given a policy, lint logs as every command does (its secrets masked): logging is set up.
    config = str(ROOT / "config.example.yaml")
    assert "logging" in loaded_by("lint", "-c", config, str(PRISMA_PG), cwd=tmp_path, cache=cache)
    assert "logging" in loaded_by("-v", "lint", str(PRISMA_PG), cwd=tmp_path, cache=cache)


def test_lint_parses_only_what_changed(tmp_path: Path) -> None:
    cache, folder = tmp_path / "cache", tmp_path / "migrations"
    shutil.copytree(PRISMA_PG, folder)
    assert loaded_by("lint", str(folder), cwd=tmp_path, cache=cache) == {PARSER}
    new = folder / "20990101000000_more" / "migration.sql"
    new.parent.mkdir()
    new.write_text('ALTER TABLE "users" ADD COLUMN "nickname" TEXT;\n')
    assert loaded_by("lint", str(folder), cwd=tmp_path, cache=cache) == {PARSER}
    assert loaded_by("lint", str(folder), cwd=tmp_path, cache=cache) == set()
    # An UPDATE is judged from the tree; its expressions are printed back as SQL only for
    # the data-aware checks (``printed``): static lint does without pglast's printer.
    fill = folder / "20990102000000_fill" / "migration.sql"
    fill.parent.mkdir()
    fill.write_text('UPDATE "users" SET "nickname" = lower("email") WHERE "nickname" IS NULL;\n')
    assert loaded_by("lint", str(folder), cwd=tmp_path, cache=cache) == {PARSER}
    # A type change's USING is named in its finding: printed when parsed, once.
    retype = folder / "20990103000000_retype" / "migration.sql"
    retype.parent.mkdir()
    retype.write_text(
        'ALTER TABLE "users" ALTER COLUMN "nickname" TYPE VARCHAR(20) USING left("nickname", 20);\n'
    )
    assert loaded_by("lint", str(folder), cwd=tmp_path, cache=cache) == {PARSER, "pglast"}
    assert loaded_by("lint", str(folder), cwd=tmp_path, cache=cache) == set()


def test_plan_on_sqlite_loads_neither_sqlalchemy_nor_psycopg(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    loaded = loaded_by("plan", "-c", str(ROOT / "config.example.yaml"), cwd=tmp_path, cache=cache)
    assert {"pydantic", "yaml", PARSER} <= loaded  # it did read the policy and plan
    assert not loaded & {"sqlalchemy", "psycopg", "alembic", "httpx", "apscheduler", "svix"}
    again = loaded_by("plan", "-c", str(ROOT / "config.example.yaml"), cwd=tmp_path, cache=cache)
    assert again == loaded - {PARSER, "pglast"}  # every pending migration's parse was stored


def test_plan_skips_pydantics_plugin_lookup() -> None:
    """pydantic's plugin look-up imports importlib.metadata and reads every package's
    metadata; the policy needs no plugin (``reconciler.policy.plugins``)."""
    probe = (
        "import sys\n"
        "from reconciler.policy import load_policy\n"
        f"load_policy({str(ROOT / 'config.example.yaml')!r})\n"
        "print('importlib.metadata' in sys.modules)\n"
        "import os; print('PYDANTIC_DISABLE_PLUGINS' in os.environ)\n"  # children see the user's
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "False"]
    # Someone who wants pydantic's plugins says so, and gets the look-up back.
    env["PYDANTIC_DISABLE_PLUGINS"] = ""
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "True"]


# Runs the ``reconciler`` script's entry point and reports, at exit, how many garbage
# collections ran from the moment it was called, and whether collection is on.
GC_PROBE = """
import atexit, gc, json, sys
sys.argv = ["reconciler", *sys.argv[1:]]
from reconciler.launch import run
runs = []
gc.callbacks.append(lambda phase, info: phase == "stop" and runs.append(info["generation"]))
atexit.register(lambda: print("GC " + json.dumps([len(runs), gc.isenabled()])))
run()
"""


def run_probe(probe: str, *args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """``probe`` in a fresh interpreter with ``args``, on the SQLite default, with a parse
    cache of its own."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RECONCILER_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def collections_in(*args: str, cwd: Path, cache: Path) -> tuple[int, bool]:
    result = run_probe(GC_PROBE, *args, cwd=cwd, cache=cache)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("GC ")]
    assert lines, f"no report (exit {result.returncode}): {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr
    runs, enabled = json.loads(lines[-1].removeprefix("GC "))
    return runs, enabled


def test_lint_runs_without_garbage_collection(tmp_path: Path) -> None:
    """Start-up and a static lint allocate what lives until exit: collecting it is wasted
    (a tenth of a warm lint); ``reconciler.launch``."""
    cache = tmp_path / "cache"
    for _ in range(2):  # cold, then warm
        assert collections_in("lint", str(PRISMA_PG), cwd=tmp_path, cache=cache) == (0, False)
    assert collections_in("--version", cwd=tmp_path, cache=cache) == (0, False)


def test_other_commands_collect_again(tmp_path: Path) -> None:
    """Any other command may run for long (``run`` is the daemon): collection is back on
    (with start-up's objects frozen out of its walks)."""
    config = str(ROOT / "config.example.yaml")
    runs, enabled = collections_in("check", "-c", config, cwd=tmp_path, cache=tmp_path)
    assert enabled
    assert runs > 0  # loading the policy allocates enough for the collector to run


def test_importing_the_command_line_leaves_collection_alone() -> None:
    """Library callers and tests (``CliRunner``) never see the collector paused or objects
    frozen: only the script's entry point pauses it."""
    probe = (
        "import gc\n"
        "from click.testing import CliRunner\n"
        "from reconciler.cli import main\n"
        "CliRunner().invoke(main, ['lint', '--help'])\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["True", "0"]


# Runs the ``reconciler`` script's entry point with an ``atexit`` function, and marks the
# start of the interpreter's teardown (its first step waits for threads: ``threading._shutdown``).
EXIT_PROBE = """
import atexit, sys, threading
wait_for_threads = threading._shutdown
def tearing_down():
    sys.__stderr__.write("TEARDOWN\\n")
    wait_for_threads()
threading._shutdown = tearing_down
atexit.register(lambda: sys.__stderr__.write("ATEXIT\\n"))
sys.argv = ["reconciler", *sys.argv[1:]]
from reconciler.launch import run
run()
"""


def ended(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_probe(EXIT_PROBE, *args, cwd=cwd, cache=cache)


def test_a_short_lived_command_skips_teardown_and_keeps_what_an_exit_promises(
    tmp_path: Path,
) -> None:
    """``lint``, ``plan``, ``check``, ``--help`` and ``--version`` end without the
    interpreter's teardown (a tenth of a warm lint or a plan), yet their whole output
    arrives, the ``atexit`` functions run, and the exit status is the command's."""
    done = ended("lint", "--format", "json", str(PRISMA_PG), cwd=tmp_path, cache=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # whole: the buffered output was flushed
    assert report["migrations"] == len(list(PRISMA_PG.glob("*/migration.sql")))
    assert done.stderr.split() == ["ATEXIT"]  # and no teardown
    blocked = tmp_path / "drop.sql"
    blocked.write_text('ALTER TABLE "users" DROP COLUMN "email";\n', encoding="utf-8")
    done = ended("lint", str(blocked), cwd=tmp_path, cache=tmp_path)
    assert done.returncode == 1
    assert "1 blocking" in done.stdout
    assert done.stderr.split() == ["ATEXIT"]
    config = str(ROOT / "config.example.yaml")
    for args, code in (
        (["--version"], 0),
        (["--help"], 0),
        (["--no-such-option"], 1),
        (["check", "-c", config], 0),
        (["plan", "-c", config], 2),  # the example's 7 migrations are pending
    ):
        done = ended(*args, cwd=tmp_path, cache=tmp_path)
        assert done.returncode == code, done.stderr
        assert done.stderr.splitlines()[-1:] == ["ATEXIT"]
        assert "TEARDOWN" not in done.stderr
    assert "7 migrations to apply" in done.stdout  # plan's whole output arrived


def test_other_commands_end_as_python_ends(tmp_path: Path) -> None:
    """A command that may hold connections, threads or files ends with the interpreter's
    teardown, whatever finalisers rely on it."""
    config = str(ROOT / "config.example.yaml")
    done = ended("status", "-c", config, cwd=tmp_path, cache=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-2:] == ["TEARDOWN", "ATEXIT"]


def test_an_env_py_that_sets_logging_up_itself_renders_without_a_policy(tmp_path: Path) -> None:
    """Some env.py files (optuna's) call ``fileConfig(config.config_file_name)`` unless the
    root logger has a handler; the file name is None when lint renders the revisions, and
    ``lint PATH`` sets no logging up. So env.py runs with a handler on the root logger."""
    folder = tmp_path / "alembic"
    shutil.copytree(ALEMBIC, folder, ignore=shutil.ignore_patterns("__pycache__"))
    env_py = folder / "env.py"
    env_py.write_text(
        env_py.read_text(encoding="utf-8").replace(
            "config = context.config\n",
            "config = context.config\n"
            "import logging\n"
            "from logging.config import fileConfig\n"
            "if len(logging.getLogger().handlers) == 0:\n"
            "    fileConfig(config.config_file_name)\n",
        ),
        encoding="utf-8",
    )
    assert "fileConfig(config.config_file_name)" in env_py.read_text(encoding="utf-8")
    for path in (folder, next((folder / "versions").glob("*.py"))):
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", "lint", str(path)],
            cwd=tmp_path,
            env={**os.environ, "RECONCILER_CACHE_DIR": str(tmp_path / "cache")},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert "unanalysable-revision" not in done.stdout, done.stdout
        assert "migration(s), static" in done.stdout, done.stderr
