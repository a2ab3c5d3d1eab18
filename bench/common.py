"""What the benchmark scripts share: the PostgreSQL server they create and drop databases on,
child processes, figures, statement counting, options, and the frame of their ``main``.

The scripts run as ``python bench/<script>.py``, so Python puts this folder first on
``sys.path`` and they import this module as ``common``. It imports psycopg, so a script that
times its own imports (``apply_timeline.py``) does not use it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
"""The server when neither ``--server`` nor ``$BENCH_POSTGRES`` names one."""

Statement = str | sql.SQL | sql.Composed
"""What ``Server.execute`` runs: SQL text, or a statement composed with ``psycopg.sql``."""

# -- the server -------------------------------------------------------------------------


class Server:
    """A PostgreSQL server, given as a URL without a database name. It remembers every
    database it creates, so that ``drop_all`` can drop them when the benchmark ends, also
    after a failure, Ctrl-C or SIGTERM (see ``run_benchmarks``)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.created: list[str] = []

    def dsn(self, database: str) -> str:
        return f"{self.url}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[Any]:
        """A new autocommit connection to ``database``; close it (``with``) when done."""
        return psycopg.connect(self.dsn(database), autocommit=True)

    def execute(self, statement: Statement, database: str = "postgres") -> None:
        """Run ``statement`` (one or several, with no parameters) in ``database`` over a
        connection of its own, outside any transaction, as CREATE DATABASE, VACUUM and
        CHECKPOINT require."""
        with self.connect(database) as conn:
            conn.execute(statement)

    def value(self, query: str, database: str = "postgres") -> Any:
        """The first column of the first row of ``query`` run in ``database``; None when
        it returns no row."""
        with self.connect(database) as conn:
            row = conn.execute(query).fetchone()
        return row[0] if row else None

    def create(self, name: str, template: str | None = None) -> str:
        """Create database ``name``, a copy of ``template`` if given, and remember it for
        ``drop_all``; its DSN. Fails if it exists (``fresh`` drops it first)."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        if name not in self.created:
            # Remembered first: a CREATE cut short by a signal may still have created it.
            self.created.append(name)
        self.execute(statement)
        return self.dsn(name)

    def fresh(self, name: str, template: str | None = None) -> str:
        """An empty database ``name`` (a copy of ``template`` if given), dropped first if it
        exists; its DSN."""
        self.drop(name)
        return self.create(name, template)

    def drop(self, name: str) -> None:
        """Drop database ``name`` if it exists, closing the connections to it."""
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def drop_all(self, workers: int = 1, report: bool = False) -> None:
        """Drop every database created here, the newest first. A database that cannot be
        dropped is a warning on stderr and the others are still dropped. ``workers`` > 1
        drops that many at once: each DROP DATABASE waits for a checkpoint, which they can
        then share. ``report`` prints how many were dropped and how long it took."""
        if not self.created:
            return
        started = time.perf_counter()
        names, self.created = list(reversed(self.created)), []

        def drop(name: str) -> bool:
            try:
                self.drop(name)
                return True
            except psycopg.Error as exc:
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
                return False

        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                count = sum(pool.map(drop, names))
        else:
            count = sum(map(drop, names))
        if report:
            print(f"dropped {count} databases in {time.perf_counter() - started:.1f} s")

    def leftovers(self, prefix: str) -> list[str]:
        """Databases whose names start with ``prefix``, as those of an earlier run that did
        not end cleanly would."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,)
            ).fetchall()
        return sorted(r[0] for r in rows)

    def size(self, name: str) -> int:
        """``pg_database_size`` of database ``name``, in bytes."""
        return int(self.value("SELECT pg_database_size(current_database())", name))

    def checkpoint(self) -> None:
        """Flush dirty buffers, so that a measured run does not pay for the writes of the
        one before it."""
        self.execute("CHECKPOINT")

    def settle(self, *names: str, vacuum: str = "VACUUM (FREEZE, ANALYZE)") -> None:
        """Run ``vacuum`` in each database, then a CHECKPOINT: no measured run pays for the
        hint bits, statistics or dirty buffers that loading them left. A benchmark that
        rewrites one table can vacuum only that (``vacuum="VACUUM ANALYZE users"``)."""
        for name in names:
            self.execute(vacuum, name)
        self.checkpoint()


