"""Start-up benchmarks: the CPU time of whole ``reconciler`` processes.

    python bench/bench_startup.py                  # all three goals
    python bench/bench_startup.py --only help      # (1) only
    python bench/bench_startup.py --only lint      # (2) only (needs squawk: pip install squawk-cli)
    python bench/bench_startup.py --only plan      # (3) only

Every figure is whole-process CPU time (user + system of the child), the median of
``--repeats`` rounds after a warm-up round, all on the interpreter running this script:

(1) ``reconciler --help`` and ``reconciler --version``: at most 8x ``python -c pass``.
(2) ``reconciler lint`` on the 163 ``migration.sql`` files of a real Prisma history (documenso
    at ``DOCUMENSO_COMMIT``): at most 3x ``squawk`` linting the same files.
(3) ``reconciler plan -c config.example.yaml``, the embedded SQLite default (a database file
    not yet created; nothing is changed): at most 0.4 s.

(2) and (3) are each measured twice: cold (the parse cache emptied before every run, so
every migration is parsed and its entry written) and warm (every entry already stored, as
in a pre-commit hook's second commit). (2) also runs the hook's everyday case, "one new":
the 163 stored and one migration the cache has never seen (a nullable column added, its
name new at every run), listed last. The cache lives under bench/work/startup/, never in
the user's own.

For reference it also times ``python -c "import reconciler.cli"``, and it lists the modules
each command imports (``PYTHONPROFILEIMPORTTIME=1``). No database server is needed. Work files
go to bench/work/startup/. A missed target is reported; the exit code is 1 only when a
command fails (an unexpected exit code, a traceback, or no output).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from common import (
    Finished,
    add_json_option,
    beside_python,
    command_failed,
    load_average,
    ms,
    reconciler_command,
    run,
    run_benchmarks,
    run_timed,
    verdict,
)
from generate_history import write_history

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / "work" / "startup"

HELP_TARGET = 8.0
"""(1): ``--help`` and ``--version`` at most this many times ``python -c pass``."""
LINT_TARGET = 3.0
"""(2): ``reconciler lint`` at most this many times squawk on the same files."""
PLAN_TARGET = 0.4
"""(3): ``reconciler plan`` on the SQLite example at most this many CPU seconds."""
LINT_COUNT = 163
"""The size of the history the lint goal names."""

DOCUMENSO_URL = "https://github.com/documenso/documenso.git"
DOCUMENSO_COMMIT = "75330166cc00b29c14399bc2e391e4b4d8080c00"
"""documenso v2.17.0: ``packages/prisma/migrations`` holds 163 migrations (138 KiB of SQL,
PostgreSQL), last changed by 04f6e761 (2026-06-23)."""
DOCUMENSO_PATH = "packages/prisma/migrations"
DEFAULT_MIRROR = Path("/work/.mirror/documenso+documenso/repo")
"""Where a git copy of documenso is looked for, unless ``--mirror`` or
``$BENCH_DOCUMENSO_MIRROR`` says otherwise: any clone, bare or not, that has the commit."""

HEAVY = (
    "psycopg",
    "sqlalchemy",
    "alembic",
    "httpx",
    "apscheduler",
    "prometheus_client",
    "pydantic",
)
"""The packages the issue asks about: are they loaded after each command?"""

PLAN_CONFIG = "config.example.yaml"
"""The policy of (3), relative to the repository: its database and ledger default to SQLite
files under ``var/`` beside it."""

TRACEBACK = "Traceback (most recent call last)"


# -- the children ------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment of every measured process: this one's, without what would change what
    they do or measure. ``PYTHONDONTWRITEBYTECODE`` goes, so that a module without an
    up-to-date ``.pyc`` gets one in the warm-up, as in a real install; ``DATABASE_URL`` goes,
    so that the example policy keeps its embedded SQLite default; ``RECONCILER_*``,
    ``SQUAWK_*`` and ``GITHUB_*`` go, so that neither tool reads other settings."""
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME", "DATABASE_URL")
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("RECONCILER_", "SQUAWK_", "GITHUB_"))
    }


