"""The command line: the same engine as the daemon, for people and for CI.

Each command imports the engine it drives when it runs, not when this module loads: ``--help``
or ``lint PATH`` must not pay for SQLAlchemy, psycopg or Alembic (each a few tenths of a
second to import) that only other commands use. ``tests/cli/test_startup.py`` keeps it so.

Exit codes follow ``terraform plan -detailed-exitcode``: 0 in sync, 1 error, 2 changes
pending (``plan``), 3 stopped at a step awaiting approval (``apply``).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from reconciler import __version__
from reconciler.cli_backups import backup, backups, restore
from reconciler.cli_drift import drift
from reconciler.cli_identity import identity
from reconciler.cli_support import (
    EXIT_BLOCKED,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PENDING,
    HelpContext,
    cache_option,
    chosen_targets,
    config_option,
    confirm,
    errors_to_exit,
    fail,
    output_option,
    target_option,
    whole_words_in_help,
)
from reconciler.errors import ReconcilerError, Refused
from reconciler.secrets import redact

if TYPE_CHECKING:
    from reconciler.act import Outcome
    from reconciler.act.engine import Hold, StepResult
    from reconciler.ledger import Ledger, RunRecord
    from reconciler.plan.model import Step
    from reconciler.policy import Policy, Target


class _CommandLine(click.Group):
    """A command line click cannot parse (an unknown option, a value out of range) exits 1,
    not click's 2: 2 is "changes pending" for ``plan``, as for ``terraform plan
    -detailed-exitcode``, which exits 1 for such errors too. The group's own arguments are
    parsed in ``make_context``, a subcommand's in ``invoke``. Every command's help keeps
    hyphenated words whole (``HelpFormatter``)."""

    context_class = HelpContext

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(whole_words_in_help(cmd), name)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _usage_errors_exit_1():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_errors_exit_1():
            return super().invoke(ctx)


class _UsageError(click.UsageError):
    """click's usage error, exiting 1. click declares ``exit_code`` a class variable, so the
    code is changed by class, not by assigning to the error it raised."""

    exit_code = EXIT_ERROR


@contextmanager
def _usage_errors_exit_1() -> Iterator[None]:
    try:
        yield
    except click.UsageError as error:
        if isinstance(error, _UsageError):
            raise
        # format_message() keeps what the subclass adds (BadParameter names the option).
        raise _UsageError(error.format_message(), error.ctx) from None


no_drift_option = click.option(
    "--no-drift",
    is_flag=True,
    help="Skip the schema drift check (it replays the applied migrations on a scratch "
    "database, once per history).",
)


@click.group(cls=_CommandLine, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--verbose", "-v", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """Keep databases at the schema revision a committed policy declares, safely."""
    if ctx.invoked_subcommand not in _SHORT_LIVED:
        collect_again()
    _ending["quick"] = ctx.invoked_subcommand in _ONE_SHOT
    if ctx.invoked_subcommand != "lint" or verbose:
        _log_to_stderr()


def _log_to_stderr() -> None:
    """Log lines on stderr, secrets masked, at the level ``-v`` asks for (``logs``). Every
    command but ``lint`` sets this up at once; ``lint`` when it loads a policy (which
    registers the secrets to mask, and may reach a database), or given ``-v``. ``lint PATH``
    alone has no secret to mask and none of its code logs, and ``logging`` is a tenth of its
    start-up: there a library's warning (Alembic's, when it renders a revision) reaches
    stderr through Python's last-resort handler, unformatted."""
    from reconciler.runtime.logs import configure_command

    configure_command(click.get_current_context().find_root().params.get("verbose") or 0)