def reset_ledger(folder: Path, name: str = "ledger.db") -> None:
    """Delete the SQLite ledger ``name`` in ``folder`` and its -wal, -shm and -journal
    files, so that a run starts from no history."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        (folder / f"{name}{suffix}").unlink(missing_ok=True)


# -- child processes --------------------------------------------------------------------


def beside_python(name: str, hint: str | None = None) -> str:
    """The console script ``name`` installed next to this interpreter (not a
    version-manager shim, whose own start-up would be measured), else whatever ``name`` is
    on PATH. Exits, saying so (and ``hint``), when there is none."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed" + (f" ({hint})" if hint else ""))
    return found


def reconciler_command() -> list[str]:
    """The command that starts reconciler: its console script (see ``beside_python``)."""
    return [beside_python("reconciler", "pip install -e .")]


def run(
    command: Sequence[str], expect: int | Sequence[int] = 0, env: dict[str, str] | None = None
) -> tuple[float, str]:
    """Run ``command`` with its output captured (in ``env`` if given, else this process's
    environment): its wall-clock seconds and its stdout. An exit code other than ``expect``
    (one code, or any of several) raises RuntimeError with the output's last lines."""
    expected = (expect,) if isinstance(expect, int) else tuple(expect)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode not in expected:
        raise command_failed(command, proc.returncode, proc.stdout + proc.stderr, expected)
    return seconds, proc.stdout


def command_failed(
    command: Sequence[str], code: int, output: str, expected: Sequence[int] = (0,)
) -> RuntimeError:
    """The error of ``command`` exiting ``code`` instead of one of ``expected``, as ``run``
    raises it: the command (shortened past 12 words), the codes and the last 15 lines of
    ``output``."""
    shown = " ".join(command if len(command) <= 12 else [*command[:8], "..."])
    codes = " or ".join(map(str, expected))
    tail = "\n".join(output.strip().splitlines()[-15:])
    return RuntimeError(f"{shown} exited {code} (expected {codes}):\n{tail}")


class Finished(NamedTuple):
    """A child process that ran to its end (see ``run_timed``)."""

    command: list[str]
    code: int
    stdout: str
    stderr: str
    wall: float
    """Wall-clock seconds, from start to reaped."""
    user: float
    system: float

    @property
    def cpu(self) -> float:
        """CPU seconds of the whole process: user + system."""
        return self.user + self.system