@dataclass
class Case:
    """One command measured in every round."""

    label: str
    """How the tables name it."""
    short: str
    """How the line of each round names it."""
    command: list[str]
    expect: tuple[int, ...] = (0,)
    """The exit codes of a run that did not fail."""
    output: bool = True
    """Whether it must print something on stdout."""
    cwd: Path = WORK
    check: Callable[[Finished], dict[str, Any]] | None = None
    """Reads the output of a run; raises RuntimeError when it is not what a run that
    worked prints. What it returns (of the last run) goes into the results."""
    env: dict[str, str] = field(default_factory=dict)
    """Set for this case only, over the common environment."""
    before: Callable[[], None] | None = None
    """Run before each of its runs, untimed (a cold case empties its cache)."""


def cache_case(case: Case, name: str, cold: bool) -> Case:
    """``case`` with a parse cache of its own, ``WORK/cache-<name>``: emptied before each run
    when ``cold``; else filled by the warm-up round and then only read."""
    folder = WORK / f"cache-{name}"
    shutil.rmtree(folder, ignore_errors=True)

    def empty() -> None:
        shutil.rmtree(folder, ignore_errors=True)

    return replace(
        case,
        label=f"{case.label} ({'cold' if cold else 'warm'})",
        short=f"{case.short}-{'cold' if cold else 'warm'}",
        env={**case.env, "RECONCILER_CACHE_DIR": str(folder)},
        before=empty if cold else None,
    )


def judged(case: Case, done: Finished) -> dict[str, Any]:
    """What ``case.check`` reads in ``done``. RuntimeError when it exited otherwise than
    ``case.expect``, printed a traceback, printed nothing while it should, or the check
    refused its output: the command crashed or did not do its job."""
    problem = None
    if done.code not in case.expect:
        problem = "an unexpected exit code"
    elif TRACEBACK in done.stderr or TRACEBACK in done.stdout:
        problem = "a traceback"
    elif case.output and not done.stdout.strip():
        problem = "no output"
    if problem:
        error = command_failed(done.command, done.code, done.stdout + done.stderr, case.expect)
        raise RuntimeError(f"{case.label}: {problem}. {error}")
    return case.check(done) if case.check else {}


def measure(cases: Sequence[Case], repeats: int, env: dict[str, str]) -> dict[str, Any]:
    """A warm-up round, then ``repeats`` rounds, each running every case once; the order is
    reversed every other round. Per case: CPU and wall seconds of each measured run, their
    medians, min and max, the exit codes, and what its check found."""
    runs: dict[str, list[Finished]] = defaultdict(list)
    found: dict[str, dict[str, Any]] = {}
    for index in range(repeats + 1):
        order = list(cases) if index % 2 == 0 else list(reversed(cases))
        this_round: dict[str, Finished] = {}
        for case in order:
            if case.before is not None:
                case.before()
            done = run_timed(case.command, env={**env, **case.env}, cwd=case.cwd)
            found[case.label] = judged(case, done)
            this_round[case.label] = done
            if index:
                runs[case.label].append(done)
        label = "warm-up" if index == 0 else f"run {index}"
        figures = "   ".join(f"{c.short} {ms(this_round[c.label].cpu, 0)}" for c in cases)
        print(f"    {label:8} {figures}")
    out: dict[str, Any] = {}
    for case in cases:
        done_runs = runs[case.label]
        cpu = [d.cpu for d in done_runs]
        out[case.label] = {
            "command": case.command,
            "cwd": str(case.cwd),
            "cpu": cpu,
            "user": [d.user for d in done_runs],
            "system": [d.system for d in done_runs],
            "wall": [d.wall for d in done_runs],
            "exit_codes": sorted({d.code for d in done_runs}),
            "median": statistics.median(cpu),
            "min": min(cpu),
            "max": max(cpu),
            "wall_median": statistics.median(d.wall for d in done_runs),
            **found.get(case.label, {}),
        }
    return out