@main.command()
@config_option
@target_option
@output_option
@click.option(
    "--rehearse",
    is_flag=True,
    help="Also run the runnable steps on a copy (from a fresh backup) and show "
    "each step's duration and data loss. The live database is not changed.",
)
@cache_option
@no_drift_option
@errors_to_exit
def plan(config: Path, target: str | None, output: str, rehearse: bool, no_drift: bool) -> None:
    """Show what apply would do, and the live schema's drift. Exit 0 in sync, 2 changes
    pending, 1 error or blocked (a plan the drift guard would hold is blocked)."""
    from reconciler.act.drift_guard import plan_with_drift
    from reconciler.plan.render import render_text, to_json
    from reconciler.policy import load_policy

    policy = load_policy(config)
    plans: list[dict[str, Any]] = []
    code = EXIT_OK
    for index, spec in enumerate(chosen_targets(policy, target)):
        try:
            result = plan_with_drift(policy, spec, check=not no_drift)
        except ReconcilerError as exc:
            code = EXIT_ERROR
            if output == "json":
                plans.append({"target": spec.name, "error": redact(str(exc))})
            else:
                click.echo(f"reconciler: error: {spec.name}: {redact(str(exc))}", err=True)
            continue
        if result.blocker:
            code = EXIT_ERROR
        elif result.steps and code == EXIT_OK:
            code = EXIT_PENDING
        rehearsal = None
        if rehearse and result.steps and not result.blocker:
            from reconciler.act.rehearse import rehearse_plan
            from reconciler.ledger import Ledger

            with Ledger(policy.ledger) as ledger:
                rehearsal = rehearse_plan(spec, ledger, result)
        if output == "json":
            entry = to_json(result)
            if rehearsal is not None:
                entry["rehearsal"] = [
                    {
                        "migration": r.step.migration.id,
                        "seconds": r.seconds,
                        "losses": [loss.describe() for loss in r.losses],
                        "error": r.error,
                        "unapproved": [loss.describe() for loss in r.unapproved],
                    }
                    for r in rehearsal.steps
                ]
            plans.append(entry)
        else:
            click.echo(("\n" if index else "") + render_text(result))
            if rehearsal is not None:
                from reconciler.act.rehearse import describe_rehearsal

                click.echo("\n".join(describe_rehearsal(rehearsal)))
        if rehearsal is not None and any(r.error for r in rehearsal.steps):
            code = EXIT_ERROR
    if output == "json":
        click.echo(json.dumps({"targets": plans}, indent=2))
    sys.exit(code)


@main.command()
@config_option
@target_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (needed without a TTY).")
@click.option(
    "--ignore-window",
    is_flag=True,
    help="Apply now, even outside the target's maintenance windows.",
)
@cache_option
@errors_to_exit
def apply(config: Path, target: str | None, yes: bool, ignore_window: bool) -> None:
    """Apply pending migrations: one at a time, each in its own transaction."""
    from reconciler.act.drift_guard import drift_guard
    from reconciler.ledger import Ledger
    from reconciler.policy import load_policy
    from reconciler.runtime.conditions import AWAITING

    policy = load_policy(config)
    ledger = Ledger(policy.ledger)
    guard = drift_guard(policy)  # never a migration on a schema drift collides with
    code = EXIT_OK
    try:
        for spec in chosen_targets(policy, target):
            outcome = _apply_one(spec, ledger, str(config), yes, ignore_window, guard, policy)
            if outcome is None:
                continue
            if outcome.interrupted:  # Ctrl-C: no further target either
                code = EXIT_INTERRUPTED
                break
            if outcome.reason in AWAITING:
                code = max(code, EXIT_BLOCKED)
            elif not outcome.in_sync:
                code = EXIT_ERROR if code != EXIT_BLOCKED else code
    finally:
        ledger.close()
    sys.exit(code)


EXIT_INTERRUPTED = 130
"""``apply`` interrupted by Ctrl-C (128 + SIGINT, as a shell reports it)."""


def _apply_one(
    spec: Target,
    ledger: Ledger,
    source: str,
    yes: bool,
    ignore_window: bool,
    hold: Hold | None = None,
    policy: Policy | None = None,
) -> Outcome | None:
    """With steps to run, the preview shows the schema drift and the guard's verdict
    (``plan_with_drift``) before anyone is asked to confirm; the guard's own check then
    reuses the replay."""
    from reconciler.act import Outcome, plan_target, reconcile_schema
    from reconciler.act.drift_guard import plan_with_drift
    from reconciler.plan.render import render_text

    try:
        preview = (
            plan_target(spec) if policy is None else plan_with_drift(policy, spec, only_to_run=True)
        )
    except ReconcilerError as exc:
        click.echo(f"reconciler: error: {spec.name}: {redact(str(exc))}", err=True)
        return Outcome(spec.name, "Error", str(exc))
    click.echo(render_text(preview))
    if preview.in_sync:
        click.echo("")
        return None
    waits = preview.window_opens is not None and not ignore_window
    if preview.runnable and not yes and not waits:
        confirm(f"Apply {len(preview.runnable)} migration(s) to {spec.name} ({spec.environment})?")
    outcome = reconcile_schema(
        spec,
        ledger,
        trigger="cli",
        source=source,
        on_step=_print_step,
        report=click.echo,
        ignore_window=ignore_window,
        hold=hold,
    )
    _print_outcome(outcome)
    return outcome


