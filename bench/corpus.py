"""A corpus of real migration histories, and four figures for each: does it reach head on an
empty database, how long does it take against the plain tool, how many blocking findings are
false alarms, and is every migration that loses data flagged.

The histories (pinned below) are rebuilt into ``bench/work/corpus/`` (git-ignored); nothing of
them is vendored into this repository:

- Prisma (PostgreSQL provider): the ``migrations`` folder of a public GitHub repository at a
  named commit. It is read from ``/work/.mirror/<owner>+<name>/repo`` when that bare mirror
  holds the commit, else fetched with ``git init`` + ``git fetch --depth 1 <url> <commit>``
  into ``bench/work/corpus/git/``, and extracted with ``git archive``. Formbricks is taken
  up to 2024-10-17: its next migration needs the pgvector extension (not part of a plain
  PostgreSQL), and from 2024-12-09 on it writes TypeScript migrations (``migration.ts``) that
  only its own runner runs.
- Alembic: the script directory shipped inside a package on PyPI, at a pinned version. The
  revisions import their application (MLflow's import ``mlflow.store...`` models, Optuna's
  env.py imports ``optuna.storages._rdb.models``), so the smallest honest replay is the
  package installed, unchanged, next to reconciler: ``uv venv bench/work/corpus/venv`` and
  ``uv pip install -e <this repository> mlflow-skinny==V optuna==V``. Reconciler's
  ``lint``, ``plan`` and ``apply`` then run from that virtualenv with the package's own
  ``env.py`` and revisions, in place in site-packages. Both env.py files take the URL from
  ``sqlalchemy.url``, which reconciler sets, so they migrate the target. MLflow's first
  revision alters tables that MLflow creates itself on a new database (``_initialize_tables``:
  ``InitialBase.metadata.create_all``, then the revisions), so each MLflow database gets
  those tables first, from MLflow's own models (``Alembic.base``), as MLflow would.

For each history:

1. **Reach head**: a fresh database, a production target with the default safety settings
   and no approvals, ``reconciler apply --yes``. Reports the exit code, how many migrations
   were applied, and the line saying why it stopped.
2. **Time**: the whole ``reconciler apply`` process (development target, with the approvals
   its plan asks for, as ``bench_schema.py`` does) against one ``psql`` session applying the
   same files, each in its own transaction (files with CREATE INDEX CONCURRENTLY outside
   one, as Prisma runs them). For Alembic the reference is one ``alembic upgrade heads``
   process with the same script directory. Both on fresh databases, alternating order.
3. **Findings**: static ``reconciler lint --format json`` of the history; every blocking
   finding is kept. 30 of all of them are drawn at random (``--seed``, default 12) and looked
   up in ``bench/corpus_labels.tsv`` (history, migration, rule, line, label, reason),
   labelled by hand: ``true`` (a real risk of losing data that a reviewer must see) or
   ``false`` (nothing can be lost). The false-alarm rate is over the labelled draws; draws
   without a label are listed so they can be labelled after a change to the rules.
4. **Recall**: the history replayed on a seeded database, measuring what each migration
   destroys (see ``corpus_measure.py``). A data-losing migration counts as caught when
   static lint gives it at least one blocking finding.

Every database it creates is dropped at the end, also after an error or Ctrl-C.

    python bench/corpus.py                    # everything, a few minutes
    python bench/corpus.py --only umami,optuna --steps reach,lint
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import Server, add_server_option, command_failed, run_benchmarks, run_timed

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / "work" / "corpus"
VENV = WORK / "venv"
LABELS = BENCH / "corpus_labels.tsv"
MIRRORS = Path("/work/.mirror")
STEPS = ("reach", "time", "lint", "recall")


@dataclass(frozen=True)
class Prisma:
    name: str
    repo: str
    commit: str
    path: str
    stop_before: str | None = None
    """The first migration folder left out (and every later one)."""
    layout = "prisma"


@dataclass(frozen=True)
class Alembic:
    name: str
    requirement: str
    module: str
    """The module whose folder, joined with ``subdir``, is the script directory."""
    subdir: str
    base: str = ""
    """Python run with the target's SQLAlchemy URL as ``sys.argv[1]`` on each new database
    before reconciler, alembic or the measurement sees it: the tables the application
    creates itself before its first revision (MLflow's ``_initialize_tables`` does
    ``InitialBase.metadata.create_all``, then upgrades). No revision creates them, so to
    reconciler they are drift: the history's policies say ``drift: report``."""
    layout = "alembic"