def run_timed(
    command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Finished:
    """Run ``command`` to its end with its output captured (in ``env`` and ``cwd`` if
    given): its exit code, output, wall-clock seconds and CPU seconds. The CPU time is the
    difference of ``getrusage(RUSAGE_CHILDREN)`` across the run: the child's user and system
    time, and that of any process it waited for. No exit code is an error here; the caller
    judges the result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        command, capture_output=True, text=True, errors="replace", check=False, env=env, cwd=cwd
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Finished(
        list(command),
        proc.returncode,
        proc.stdout,
        proc.stderr,
        wall,
        after.ru_utime - before.ru_utime,
        after.ru_stime - before.ru_stime,
    )


def proc_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1],
    utime [11], stime [12])."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (utime + stime, all its threads) that process ``pid`` has used so far,
    from /proc/<pid>/stat."""
    fields = proc_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The machine's load average, for runs taken while other work shares it."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


# -- figures ----------------------------------------------------------------------------


def ms(seconds: float, digits: int = 1) -> str:
    """``seconds`` in milliseconds, with ``digits`` decimals: ``12.3 ms``."""
    return f"{seconds * 1000:.{digits}f} ms"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``pct`` % of the values
    at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    """How a target is reported: MET or MISSED."""
    return "MET" if ok else "MISSED"


def top_functions(source: str | cProfile.Profile, lines: int, key: str = "cumulative") -> str:
    """The ``lines`` functions first by ``key`` (a ``pstats`` sort key) in a profile (a
    ``cProfile.Profile`` or a file it wrote), as pstats prints them, indented by six."""
    out = io.StringIO()
    pstats.Stats(source, stream=out).strip_dirs().sort_stats(key).print_stats(lines)
    body = out.getvalue()
    start = body.find("   ncalls")
    return "\n".join("      " + line for line in body[start:].rstrip().splitlines())


# -- what reconciler sends to PostgreSQL ------------------------------------------------

SCAN = re.compile(r'^SELECT count\(\*\).* FROM ("(?:[^"]|"")+"\."(?:[^"]|"")+")(?: AS t)?$')
"""One query over a whole table, as the census and the live facts of the lint write it:
``SELECT count(*), ... FROM "schema"."table"``, with ``AS t`` when the census also checksums
the rows; group 1 is the quoted name. Matched against the text with its whitespace folded."""


def scanned_table(text: str) -> str | None:
    """The quoted ``"schema"."table"`` that statement ``text`` scans whole, if it is one."""
    match = SCAN.match(" ".join(text.split()))
    return match.group(1) if match else None


class QueryLog:
    """The statements reconciler sent through ``PostgresDatabase.query`` while
    ``counting(self)`` was on: how many of each kind, the seconds spent on each kind, every
    text, and how often each table was scanned whole. This class knows two kinds, ``scan``
    and ``other``; a benchmark subclasses it and overrides ``classify`` to tell apart the
    statements it checks, calling this one for scans."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.scans: Counter[str] = Counter()
        self.statements: list[str] = []

    def classify(self, text: str) -> str:
        """The kind of statement ``text``; a scan also counts its table in ``scans``."""
        table = scanned_table(text)
        if table is None:
            return "other"
        self.scans[table] += 1
        return "scan"

    def record(self, text: str) -> str:
        """Count statement ``text`` (before it is sent); its kind."""
        kind = self.classify(text)
        self.kinds[kind] += 1
        self.statements.append(text)
        return kind


@contextmanager
def counting(log: QueryLog) -> Iterator[QueryLog]:
    """While inside, every ``PostgresDatabase.query`` is recorded in ``log`` and its time
    added to its kind; the original method is put back on leaving."""
    from reconciler.db.postgres import PostgresDatabase

    original = PostgresDatabase.query

    def query(self: Any, text: str, params: Sequence[Any] = ()) -> list[Any]:
        kind = log.record(text)
        began = time.perf_counter()
        try:
            return original(self, text, params)
        finally:
            log.seconds[kind] += time.perf_counter() - began

    PostgresDatabase.query = query  # type: ignore[method-assign,assignment]
    try:
        yield log
    finally:
        PostgresDatabase.query = original  # type: ignore[method-assign]


# -- policies for a generated Prisma history --------------------------------------------

REVIEWED = "reviewed: the table holds only reference data"
"""The reason the approvals of ``approvals_for`` give, as a reviewer would write it."""


def write_policy(
    path: Path,
    dsn: str,
    migrations: Path,
    approvals: Sequence[dict[str, Any]] = (),
    revision: str | None = None,
) -> None:
    """A policy with one development target ``bench`` on ``dsn``, the Prisma history in
    ``migrations`` (up to ``revision`` if given), a SQLite ledger beside the policy file, the
    default safety settings, and ``approvals`` (from ``approvals_for``) as a team would have
    committed them after review."""
    lines = [
        "ledger: sqlite:///ledger.db",
        "targets:",
        "  - name: bench",
        "    environment: development",
        f"    database: {dsn}",
        "    migrations:",
        "      layout: prisma",
        f"      path: {migrations.relative_to(path.parent)}",
    ]
    if revision is not None:
        lines.append(f"      revision: {revision}")
    if approvals:
        lines += ["    safety:", "      approvals:"]
        for approval in approvals:
            lines += [
                f"        - migration: {approval['migration']}",
                f"          checksum: {approval['checksum']}",
                f"          rules: [{', '.join(approval['rules'])}]",
                f"          reason: {json.dumps(approval.get('reason', REVIEWED))}",
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def approvals_for(policy: Path) -> list[dict[str, Any]]:
    """Approvals for every step the gate stops on (blocked, or waiting for the contract
    grace period) when the policy's first target is planned now, as reviewers would commit
    them. Raises RuntimeError when the plan is blocked or a migration does not parse."""
    from reconciler.act import plan_target
    from reconciler.policy import load_policy

    plan = plan_target(load_policy(policy).targets[0])
    if plan.blocker:
        raise RuntimeError(f"the plan is blocked: {plan.blocker.message}")
    approvals = []
    for step in plan.steps:
        rules = sorted({f.rule for f in (*step.verdict.blocking, *step.verdict.waiting)})
        if "syntax-error" in rules:
            raise RuntimeError(f"{step.migration.id}: the generated SQL does not parse")
        if rules:
            approvals.append(
                {
                    "migration": step.migration.id,
                    "checksum": step.migration.checksum[:12],
                    "rules": rules,
                    "reason": REVIEWED,
                }
            )
    return approvals


def approve_all(
    policy: Path, dsn: str, migrations: Path, revision: str | None = None
) -> list[dict[str, Any]]:
    """Write the policy of ``write_policy`` with the approvals its plan needs to apply
    without stopping, and check that it no longer stops; the approvals."""
    write_policy(policy, dsn, migrations, revision=revision)
    approvals = approvals_for(policy)
    write_policy(policy, dsn, migrations, approvals, revision)
    if approvals_for(policy):
        raise RuntimeError("steps still stop after approval; see `reconciler plan`")
    return approvals


# -- options and main -------------------------------------------------------------------


def add_server_option(parser: argparse.ArgumentParser) -> None:
    """``--server URL``: ``$BENCH_POSTGRES``, else ``DEFAULT_SERVER``."""
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_POSTGRES", DEFAULT_SERVER),
        help="PostgreSQL server URL without a database ($BENCH_POSTGRES; default %(default)s)",
    )


def add_profile_options(parser: argparse.ArgumentParser, what: str, lines: int) -> None:
    """``--profile`` (its help says ``what`` it profiles) and ``--profile-lines N`` (default
    ``lines``)."""
    parser.add_argument("--profile", action="store_true", help=what)
    parser.add_argument("--profile-lines", type=int, default=lines, help="functions to show")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json FILE``: where ``run_benchmarks`` also writes the results."""
    parser.add_argument("--json", type=Path, help="also write the results to this file")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)


def run_benchmarks(
    prog: str,
    body: Callable[[dict[str, Any]], None],
    *,
    cleanup: Callable[[], None],
    json_file: Path | None = None,
    errors: tuple[type[Exception], ...] = (RuntimeError,),
    interrupted: str | None = None,
) -> int:
    """The frame of a benchmark's ``main``: ``body(results)`` fills ``results`` (which
    already holds the date, the CPU count and the Python version), then ``cleanup()`` runs
    however it ended, and the results go to ``json_file`` if given. A SIGTERM unwinds
    through ``cleanup`` as an exit with code 143. One of ``errors`` is printed as
    ``prog: error: ...`` and exits 1; Ctrl-C, when ``interrupted`` says what happens then,
    is printed as ``prog: interrupted; <interrupted>`` and exits 130 (otherwise it is
    raised). The exit code: 0 when ``body`` returned."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    try:
        body(results)
    except errors as exc:
        print(f"\n{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(f"\n{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130
    finally:
        cleanup()
    if json_file:
        json_file.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return 0