def _print_step(step: Step, result: StepResult | None) -> None:
    if result is None:
        click.echo(f"  ~ applying {step.migration.id} ...", nl=False)
    elif result.outcome == "applied":
        click.echo(f" done ({result.seconds * 1000:.0f} ms)")
    elif result.outcome == "interrupted":
        click.echo(" interrupted, rolled back")
    else:
        click.echo(" FAILED")


def _print_outcome(outcome: Outcome) -> None:
    stream_err = not outcome.in_sync
    prefix = "Apply complete" if outcome.in_sync else f"Apply stopped ({outcome.reason})"
    click.echo(f"\n{prefix}: {outcome.target}: {redact(outcome.message)}\n", err=stream_err)


@main.command()
@config_option
@target_option
@output_option
@no_drift_option
@errors_to_exit
def status(config: Path, target: str | None, output: str, no_drift: bool) -> None:
    """Per target: live vs desired revision, pending, drift (of the history and of the
    schema), last runs, newest backup. Exit 1 when a target cannot be observed (its database
    or migrations)."""
    from reconciler.act.drift_guard import plan_with_drift
    from reconciler.ledger import Ledger
    from reconciler.plan.render import drift_json
    from reconciler.policy import load_policy

    policy = load_policy(config)
    ledger = Ledger(policy.ledger)
    report: list[dict[str, Any]] = []
    try:
        for spec in chosen_targets(policy, target):
            entry: dict[str, Any] = {
                "target": spec.name,
                "environment": spec.environment,
                "layout": spec.migrations.layout,
                "apply": spec.apply,
                "warnings": [spec.without_snapshot] if spec.without_snapshot else [],
            }
            try:
                current = plan_with_drift(policy, spec, check=not no_drift)
                entry.update(
                    live_revision=current.live_revision,
                    desired_revision=current.desired_revision,
                    pending=len(current.steps),
                    drift=[d.message for d in current.drift],
                    schema_drift=drift_json(current.drift_check),
                    blocker=current.blocker.message if current.blocker else None,
                    window_opens=(
                        current.window_opens.isoformat() if current.window_opens else None
                    ),
                )
            except ReconcilerError as exc:
                entry["error"] = redact(str(exc))
            entry["last_run"] = _run_entry(ledger.last_run(spec.name))
            if spec.schedule.drift is not None:  # the daemon's (or run --once's) last check
                entry["drift_last_run"] = _run_entry(ledger.last_run(spec.name, "drift"))
            if spec.identity is not None:
                entry["identity_last_run"] = _run_entry(ledger.last_run(spec.name, "identity"))
            if spec.backup is not None:
                newest = next(iter(ledger.backups(spec.name)), None)
                entry["backup"] = (
                    None
                    if newest is None
                    else {
                        "id": newest.id,
                        "created_at": newest.created_at.isoformat(),
                        "size_bytes": newest.size_bytes,
                        "verified": newest.verified,
                    }
                )
            report.append(entry)
    finally:
        ledger.close()
    if output == "json":
        click.echo(json.dumps({"targets": report}, indent=2))
    else:
        click.echo("\n\n".join(_status_text(e) for e in report))
    sys.exit(EXIT_ERROR if any("error" in e for e in report) else EXIT_OK)


def _run_entry(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "outcome": run.outcome or "Interrupted",
        "message": run.message,
        "trigger": run.trigger,
    }


def _run_line(label: str, run: dict[str, Any] | None) -> str:
    if run is None:
        return f"  {label:<10} never"
    started = datetime.fromisoformat(run["started_at"]).astimezone(UTC)
    return (
        f"  {label:<10} {started:%Y-%m-%d %H:%M:%S} UTC via {run['trigger']}: "
        f"{run['outcome']} ({run['message'] or ''})"
    )