HISTORIES: list[Prisma | Alembic] = [
    Prisma("documenso", "documenso/documenso", "75330166cc00b29c14399bc2e391e4b4d8080c00",
           "packages/prisma/migrations"),
    Prisma("rallly", "lukevella/rallly", "c629b3148024e40a115a731d3660d725c9329b0e",
           "packages/database/prisma/migrations"),
    Prisma("formbricks", "formbricks/formbricks", "b66c1dd978af618a0e402bd3343b456bed68594c",
           "packages/database/migration", stop_before="20241017124431_add_documents_and_insights"),
    Prisma("hoppscotch", "hoppscotch/hoppscotch", "afc2cf181c16e56647b099e5d18cfe55710c6cdd",
           "packages/hoppscotch-backend/prisma/migrations"),
    Prisma("umami", "umami-software/umami", "c0ea3aefbee7a3429ee2f824b06dc4a9dbe0b7e1",
           "prisma/migrations"),
    Alembic("mlflow", "mlflow-skinny==3.17.2", "mlflow", "store/db_migrations",
            base="import sys, sqlalchemy; "
            "from mlflow.store.tracking.dbmodels.initial_models import Base; "
            "Base.metadata.create_all(sqlalchemy.create_engine(sys.argv[1]))"),
    Alembic("optuna", "optuna==5.0.0", "optuna", "storages/_rdb/alembic"),
]  # fmt: skip


# -- rebuilding the corpus --------------------------------------------------------------


def git(git_dir: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, **kwargs)


def has_commit(git_dir: Path, commit: str) -> bool:
    probe = ["git", f"--git-dir={git_dir}", "cat-file", "-e", f"{commit}^{{commit}}"]
    return git_dir.is_dir() and subprocess.run(probe, capture_output=True).returncode == 0


def git_dir_for(history: Prisma) -> Path:
    """A bare repository holding ``history.commit``: the mirror, or a shallow fetch."""
    mirror = MIRRORS / history.repo.replace("/", "+") / "repo"
    if has_commit(mirror, history.commit):
        return mirror
    local = WORK / "git" / history.name
    if not has_commit(local, history.commit):
        local.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", str(local)], check=True)
        url = f"https://github.com/{history.repo}.git"
        try:
            git(local, "fetch", "-q", "--depth", "1", url, history.commit)
        except subprocess.CalledProcessError:
            raise RuntimeError(
                f"{history.name}: could not fetch {history.commit} from {url}, and no mirror "
                f"at {mirror} holds it"
            ) from None
    return local


def materialise_prisma(history: Prisma) -> Path:
    """The history's migrations folder under ``WORK``, extracted at its commit."""
    root = WORK / history.name
    folder = root / "migrations"
    stamp = root / "source.txt"
    pinned = f"{history.repo} {history.commit} {history.path} {history.stop_before}"
    if folder.is_dir() and stamp.is_file() and stamp.read_text() == pinned:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    source = git_dir_for(history)
    tmp = root / "extract"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    archive = git(source, "archive", history.commit, history.path, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    extracted = tmp / history.path
    for child in sorted(extracted.iterdir()):
        if history.stop_before and child.is_dir() and child.name >= history.stop_before:
            shutil.rmtree(child)
    extracted.rename(folder)
    shutil.rmtree(tmp)
    stamp.write_text(pinned)
    return folder


def alembic_python() -> Path:
    """The virtualenv with reconciler (this checkout, editable) and the Alembic packages."""
    python = VENV / "bin" / "python"
    wanted = sorted(h.requirement for h in HISTORIES if isinstance(h, Alembic))
    stamp = VENV / "corpus-requirements.txt"
    if python.is_file() and stamp.is_file() and stamp.read_text().split() == wanted:
        return python
    found = shutil.which("uv")
    uv = [found] if found else [sys.executable, "-m", "uv"]  # installed by `pip install uv`
    subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(VENV)], check=True)
    subprocess.run([*uv, "pip", "install", "-q", "--python", str(python), "-e", str(REPO),
                    *wanted], check=True)  # fmt: skip
    stamp.write_text("\n".join(wanted) + "\n")
    return python