def imported_modules(case: Case, env: dict[str, str]) -> dict[str, Any]:
    """One more run of ``case``, with ``PYTHONPROFILEIMPORTTIME=1``: every module it imported
    (those the interpreter loads before ``site`` aside), whether each of ``HEAVY`` is among
    them, and the packages that took longest to import, by the self time of their modules
    summed (one run, with the profiler's own overhead: a guide, not a measurement)."""
    if case.before is not None:
        case.before()
    profiled = {**env, **case.env, "PYTHONPROFILEIMPORTTIME": "1"}
    done = run_timed(case.command, env=profiled, cwd=case.cwd)
    judged(case, done)
    names: list[str] = []
    self_us: dict[str, int] = defaultdict(int)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header
        name = fields[2].strip()
        names.append(name)
        top = name.split(".")[0]
        group = "(standard library)" if top in sys.stdlib_module_names else top
        self_us[group] += int(fields[0])
    if not names:
        raise RuntimeError(f"{case.label}: PYTHONPROFILEIMPORTTIME=1 reported no imports")
    loaded = {heavy: any(n == heavy or n.startswith(heavy + ".") for n in names) for heavy in HEAVY}
    packages = sorted(self_us.items(), key=lambda item: -item[1])
    return {
        "command": case.command,
        "modules": len(names),
        "loaded": loaded,
        "import_ms_by_package": {name: us / 1000 for name, us in packages},
    }


def print_modules(what: str, found: dict[str, Any], top: int = 8) -> None:
    yes = [name for name, on in found["loaded"].items() if on]
    no = [name for name, on in found["loaded"].items() if not on]
    print(f"    after `{what}`: {found['modules']} modules imported")
    print(f"      loaded:     {', '.join(yes) or '(none of them)'}")
    print(f"      not loaded: {', '.join(no) or '(none of them)'}")
    heaviest = list(found["import_ms_by_package"].items())[:top]
    listed = ", ".join(f"{name} {value:.0f}" for name, value in heaviest)
    print(f"      longest imports (ms, -X importtime, one run): {listed}")


# -- tables ------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    figures: dict[str, Any]
    ratio: float | None = None
    target: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        f = self.figures
        return [
            self.label,
            ms(f["median"]),
            ms(f["min"]),
            ms(f["max"]),
            ms(f["wall_median"]),
            f"{self.ratio:.2f}x" if self.ratio is not None else "",
            self.target,
            "" if self.met is None else verdict(self.met),
        ]