def _schema_drift_lines(found: dict[str, Any] | None) -> list[str]:
    """``status``'s schema drift, as ``plan`` says it (from the JSON entry it prints too)."""
    from reconciler.plan.model import DriftCheck
    from reconciler.plan.render import drift_lines

    if found is None:
        return []
    check = DriftCheck(
        differences=tuple(found["differences"]),
        replayed=found["replayed"],
        notes=tuple(found["notes"]),
        error=found["error"],
        skipped=found["skipped"],
        command=found["command"],
    )
    head, *more = drift_lines(check)
    if head.startswith("none"):  # beside the history's line, "schema none" would read as no schema
        head = "no drift" + head.removeprefix("none")
    return [f"  schema     {head}"] + [f"             {line}" for line in more]


def _status_text(entry: dict[str, Any]) -> str:
    lines = [
        f"{entry['target']} ({entry['environment']}, {entry['layout']}, apply: {entry['apply']})"
    ]
    lines += [f"  WARNING    {w}" for w in entry["warnings"]]
    if "error" in entry:
        lines.append(f"  error      {entry['error']}")
    else:
        lines += [
            f"  live       {entry['live_revision'] or '(empty history)'}",
            f"  desired    {entry['desired_revision'] or '(no migrations)'}",
            f"  pending    {entry['pending']}",
        ]
        # The history's own drift (files edited or gone, revisions ahead); the schema's
        # drift, outside the migrations, is the line after.
        lines += [f"  history    {d}" for d in entry["drift"]] or ["  history    as applied"]
        lines += _schema_drift_lines(entry["schema_drift"])
        if entry["blocker"]:
            lines.append(f"  blocked    {entry['blocker']}")
        if entry["window_opens"]:
            opens = datetime.fromisoformat(entry["window_opens"])
            lines.append(f"  window     closed; the next opens {opens:%Y-%m-%d %H:%M} UTC")
    lines.append(_run_line("last run", entry["last_run"]))
    if "drift_last_run" in entry:
        lines.append(_run_line("drift run", entry["drift_last_run"]))
    if "identity_last_run" in entry:
        lines.append(_run_line("identity", entry["identity_last_run"]))
    if "backup" in entry:
        backup = entry["backup"]
        if backup is None:
            lines.append("  backup     none yet")
        else:
            taken = datetime.fromisoformat(backup["created_at"]).astimezone(UTC)
            state = {True: "verified", False: "FAILED verification", None: "not verified"}
            lines.append(
                f"  backup     {backup['id']} taken {taken:%Y-%m-%d %H:%M:%S} UTC, "
                f"{state[backup['verified']]}"
            )
    return "\n".join(lines)


@main.command()
@config_option
@cache_option
@errors_to_exit
def check(config: Path) -> None:
    """Validate the policy, every migration folder and the files the policy names (seed, a
    file provider's users) offline: no database needed."""
    from reconciler.plan.render import shown_path
    from reconciler.policy import load_policy
    from reconciler.safety.analyse import parse_migration, syntax_findings
    from reconciler.source import open_layout

    policy = load_policy(config)
    problems: list[str] = []
    warnings = [f"{s.name}: {s.without_snapshot}" for s in policy.targets if s.without_snapshot]
    count = 0
    for spec in policy.targets:
        users = spec.identity.file if spec.identity and spec.identity.provider == "file" else None
        if users is not None and not users.path.is_file():
            problems.append(f"{spec.name}: identity.file.path: {users.path} not found")
        if spec.seed is not None and not spec.seed.is_file():
            problems.append(f"{spec.name}: seed {spec.seed} not found")
        try:
            layout = open_layout(spec.migrations)
            layout.desired(spec.migrations.revision)
        except ReconcilerError as exc:
            problems.append(f"{spec.name}: {exc}")
            continue
        problems += [f"{spec.name}: {p}" for p in layout.check(spec.database.dialect)]
        dialect = spec.database.dialect
        for migration in layout.migrations():
            count += 1
            try:
                migration.read()  # text the tools can read: UTF-8
            except ReconcilerError as exc:
                problems.append(f"{spec.name}: {exc}")
                continue
            sql = layout.sql(migration, dialect)
            unseen = layout.unanalysable(migration, dialect) if sql is None else None
            if unseen is not None:  # valid, but no rule will see into it: plan says how
                warnings.append(
                    f"{spec.name}: {shown_path(migration.path)}: not analysed: its SQL "
                    f"cannot be rendered offline ({unseen})"
                )
            if dialect != "postgresql":
                continue
            parsed = parse_migration(migration, sql, dialect)
            for finding in syntax_findings(parsed):
                problems.append(
                    f"{spec.name}: {shown_path(finding.file)}:{finding.line}: {finding.message}"
                )
    if problems:
        fail("\n".join(problems))
    click.echo(
        f"{config}: policy valid; {len(policy.targets)} target(s), {count} migration(s) checked."
    )
    for warning in warnings:
        click.echo(f"reconciler: warning: {warning}", err=True)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@config_option