def materialise_alembic(history: Alembic) -> Path:
    python = alembic_python()
    code = f"import os, {history.module} as m; print(os.path.dirname(m.__file__))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / history.subdir


def materialise(history: Prisma | Alembic) -> Path:
    if isinstance(history, Prisma):
        return materialise_prisma(history)
    return materialise_alembic(history)


def fresh(history: Prisma | Alembic, server: Server, database: str) -> str:
    """A new database ``database`` for ``history``: empty, or with the tables its
    application creates before its first revision (``Alembic.base``); its DSN."""
    dsn = server.fresh(database)
    if isinstance(history, Alembic) and history.base:
        url = dsn.replace("postgresql://", "postgresql+psycopg://")
        done = run_timed([str(python_for(history)), "-c", history.base, url])
        if done.code:
            raise command_failed(done.command, done.code, done.stdout + done.stderr)
    return dsn


def python_for(history: Prisma | Alembic) -> Path:
    return alembic_python() if isinstance(history, Alembic) else Path(sys.executable)


def reconciler_for(history: Prisma | Alembic) -> str:
    return str(python_for(history).with_name("reconciler"))


# -- policies ---------------------------------------------------------------------------


def write_policy(
    path: Path,
    history: Prisma | Alembic,
    dsn: str,
    migrations: Path,
    environment: str,
    approvals: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> None:
    lines = [
        "ledger: sqlite:///ledger.db",
        "targets:",
        f"  - name: {history.name}",
        f"    environment: {environment}",
        f"    database: {dsn}",
        "    migrations:",
        f"      layout: {history.layout}",
        f"      path: {migrations}",
    ]
    if isinstance(history, Alembic) and history.base:
        # The tables the application creates itself before its first revision (``base``)
        # are drift to reconciler, which production blocks by default before anything runs.
        lines += ["    drift: report"]
    if approvals:
        lines += ["    safety:", "      approvals:"]
        for a in approvals:
            lines += [
                f"        - migration: '{a['migration']}'",
                f"          checksum: '{a['checksum']}'",
                f"          rules: [{', '.join(a['rules'])}]",
                f"          reason: {json.dumps(a['reason'])}",
            ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for suffix in ("", "-wal", "-shm", "-journal"):
        (path.parent / f"ledger.db{suffix}").unlink(missing_ok=True)


def approvals_for(history: Prisma | Alembic, policy: Path) -> list[dict[str, Any]]:
    """``common.approvals_for`` run by the Python that can import the history."""
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "import common; print(json.dumps(common.approvals_for(Path(sys.argv[2]))))"
    )
    done = run_timed([str(python_for(history)), "-c", code, str(BENCH), str(policy)])
    if done.code:
        raise command_failed(done.command, done.code, done.stdout + done.stderr)
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


# -- 1. reach head ----------------------------------------------------------------------


def reach(history: Prisma | Alembic, path: Path, server: Server) -> dict[str, Any]:
    dsn = fresh(history, server, f"corpus_{history.name}_reach_{os.getpid()}")
    policy = WORK / history.name / "reach" / "policy.yaml"
    write_policy(policy, history, dsn, path, "production")
    done = run_timed([reconciler_for(history), "apply", "--yes", "--config", str(policy)])
    out = done.stdout + done.stderr
    applied = sum(1 for line in out.splitlines() if line.strip().startswith("~ applying")
                  and line.rstrip().endswith(")") and "... done" in line)  # fmt: skip
    ends = ("Apply stopped", "reconciler: error", "Apply failed")
    stopped = [line.strip() for line in out.splitlines() if line.startswith(ends)]
    (policy.parent / "apply.txt").write_text(out, encoding="utf-8")
    # The plan printed first marks each pending step: x blocked, ~ waiting, + ready.
    marks = [line.split()[0] for line in out.splitlines() if line.startswith("  ")
             and line.split()[:2] in (["x", "apply"], ["~", "apply"])]  # fmt: skip
    result = {"exit": done.code, "applied": applied, "stopped": stopped[:1], "seconds": done.wall,
              "blocked": marks.count("x"), "waiting": marks.count("~")}  # fmt: skip
    stops = Counter(
        f"{words[words.index(tag) - 1]} {tag[1:-2].lower()}"
        for words in (line.split() for line in out.splitlines())
        for tag in ("[BLOCKS]:", "[WAITS]:") if tag in words
    )  # fmt: skip
    result["stops_by_rule"] = dict(stops.most_common())
    state = "head" if done.code == 0 else f"stopped: {stopped[:1]}"
    print(f"  reach: exit {done.code}, {applied} applied, {state}; the plan marks "
          f"{marks.count('x')} steps blocked and {marks.count('~')} waiting")  # fmt: skip
    return result


# -- 2. time ----------------------------------------------------------------------------


def psql_driver(folder: Path, out: Path) -> None:
    lines = ["\\set ON_ERROR_STOP 1"]
    for migration in sorted(p for p in folder.iterdir() if (p / "migration.sql").is_file()):
        file = migration / "migration.sql"
        quoted = str(file).replace("'", "\\'")
        if "CONCURRENTLY" in file.read_text(encoding="utf-8").upper():
            lines.append(f"\\i '{quoted}'")
        else:
            lines += ["BEGIN;", f"\\i '{quoted}'", "COMMIT;"]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def alembic_ini(path: Path, script_dir: Path, dsn: str) -> None:
    url = dsn.replace("postgresql://", "postgresql+psycopg://")
    path.write_text(
        f"[alembic]\nscript_location = {script_dir}\nsqlalchemy.url = {url}\n\n"
        "[loggers]\nkeys = root\n\n[handlers]\nkeys = console\n\n[formatters]\nkeys = generic\n\n"
        "[logger_root]\nlevel = WARN\nhandlers = console\n\n"
        "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\n"
        "formatter = generic\n\n[formatter_generic]\nformat = %(levelname)s %(message)s\n",
        encoding="utf-8",
    )


def timing(
    history: Prisma | Alembic, path: Path, server: Server, repeats: int, psql: str
) -> dict[str, Any]:
    pid = os.getpid()
    rec_db, ref_db = f"corpus_{history.name}_rec_{pid}", f"corpus_{history.name}_ref_{pid}"
    rec_dsn, ref_dsn = fresh(history, server, rec_db), fresh(history, server, ref_db)
    root = WORK / history.name / "time"
    policy = root / "policy.yaml"
    write_policy(policy, history, rec_dsn, path, "development")
    try:
        approvals = approvals_for(history, policy)
    except RuntimeError as exc:  # the plan itself is blocked: nothing to time
        print(f"  time: no plan to approve: {str(exc).splitlines()[-1]}")
        return {"failed": "plan", "error": str(exc).splitlines()[-1:]}
    write_policy(policy, history, rec_dsn, path, "development", approvals)
    if isinstance(history, Prisma):
        driver = root / "psql_driver.sql"
        psql_driver(path, driver)
        reference = [psql, "-X", "-q", "-d", ref_dsn, "-f", str(driver)]
    else:
        ini = root / "alembic.ini"
        alembic_ini(ini, path, ref_dsn)
        reference = [str(python_for(history).with_name("alembic")), "-c", str(ini),
                     "upgrade", "heads"]  # fmt: skip
    ours = [reconciler_for(history), "apply", "--yes", "--config", str(policy)]
    runs: dict[str, list[float]] = {"reconciler": [], "reference": []}
    for index in range(repeats):
        fresh(history, server, rec_db)
        fresh(history, server, ref_db)
        write_policy(policy, history, rec_dsn, path, "development", approvals)
        order = ["reference", "reconciler"] if index % 2 == 0 else ["reconciler", "reference"]
        for name in order:
            server.checkpoint()
            done = run_timed(ours if name == "reconciler" else reference)
            if done.code:  # the history does not replay: nothing to compare
                error = (done.stdout + done.stderr).strip().splitlines()[-1:]
                print(f"  time: {name} exited {done.code}: {error}")
                return {"failed": name, "exit": done.code, "error": error}
            runs[name].append(done.wall)
    rec, ref = statistics.median(runs["reconciler"]), statistics.median(runs["reference"])
    label = "psql" if isinstance(history, Prisma) else "alembic upgrade heads"
    print(f"  time: reconciler {rec:.2f} s, {label} {ref:.2f} s, ratio {rec / ref:.2f} "
          f"({len(approvals)} approvals)")  # fmt: skip
    return {"reference": label, "runs": runs, "reconciler_median": rec,
            "reference_median": ref, "ratio": rec / ref, "approvals": len(approvals)}  # fmt: skip


# -- 3. findings ------------------------------------------------------------------------


def lint(history: Prisma | Alembic, path: Path) -> dict[str, Any]:
    done = run_timed([reconciler_for(history), "lint", str(path), "--format", "json"])
    if done.code not in (0, 1):
        raise command_failed(done.command, done.code, done.stdout + done.stderr, (0, 1))
    data: dict[str, Any] = json.loads(done.stdout)
    blocking = [f for f in data["findings"] if f["blocking"]]
    (WORK / history.name).mkdir(parents=True, exist_ok=True)
    (WORK / history.name / "lint.json").write_text(done.stdout, encoding="utf-8")
    flagged = sorted({f["migration"] for f in blocking})
    print(f"  lint: {data['migrations']} migrations, {len(data['findings'])} findings, "
          f"{len(blocking)} blocking in {len(flagged)} migrations")  # fmt: skip
    return {"migrations": data["migrations"], "findings": len(data["findings"]),
            "blocking": [{k: f.get(k) for k in ("migration", "rule", "line", "message",
                          "statement")} for f in blocking], "flagged": flagged}  # fmt: skip


def read_labels() -> dict[tuple[str, str, str, str], tuple[str, str]]:
    labels = {}
    if LABELS.is_file():
        for number, line in enumerate(LABELS.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 6 or fields[4] not in ("true", "false"):
                raise SystemExit(f"{LABELS}:{number}: expected 6 tab-separated fields, "
                                 "label true or false")  # fmt: skip
            labels[tuple(fields[:4])] = (fields[4], fields[5])  # type: ignore[index]
    return labels


def false_alarms(results: dict[str, Any], size: int, seed: int) -> dict[str, Any]:
    pool = sorted(
        (name, f["migration"], f["rule"], str(f["line"]), f["statement"] or "")
        for name, r in results.items() if "lint" in r for f in r["lint"]["blocking"]
    )  # fmt: skip
    sample = sorted(random.Random(seed).sample(pool, min(size, len(pool))))
    labels = read_labels()
    labelled = [(s, labels[s[:4]]) for s in sample if s[:4] in labels]
    missing = [s for s in sample if s[:4] not in labels]
    false = [s for s, (label, _) in labelled if label == "false"]
    print(f"\nfalse alarms: {len(false)} of {len(labelled)} labelled draws "
          f"({len(pool)} blocking findings, {size} drawn with seed {seed})")  # fmt: skip
    for s in missing:
        print(f"  to label: {s[0]}\t{s[1]}\t{s[2]}\t{s[3]}\t{s[4][:120]}")
    rate = len(false) / len(labelled) if labelled else None
    # Every finding of the pool that some draw labelled: a wider, less random view.
    known = [labels[s[:4]][0] for s in pool if s[:4] in labels]
    print(f"  over the pool: {known.count('false')} false of {len(known)} labelled findings "
          f"(of {len(pool)})")  # fmt: skip
    return {"pool": len(pool), "drawn": len(sample), "labelled": len(labelled),
            "false": len(false), "rate": rate, "unlabelled": missing,
            "pool_labelled": len(known), "pool_false": known.count("false"),
            "sample": [list(s) for s in sample]}  # fmt: skip


# -- 4. recall --------------------------------------------------------------------------


def recall(history: Prisma | Alembic, path: Path, server: Server) -> dict[str, Any]:
    dsn = fresh(history, server, f"corpus_{history.name}_measure_{os.getpid()}")
    out = WORK / history.name / "measured.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [str(python_for(history)), str(BENCH / "corpus_measure.py"), history.layout,
               str(path), dsn, str(out)]  # fmt: skip
    done = run_timed(command)
    if done.code:
        raise command_failed(command, done.code, done.stdout + done.stderr)
    records = json.loads(out.read_text(encoding="utf-8"))
    losing = [r for r in records if r.get("lost")]
    failed = [r for r in records if r.get("fails_empty")]
    print(f"  measured: {len(records)} migrations replayed, {len(losing)} lose data"
          + (f", replay stopped at {failed[0]['migration']}: {failed[0]['fails_empty']}"
             if failed else ""))  # fmt: skip
    return {"replayed": len(records), "records": records,
            "stopped": failed[0] if failed else None}  # fmt: skip


def caught(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    flagged = set(result["lint"]["flagged"])
    losing = [r for r in result["recall"]["records"] if r.get("lost")]
    return [r for r in losing if r["migration"] in flagged], [
        r for r in losing if r["migration"] not in flagged
    ]


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Rebuild the corpus of real Prisma and Alembic histories and measure "
        "reach-head, time, false alarms and recall (see the module docstring).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="histories: " + ", ".join(f"{h.name} ({h.layout})" for h in HISTORIES),
    )
    add_server_option(parser)
    parser.add_argument("--only", help="comma-separated history names (default: all)")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma-separated, of {', '.join(STEPS)} (default: all)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each side")
    parser.add_argument(
        "--sample", type=int, default=30, help="blocking findings drawn, from the histories run"
    )
    parser.add_argument("--seed", type=int, default=12, help="seed of the draw (default 12)")
    parser.add_argument("--psql", default=shutil.which("psql") or "psql", help="psql binary")
    parser.add_argument("--json", type=Path, default=WORK / "results.json",
                        help="where the results go (default %(default)s)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps = set(args.steps.split(","))
    if steps - set(STEPS):
        raise SystemExit(f"--steps: unknown {sorted(steps - set(STEPS))}; choose of {STEPS}")
    names = args.only.split(",") if args.only else [h.name for h in HISTORIES]
    unknown = set(names) - {h.name for h in HISTORIES}
    if unknown:
        raise SystemExit(f"--only: unknown histories {sorted(unknown)}")
    server = Server(args.server)
    WORK.mkdir(parents=True, exist_ok=True)

    def body(results: dict[str, Any]) -> None:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
        results["commit"] = head
        # The figures are reconciler's: the last commit that changed its code or dependencies.
        code = ["git", "-C", str(REPO), "log", "-1", "--format=%h", "--", "reconciler",
                "pyproject.toml", "uv.lock"]  # fmt: skip
        results["reconciler_commit"] = subprocess.run(
            code, capture_output=True, text=True
        ).stdout.strip()
        print(f"reconciler code at {results['reconciler_commit']}, this script at {head}")
        results["histories"] = per = {}
        for history in HISTORIES:
            if history.name not in names:
                continue
            path = materialise(history)
            pinned = getattr(history, "commit", None) or getattr(history, "requirement", "")
            print(f"\n{history.name} ({history.layout}, {pinned}): {path}")
            r: dict[str, Any] = {"layout": history.layout, "pinned": pinned}
            per[history.name] = r
            if "lint" in steps or "recall" in steps:
                r["lint"] = lint(history, path)
            if "reach" in steps:
                r["reach"] = reach(history, path, server)
            if "time" in steps:
                r["time"] = timing(history, path, server, args.repeats, args.psql)
            if "recall" in steps:
                r["recall"] = recall(history, path, server)
                hit, missed = caught(r)
                r["recall"]["caught"] = [m["migration"] for m in hit]
                r["recall"]["missed"] = missed
                print(f"  recall: {len(hit)} of {len(hit) + len(missed)} data-losing "
                      "migrations flagged")  # fmt: skip
                for m in missed:
                    print(f"    missed {m['migration']}: {'; '.join(m['lost'])}")
            server.drop_all()
        if "lint" in steps:
            results["false_alarms"] = false_alarms(per, args.sample, args.seed)
        summary(per)
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")

    return run_benchmarks(
        "corpus.py", body, cleanup=server.drop_all, interrupted="databases dropped"
    )


def summary(per: dict[str, Any]) -> None:
    print("\n| history | migrations | reaches head | reconciler / reference | blocking "
          "| data-losing (measured) | flagged |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in per.items():
        lint_r = r.get("lint", {})
        reach_r = r.get("reach")
        head = "-" if reach_r is None else ("yes" if reach_r["exit"] == 0 else
                                            f"no: {reach_r['applied']} applied")  # fmt: skip
        time_r = r.get("time")
        ratio = "-" if time_r is None or "failed" in time_r else (
            f"{time_r['reconciler_median']:.2f} s / {time_r['reference_median']:.2f} s "
            f"= {time_r['ratio']:.2f}x")  # fmt: skip
        rec = r.get("recall")
        losing = "-" if rec is None else str(len(rec["caught"]) + len(rec["missed"]))
        hit = "-" if rec is None else str(len(rec["caught"]))
        print(f"| {name} | {lint_r.get('migrations', '-')} | {head} | {ratio} | "
              f"{len(lint_r.get('blocking', []))} | {losing} | {hit} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