def print_table(rows: Sequence[Row], ratio_to: str) -> None:
    """The figures of one goal: CPU median, min and max, the wall-clock median, the ratio of
    the CPU medians to ``ratio_to``, the target and the verdict."""
    header = ["command", "CPU median", "min", "max", "wall", f"/ {ratio_to}", "target", ""]
    table = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        cells = [
            cell.ljust(width) if i in (0, 6, 7) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        print("    " + "  ".join(cells).rstrip())


def row_json(row: Row) -> dict[str, Any]:
    return {
        "median": row.figures["median"],
        "min": row.figures["min"],
        "max": row.figures["max"],
        "wall_median": row.figures["wall_median"],
        "ratio": row.ratio,
        "target": row.target or None,
        "verdict": None if row.met is None else verdict(row.met),
    }


# -- the history of (2) ------------------------------------------------------------------


@dataclass
class History:
    folder: Path
    files: list[Path]
    source: str
    """``documenso``, ``given`` (``--history``) or ``generated``."""
    description: str


def migration_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/migration.sql"))


def export_documenso(mirror: Path, commit: str, out: Path) -> list[Path]:
    """Write ``DOCUMENSO_PATH`` as it is at ``commit`` in the git copy ``mirror`` into
    ``out`` (replaced); its ``migration.sql`` files."""
    git = ["git", "-C", str(mirror)]
    listing = subprocess.run(
        [*git, "ls-tree", "-r", "-z", commit, "--", DOCUMENSO_PATH],
        capture_output=True,
        check=True,
    ).stdout
    entries = []
    for entry in filter(None, listing.split(b"\0")):
        meta, name = entry.split(b"\t", 1)
        _mode, object_kind, object_sha = meta.split()
        if object_kind == b"blob":
            entries.append((object_sha.decode(), name.decode()))
    if not entries:
        raise RuntimeError(f"{mirror} has no {DOCUMENSO_PATH} at {commit}")
    batch = subprocess.run(
        [*git, "cat-file", "--batch"],
        input="".join(f"{sha}\n" for sha, _ in entries).encode(),
        capture_output=True,
        check=True,
    ).stdout
    if out.exists():
        shutil.rmtree(out)
    offset = 0
    for sha, path in entries:
        end = batch.index(b"\n", offset)
        got, kind, size = batch[offset:end].decode().split()
        if got != sha or kind != "blob":
            raise RuntimeError(f"git cat-file returned {got} {kind} for {sha} ({path})")
        body = batch[end + 1 : end + 1 + int(size)]
        offset = end + 1 + int(size) + 1
        target = out / Path(path).relative_to(DOCUMENSO_PATH)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    return migration_files(out)


def has_commit(mirror: Path, commit: str) -> bool:
    probe = subprocess.run(
        ["git", "-C", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def resolve_history(args: argparse.Namespace) -> History:
    """The history of (2): ``--history DIR`` if given; else documenso's, exported from the
    git copy at ``--mirror``; else, saying why and how to get documenso's, the generated one."""
    if args.history is not None:
        folder = args.history.resolve()
        files = migration_files(folder)
        if not files:
            raise RuntimeError(f"--history {args.history}: no */migration.sql in it")
        return History(folder, files, "given", f"{folder} (--history)")
    mirror = args.mirror
    short = DOCUMENSO_COMMIT[:12]
    why = None
    if not mirror.is_dir():
        why = f"there is no git copy of documenso at {mirror}"
    elif not has_commit(mirror, DOCUMENSO_COMMIT):
        why = f"the git copy at {mirror} does not have commit {short}"
    if why is None:
        out = WORK / f"documenso-{short}" / "migrations"
        files = export_documenso(mirror, DOCUMENSO_COMMIT, out)
        where = out.relative_to(REPO)
        text = f"documenso {DOCUMENSO_PATH} at {DOCUMENSO_COMMIT}, exported to {where}"
        return History(out, files, "documenso", text)
    print(
        f"    NOTE: documenso's history is not available: {why}.\n"
        f"    To get it: git clone --bare {DOCUMENSO_URL} DIR\n"
        f"    (or, in a clone without it: git -C DIR fetch origin {DOCUMENSO_COMMIT}),\n"
        f"    then run with --mirror DIR or $BENCH_DOCUMENSO_MIRROR=DIR; or pass --history\n"
        f"    with {DOCUMENSO_PATH} of a checkout at that commit.\n"
        f"    Falling back to `bench/generate_history.py --count {LINT_COUNT}`: a generated\n"
        f"    history, not the real one the goal names."
    )
    out = WORK / f"generated-{LINT_COUNT}" / "migrations"
    files = write_history(out, LINT_COUNT)
    text = (
        f"generated: generate_history.py --count {LINT_COUNT} (seed 1), in {out.relative_to(REPO)}"
    )
    return History(out, files, "generated", text)


# -- the goals ---------------------------------------------------------------------------


def bare_python() -> Case:
    return Case("python -c pass", "pass", [sys.executable, "-c", "pass"], output=False)


def goal_help(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    rec = reconciler_command()
    bare = bare_python()
    cases = [
        bare,
        Case("reconciler --help", "--help", [*rec, "--help"]),
        Case("reconciler --version", "--version", [*rec, "--version"]),
        Case(
            'python -c "import reconciler.cli"',
            "import",
            [sys.executable, "-c", "import reconciler.cli"],
            output=False,
        ),
    ]
    print(f"\n(1) help and version: at most {HELP_TARGET:g}x `python -c pass`")
    figures = measure(cases, args.repeats, env)
    base = figures[bare.label]["median"]
    rows = [Row(bare.label, figures[bare.label], 1.0, "baseline")]
    for case in cases[1:3]:
        ratio = figures[case.label]["median"] / base
        rows.append(
            Row(
                case.label, figures[case.label], ratio, f"<= {HELP_TARGET:g}x", ratio <= HELP_TARGET
            )
        )
    reference = cases[3].label
    rows.append(
        Row(reference, figures[reference], figures[reference]["median"] / base, "reference")
    )
    print()
    print_table(rows, "python -c pass")
    modules = imported_modules(cases[1], env)
    print_modules("reconciler --help", modules)
    return {
        "figures": figures,
        "rows": {row.label: row_json(row) for row in rows},
        "met": all(row.met for row in rows if row.met is not None),
        "modules": modules,
    }


def check_squawk(done: Finished) -> dict[str, Any]:
    try:
        violations = json.loads(done.stdout)
    except ValueError as exc:
        raise RuntimeError(f"squawk printed no JSON ({exc}): {done.stdout[:200]!r}") from exc
    if not isinstance(violations, list):
        raise RuntimeError(f"squawk printed {type(violations).__name__}, not a list")
    return {
        "findings": len(violations),
        "files_with_findings": len({v.get("file") for v in violations}),
    }


def lint_checker(count: int) -> Callable[[Finished], dict[str, Any]]:
    def check(done: Finished) -> dict[str, Any]:
        try:
            report = json.loads(done.stdout)
            findings = report["findings"]
            linted = report["migrations"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"reconciler lint printed no report ({exc})") from exc
        if linted != count:
            raise RuntimeError(f"reconciler lint read {linted} migrations of the {count} given")
        return {
            "findings": len(findings),
            "blocking": sum(1 for f in findings if f.get("blocking")),
            "migrations": linted,
        }

    return check


def goal_lint(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    squawk = args.squawk or beside_python("squawk", "pip install squawk-cli")
    version = run([squawk, "--version"])[1].strip()
    print(f"\n(2) lint: at most {LINT_TARGET:g}x squawk on the same files")
    history = resolve_history(args)
    size = sum(f.stat().st_size for f in history.files)
    print(f"    history: {history.description}")
    print(f"    {len(history.files)} migration.sql files, {size / 1024:.0f} KiB of SQL")
    if len(history.files) != LINT_COUNT:
        count = len(history.files)
        print(f"    note: the goal names {LINT_COUNT} migrations; this history has {count}")
    files = [str(f) for f in history.files]
    config = WORK / "squawk.toml"
    config.write_text("", encoding="utf-8")
    squawk_case = Case(
        "squawk",
        "squawk",
        [
            squawk,
            "--config",
            str(config),
            "--reporter",
            "json",
            "--pg-version",
            args.pg_version,
            "--assume-in-transaction",
            *files,
        ],
        expect=(0, 1),
        check=check_squawk,
    )
    lint = Case(
        "reconciler lint",
        "lint",
        [*reconciler_command(), "lint", "--format", "json", *files],
        expect=(0, 1),
        check=lint_checker(len(files)),
    )
    cold, warm = cache_case(lint, "lint-cold", cold=True), cache_case(lint, "lint-warm", False)
    new = one_new(lint, history, len(files))
    print(f"    {version}: {' '.join(squawk_case.command[1:8])} <{len(files)} files>")
    print(f"    reconciler: reconciler lint --format json <the same {len(files)} files>")
    print(f"    one new: the same files and {new.command[-1]} (its column new at every run)")
    figures = measure([squawk_case, cold, warm, new], args.repeats, env)
    base = figures["squawk"]["median"]
    ratios = {case.label: figures[case.label]["median"] / base for case in (cold, warm, new)}
    rows = [
        Row("squawk", figures["squawk"], 1.0, "baseline"),
        *(
            Row(
                label,
                figures[label],
                ratio,
                f"<= {LINT_TARGET:g}x",
                ratio <= LINT_TARGET,
            )
            for label, ratio in ratios.items()
        ),
    ]
    print()
    print_table(rows, "squawk")
    sq, rc, rw = figures["squawk"], figures[cold.label], figures[warm.label]
    if (rc["findings"], rc["blocking"]) != (rw["findings"], rw["blocking"]):
        raise RuntimeError(f"lint found {rc['findings']} cold and {rw['findings']} warm")
    print(
        f"    findings: squawk {sq['findings']} in {sq['files_with_findings']} files "
        f"(exit {'/'.join(map(str, sq['exit_codes']))}); reconciler {rc['findings']}, "
        f"{rc['blocking']} blocking (exit {'/'.join(map(str, rc['exit_codes']))}), "
        "the same cold and warm"
    )
    modules = imported_modules(cold, env)
    print_modules("reconciler lint <files>, cold", modules)
    warm_modules = imported_modules(warm, env)
    print_modules("reconciler lint <files>, warm", warm_modules)
    return {
        "squawk_version": version,
        "history": {
            "source": history.source,
            "description": history.description,
            "folder": str(history.folder),
            "commit": DOCUMENSO_COMMIT if history.source == "documenso" else None,
            "migrations": len(history.files),
            "sql_bytes": size,
        },
        "figures": figures,
        "rows": {row.label: row_json(row) for row in rows},
        "met": {
            "cold": ratios[cold.label] <= LINT_TARGET,
            "warm": ratios[warm.label] <= LINT_TARGET,
            "one new": ratios[new.label] <= LINT_TARGET,
        },
        "modules": modules,
        "modules_warm": warm_modules,
        "modules_one_new": imported_modules(new, env),
    }


def one_new(lint: Case, history: History, count: int) -> Case:
    """``lint`` with the cache of the warm case's kind and one more migration, in a folder
    of its own beside the history (its ``migration_lock.toml`` copied): before each run its
    SQL adds a column never named before, so the cache never holds it."""
    folder = WORK / "one-new" / "migrations"
    shutil.rmtree(folder.parent, ignore_errors=True)
    path = folder / "29991231000000_add_note" / "migration.sql"
    path.parent.mkdir(parents=True)
    lock = history.folder / "migration_lock.toml"
    if lock.is_file():
        shutil.copyfile(lock, folder / "migration_lock.toml")
    runs = iter(range(1_000_000))

    def write() -> None:
        path.write_text(f'ALTER TABLE "User" ADD COLUMN "note_{next(runs)}" TEXT;\n', "utf-8")

    write()
    case = cache_case(lint, "lint-one-new", cold=False)
    return replace(
        case,
        label="reconciler lint (one new)",
        short="lint-one-new",
        command=[*lint.command, str(path)],
        check=lint_checker(count + 1),
        before=write,
    )


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time (ns)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def goal_plan(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    var = REPO / "var"
    print(f"\n(3) plan on the SQLite example: at most {ms(PLAN_TARGET, 0)} of CPU")
    before = snapshot(var)
    present = [name for name in ("shop.db", "reconciler.db") if name in before]
    for name in present:
        print(
            f"    note: var/{name} exists already; the goal names a plan against files not"
            f" yet created"
        )

    def check_plan(done: Finished) -> dict[str, Any]:
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        return {"summary": lines[-1].strip()}

    bare = bare_python()
    plan = Case(
        f"reconciler plan -c {PLAN_CONFIG}",
        "plan",
        [*reconciler_command(), "plan", "-c", PLAN_CONFIG],
        expect=(0, 2),
        cwd=REPO,
        check=check_plan,
    )
    cold, warm = cache_case(plan, "plan-cold", cold=True), cache_case(plan, "plan-warm", False)
    print(f"    in {REPO}, without $DATABASE_URL: the database is sqlite:///var/shop.db")
    figures = measure([bare, cold, warm], args.repeats, env)
    base = figures[bare.label]["median"]
    medians = {case.label: figures[case.label]["median"] for case in (cold, warm)}
    rows = [
        Row(bare.label, figures[bare.label], 1.0, "reference"),
        *(
            Row(
                label,
                figures[label],
                median / base,
                f"<= {ms(PLAN_TARGET, 0)}",
                median <= PLAN_TARGET,
            )
            for label, median in medians.items()
        ),
    ]
    print()
    print_table(rows, "python -c pass")
    if figures[cold.label]["summary"] != figures[warm.label]["summary"]:
        raise RuntimeError("plan said something else cold and warm")
    print(
        f"    plan: {figures[cold.label]['summary']} "
        f"(exit {'/'.join(map(str, figures[cold.label]['exit_codes']))}), the same cold and warm"
    )
    modules = imported_modules(cold, env)
    print_modules(f"reconciler plan -c {PLAN_CONFIG}, cold", modules)
    warm_modules = imported_modules(warm, env)
    print_modules(f"reconciler plan -c {PLAN_CONFIG}, warm", warm_modules)
    after = snapshot(var)
    if after != before:
        changed = sorted(
            set(after) ^ set(before) | {k for k in after if after.get(k) != before.get(k)}
        )
        raise RuntimeError(f"reconciler plan changed files under {var}: {', '.join(changed)}")
    return {
        "figures": figures,
        "rows": {row.label: row_json(row) for row in rows},
        "met": {
            "cold": medians[cold.label] <= PLAN_TARGET,
            "warm": medians[warm.label] <= PLAN_TARGET,
        },
        "modules": modules,
        "modules_warm": warm_modules,
    }


# -- main --------------------------------------------------------------------------------


def prepare(env: dict[str, str]) -> dict[str, Any]:
    """Byte-compile reconciler's own modules (a real install has their ``.pyc``; the
    dependencies were compiled when installed); what is being measured."""
    spec = importlib.util.find_spec("reconciler")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("reconciler is not installed (pip install -e '.[dev]')")
    package = Path(next(iter(spec.submodule_search_locations)))
    run([sys.executable, "-m", "compileall", "-q", str(package)], env=env)
    rec = reconciler_command()
    with open(rec[0], "rb") as script:
        first = script.readline().decode(errors="replace").strip()
    interpreter = first.removeprefix("#!").strip()
    version = run([*rec, "--version"], env=env)[1].strip()
    head = run(["git", "-C", str(REPO), "rev-parse", "HEAD"])[1].strip()
    dirty = bool(run(["git", "-C", str(REPO), "status", "--porcelain", "--", "reconciler"])[1])
    print("start-up: whole-process CPU time (user + system), median of the measured runs")
    print(f"    python {sys.executable} ({sys.version.split()[0]}); {version}")
    print(f"    code: commit {head[:12]}{' with uncommitted changes' if dirty else ''}")
    print(f"    {load_average()}")
    print(f"    bytecode: compiled {package} (compileall); the children run without")
    print("      PYTHONDONTWRITEBYTECODE, so the warm-up writes any .pyc still missing")
    if interpreter != sys.executable:
        print(f"    note: {rec[0]} starts {interpreter}, not {sys.executable}")
    return {
        "interpreter": sys.executable,
        "reconciler_script": rec[0],
        "script_interpreter": interpreter,
        "reconciler_version": version,
        "commit": head,
        "uncommitted_changes": dirty,
        "load_average_start": os.getloadavg(),
    }


def print_summary(results: dict[str, Any]) -> None:
    """Whether each package of ``HEAVY`` was loaded, command by command."""
    columns = [
        (name, results[goal][key])
        for goal, key, name in (
            ("help", "modules", "--help"),
            ("lint", "modules", "lint"),
            ("lint", "modules_warm", "warm"),
            ("lint", "modules_one_new", "one new"),
            ("plan", "modules", "plan"),
            ("plan", "modules_warm", "warm"),
        )
        if goal in results
    ]
    print("\nloaded after each command (yes = in sys.modules when it ended):")
    print("    " + " " * 18 + "".join(f"{name:>8}" for name, _ in columns))
    for heavy in HEAVY:
        cells = "".join(f"{'yes' if m['loaded'][heavy] else 'no':>8}" for _, m in columns)
        print(f"    {heavy:<18}{cells}")
    print("    " + "modules imported".ljust(18) + "".join(f"{m['modules']:>8}" for _, m in columns))
    verdicts = [
        f"({number}) {goal} {_verdicts(results[goal]['met'])}"
        for number, goal in enumerate(("help", "lint", "plan"), 1)
        if goal in results
    ]
    print("\n" + "; ".join(verdicts))


def _verdicts(met: bool | dict[str, bool]) -> str:
    if isinstance(met, bool):
        return verdict(met)
    return ", ".join(f"{verdict(value)} {name}" for name, value in met.items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Start-up benchmarks: CPU time of whole reconciler processes."
    )
    parser.add_argument("--only", choices=["help", "lint", "plan"], help="run one goal")
    parser.add_argument("--repeats", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument(
        "--history",
        type=Path,
        help="(2) a Prisma migrations folder to lint instead of documenso's",
    )
    parser.add_argument(
        "--mirror",
        type=Path,
        default=Path(os.environ.get("BENCH_DOCUMENSO_MIRROR", DEFAULT_MIRROR)),
        help="(2) a git copy of documenso ($BENCH_DOCUMENSO_MIRROR; default %(default)s)",
    )
    parser.add_argument("--squawk", help="(2) squawk binary (default: beside the interpreter)")
    parser.add_argument("--pg-version", default="15.0", help="(2) squawk --pg-version (15.0)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    env = child_env()
    goals = {"help": goal_help, "lint": goal_lint, "plan": goal_plan}

    def run_all(results: dict[str, Any]) -> None:
        results["setup"] = prepare(env)
        for name, goal in goals.items():
            if args.only in (None, name):
                results[name] = goal(args, env)
        results["load_average_end"] = os.getloadavg()
        print_summary(results)

    return run_benchmarks(
        "bench_startup",
        run_all,
        cleanup=lambda: None,
        json_file=args.json,
        errors=(RuntimeError, OSError, subprocess.CalledProcessError),
    )


if __name__ == "__main__":
    sys.exit(main())