@target_option
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    show_default=True,
)
@cache_option
@errors_to_exit
def lint(paths: tuple[Path, ...], config: Path, target: str | None, fmt: str) -> None:
    """Analyse migrations for data loss and risky locks.

    With PATHS (.sql files, Alembic revisions, Prisma migrations folders, Alembic script
    directories): static analysis; given -c (or $RECONCILER_CONFIG), a migration of a
    target's folder is judged with that target's approvals. Without PATHS: each target's
    pending migrations, data-aware when its database is reachable, with the policy's
    approvals. Exit 1 when a blocking finding is not approved.
    """
    from reconciler.act.lint import lint_paths, lint_policy
    from reconciler.plan.lint_report import render as render_lint

    if paths:
        targets: list[Target] = []
        source = click.get_current_context().get_parameter_source("config")
        if source is not click.core.ParameterSource.DEFAULT:  # -c or $RECONCILER_CONFIG
            from reconciler.policy import load_policy

            _log_to_stderr()
            targets = chosen_targets(load_policy(config), target)
        report = lint_paths(list(paths), targets)
    else:
        from reconciler.policy import load_policy

        _log_to_stderr()
        policy = load_policy(config)
        report = lint_policy(policy, chosen_targets(policy, target))
    if fmt in ("json", "sarif"):  # often written to a file: the log says it first
        for unreachable in report.unreachable:
            click.echo(
                f"reconciler: warning: database unreachable: {unreachable}; live data "
                "unknown, migrations judged statically",
                err=True,
            )
    click.echo(render_lint(report, fmt))
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


@main.command()
@config_option
@click.option("--target", "-t", "target", required=True, help="The development target.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed without a TTY).")
@errors_to_exit
def reset(config: Path, target: str, yes: bool) -> None:
    """Development only: drop everything, apply every migration, run the seed."""
    from reconciler.act.reset import check_resettable, reset_target
    from reconciler.ledger import Ledger
    from reconciler.plan.render import shown_path
    from reconciler.policy import load_policy

    policy = load_policy(config)
    spec = policy.target(target)
    check_resettable(spec)
    if not yes:
        confirm(
            f"Drop every table of {spec.name} ({spec.database.redacted}) and rebuild it?", "reset"
        )
    ledger = Ledger(policy.ledger)
    try:
        outcome = reset_target(spec, ledger, source=str(config))
    finally:
        ledger.close()
    _print_outcome(outcome)
    if not outcome.in_sync:
        sys.exit(EXIT_ERROR)
    if spec.seed is not None:
        click.echo(f"Seeded from {shown_path(spec.seed)}.")


@main.command()
@config_option
@click.option("--target", "-t", "target", required=True)
@click.option(
    "--rolled-back",
    "rolled_back",
    metavar="MIGRATION",
    help="The failed migration was fixed: apply it again on the next run.",
)
@click.option(
    "--applied",
    "applied",
    metavar="MIGRATION",
    help="Record as applied: a failed migration completed by hand, or one the database "
    "already has (the sync_state migration of `drift --sql`, a baseline), which is not run.",
)
@errors_to_exit
def resolve(config: Path, target: str, rolled_back: str | None, applied: str | None) -> None:
    """Settle a Prisma migration, like `prisma migrate resolve`: a failed one rolled back or
    applied; one the database already has recorded as applied (checked by a replay)."""
    from reconciler.act.resolve import resolve_applied, resolve_failed
    from reconciler.policy import load_policy

    if bool(rolled_back) == bool(applied):
        raise Refused("give exactly one of --rolled-back MIGRATION or --applied MIGRATION")
    policy = load_policy(config)
    spec = policy.target(target)
    if applied:
        click.echo(resolve_applied(policy, spec, applied))
        return
    name = rolled_back or ""
    resolve_failed(spec, name, "rolled-back")
    click.echo(f"{spec.name}: {name} marked rolled back.")


@main.command()
@config_option
@click.option("--once", is_flag=True, help="One full cycle of every target, then exit.")
@errors_to_exit
def run(config: Path, once: bool) -> None:
    """The daemon: every target on its cadence, with /metrics, /status and webhooks."""
    from reconciler.runtime.daemon import Daemon
    from reconciler.runtime.logs import configure

    configure()
    daemon = Daemon(config, serving=not once)
    if once:
        code = daemon.run_once()
        for name, runtime in daemon.targets.items():
            for concern, state in runtime.concerns.items():
                click.echo(f"{name} {concern}: {state.reason}: {redact(state.message)}")
        daemon.stop(grace=NOTIFY_FLUSH_SECONDS)  # the runs are over: the wait is the notifications'
        sys.exit(code)
    sys.exit(daemon.serve_until_signalled())


NOTIFY_FLUSH_SECONDS = 10.0
"""How long ``run --once`` waits, before it exits, for its notifications to be delivered
(an unreachable receiver costs its retries, 1 + 2 + 4 s, and then is given up)."""


main.add_command(backup)
main.add_command(backups)
main.add_command(restore)
main.add_command(identity)
main.add_command(drift)


_SHORT_LIVED = {"lint"}
"""The commands that run with garbage collection paused (``launch``): a pass over a list of
migrations that ends within seconds, allocating little that refers back to itself."""
_paused = {"gc": False}
_ONE_SHOT = {"lint", "plan", "check"}
"""The commands that end without the interpreter's teardown (``_exit_now``): each reads
and reports, and closes what it opened before it returns; so do ``--help``, ``--version``
and a usage error, which end before any command runs."""
_ending = {"quick": False}


def collect_again() -> None:
    """Garbage collection back on, if ``run_command_line`` paused it: start-up's objects are
    frozen first, so a collection never walks them again. A no-op for library callers and
    tests, whose collector was never paused."""
    if _paused["gc"]:
        _paused["gc"] = False
        gc.freeze()
        gc.enable()


def run_command_line() -> None:
    """The ``reconciler`` script and ``python -m reconciler``: the command line, then a quick
    exit. Garbage collection is paused until the command is known (``launch``); any command
    but a short-lived one gets it back (``collect_again``). At exit the interpreter's last
    garbage collections walk every object the ~750 loaded modules made, 0.2 to 0.3 s on top
    of a 1 s process; ``gc.freeze()`` leaves those objects out, and the process ends as it
    would anyway. Every connection is closed before this point (the commands close theirs
    in ``finally``), so nothing depends on a finaliser that the frozen objects skip. A
    one-shot command skips the teardown altogether (``_exit_now``)."""
    gc.disable()
    _paused["gc"] = True
    _ending["quick"] = True  # until a command that is not one-shot is known (``main``)
    try:
        main()
    except SystemExit as stop:
        if _ending["quick"]:
            _exit_now(stop.code)
        raise
    finally:
        gc.freeze()


def _exit_now(code: object) -> NoReturn:
    """End a one-shot command without the interpreter's teardown. Tearing down frees
    every module, class and function one at a time, about a tenth of a warm ``lint`` of
    163 files, to give the memory back to a process that is ending. What an exit promises
    is kept: the ``atexit`` functions run, the standard streams are flushed, and the status
    is ``sys.exit``'s (0 for None, 1 and the text printed for anything not a number). Such a
    command holds no connection, thread or file open by then (``_ONE_SHOT``)."""
    atexit._run_exitfuncs()
    status = code if isinstance(code, int) else 0 if code is None else 1
    if not isinstance(code, int | None):
        print(code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``| head``): as Python ends then
            status = status or 120
    os._exit(status)
