"""``reconciler run``: every target's concerns on their cadence, one pipeline, one process.

Each run is shaped like a Flux reconcile: take leadership, set ``Reconciling`` before the
slow work, drive the same pipeline as the CLI (``act``), and end in an always-run block
that writes conditions, the ledger and the metrics. APScheduler keeps the cadence (interval
with jitter, cron for backups, coalesced: a slow run never piles up); failures retry after
``schedule.retry``, doubling, capped at the interval.

The desired state is a local policy file (reloaded on SIGHUP) or a git repository the daemon
fetches on ``source.git.interval``; a new commit is reconciled at once. A policy that fails
to load, for whatever reason, keeps the last good one running and reports ``InvalidPolicy``.
SIGTERM stops the scheduling, ends the identity provider's requests in flight at once, lets
a running migration finish (up to ``grace``), releases the locks, exits 0; a run still going
when the grace period is over does not keep the process alive (its transaction rolls back
with its connection).

A target's identity runs never wait for its schema and backup runs, nor these for them:
each lane has its own lock (``TargetRuntime.lane``), and a provider that hangs holds back
no migration.

The ``server`` section's references to the environment (the token) are resolved only by a
daemon that serves HTTP: ``run --once`` serves none, and does not need them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import random
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from reconciler.act import plan_target, reconcile_schema
from reconciler.act.backups import take_backup
from reconciler.act.identity import reconcile_identity
from reconciler.errors import ReconcilerError
from reconciler.ledger import Ledger
from reconciler.policy import Policy, Section, Target, load_policy, parse_policy
from reconciler.runtime import drift, views
from reconciler.runtime.conditions import AWAITING, SETTLED, STALLING, SUCCESS, evaluate
from reconciler.runtime.leader import Key, Leaders
from reconciler.runtime.metrics import Metrics
from reconciler.runtime.notify import Notifier
from reconciler.runtime.target import TargetRuntime
from reconciler.secrets import redact
from reconciler.source.git import GitCheckout
from reconciler.textfiles import read_utf8

log = logging.getLogger("reconciler.daemon")
CONCERNS = ("schema", "identity", "backup", "drift")
ON_DEMAND = ("schema", "drift", "identity")
"""What ``run --once`` and a run-now request run, in this order: a cron job or CI using
``run --once`` gets the drift check, its gauge and its condition too (``run --once`` keeps
it to ``schedule.drift``: a check recorded less than that ago is reported, not made
again). Drift comes after the schema run, in its lane, so it reads the schema the run left
(with the replay cached by the guard when no migration ran). Backups keep their own
schedule."""
BUSY_WAIT_SECONDS = 900.0
WORKERS = 4
RETENTION_EVERY = 6 * 3600.0
RETENTION_FIRST = 60.0
"""The ledger is pruned a minute after start (after the first cycle), then every 6 hours."""
WEBHOOK_RETENTION = 7 * 86400.0
"""Webhook deliveries are kept a week: replays are refused and events ordered within
minutes (Svix timestamps more than 5 minutes off are refused anyway)."""
"""Targets ``run_once`` reconciles at once (the scheduler's pool runs up to 10). Runs mostly
wait on their databases, far away ones above all; with all of them local on 2 cores, more
threads only contend (bench/README.md, Fleet)."""


def _load_failure(exc: Exception, file: Path) -> str:
    """What a failed load of ``file`` says: the loader's lines; for an error it did not mean
    to raise (a bug), its type, logged with the traceback for the bug report."""
    if isinstance(exc, ReconcilerError | OSError | ValueError):
        return str(exc)
    log.error("the policy could not be loaded", exc_info=exc)
    return f"{file}: cannot load the policy: internal error ({type(exc).__name__}; see the log)"


class Daemon:
    def __init__(
        self, config: Path, *, metrics: Metrics | None = None, serving: bool = True
    ) -> None:
        self.config = config
        self.needs: tuple[Section, ...] = (
            ("server", "notifications") if serving else ("notifications",)
        )
        self.bootstrap = load_policy(config, needs=self.needs)
        self.ledger = Ledger(self.bootstrap.ledger)
        self.leaders = Leaders(self.bootstrap.ledger)
        self.metrics = metrics or Metrics()
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self.commit: str | None = None
        self.policy_error: str | None = None
        self.checkout: GitCheckout | None = None
        self.targets: dict[str, TargetRuntime] = {}
        self.policy = self.bootstrap
        self.notifier = Notifier(self.bootstrap.notifications)
        if self.bootstrap.source is not None:
            git = self.bootstrap.source.git
            folder = (
                self.bootstrap.ledger.sqlite_path.parent / "source"
                if self.bootstrap.ledger.dialect == "sqlite"
                else Path("var/source")
            )
            self.checkout = GitCheckout(git.url, git.ref, folder)
            self.policy = self._fetch_policy(first=True) or self.bootstrap
        self._adopt(self.policy)

    # -- desired state --------------------------------------------------------------

    def _fetch_policy(self, first: bool = False) -> Policy | None:
        """The policy at the source's newest commit; None when unchanged or invalid."""
        assert self.checkout is not None
        assert self.bootstrap.source is not None
        try:
            commit = self.checkout.fetch()
        except ReconcilerError as exc:
            log.warning("cannot fetch the source: %s", exc)
            if first:
                raise
            return None
        if commit == self.commit:
            return None
        path = self.checkout.directory / self.bootstrap.source.git.path
        try:
            text = read_utf8(path)
            policy = parse_policy(text, path, os.environ, needs=self.needs)
        except Exception as exc:  # OSError, not UTF-8, PolicyError; a bug must not stop polls
            self.policy_error = f"commit {commit[:12]}: {_load_failure(exc, path)}"
            log.error(
                "invalid policy, keeping the last good one: %s",
                self.policy_error,
                extra={"commit": commit},
            )
            if first:
                raise ReconcilerError(self.policy_error) from None
            return None
        self.commit, self.policy_error = commit, None
        self.metrics.set_source(commit)
        log.info("desired state at commit %s", commit[:12], extra={"commit": commit})
        return policy

    def _adopt(self, policy: Policy) -> None:
        with self.lock:
            self.policy = policy
            old = self.targets
            self.targets = {}
            for spec in policy.targets:
                runtime = old.get(spec.name)
                if runtime is None:
                    runtime = TargetRuntime.create(spec, self.leaders)
                runtime.spec = spec
                self.targets[spec.name] = runtime
                self.metrics.track(spec.name, _concerns(spec), spec.identity is not None)
            for name in set(old) - set(self.targets):
                old[name].leadership.release()
                old[name].drop_connection()
                self.metrics.forget(name)
        if self.scheduler is not None:
            self._schedule()
        server = getattr(self, "server", None)
        if server is not None:
            from reconciler.runtime.endpoints import routes

            server.routes = routes(self)

    def reload(self) -> None:
        """SIGHUP or a source poll: load the new desired state if it is valid."""
        if self.checkout is not None:
            policy = self._fetch_policy()
        else:
            try:
                policy = load_policy(self.config, needs=self.needs)
                self.policy_error = None
            except Exception as exc:  # a PolicyError; anything else must not end the reload
                self.policy_error = _load_failure(exc, self.config).splitlines()[0]
                log.error("invalid policy, keeping the last good one: %s", self.policy_error)
                policy = None
        if policy is None:
            self._refresh_conditions()
            return
        if self.checkout is None:  # the file holds the daemon's own settings too
            self._take_settings(policy)
        self._adopt(policy)  # which schedules every concern to run within seconds

    def _take_settings(self, policy: Policy) -> None:
        """A new ``server.token`` is in force at once: a leaked token is rotated with a
        SIGHUP. The listen address, the ledger, the notifications and the source were read
        at start and stay: a change to them is logged, to take effect after a restart."""
        old = self.bootstrap
        if policy.server.token != old.server.token:
            server = old.server.model_copy(update={"token": policy.server.token})
            self.bootstrap = old.model_copy(update={"server": server})
            log.warning(
                "server.token %s",
                "changed: the new token is in force"
                if policy.server.token
                else "removed: /status answers without a token, and run-now requests are refused",
            )
        fixed = {
            "server.listen": (old.server.listen, policy.server.listen),
            "ledger": (old.ledger, policy.ledger),
            "notifications": (old.notifications, policy.notifications),
            "source": (old.source, policy.source),
        }
        changed = [name for name, (was, now) in fixed.items() if was != now]
        if changed:
            log.warning(
                "%s changed in %s: in force after a restart; until then the daemon keeps "
                "the values it started with",
                ", ".join(changed),
                self.config,
            )

    # -- runs -----------------------------------------------------------------------

    def reconcile(
        self, name: str, concern: str, trigger: str = "schedule", cadence: bool = False
    ) -> str | None:
        """One run of one concern of one target; the outcome's reason, or None if skipped.
        ``cadence`` (``run --once``): a drift check younger than ``schedule.drift`` is
        reported as it was, not made again."""
        runtime = self.targets.get(name)
        if runtime is None or (self.stopping.is_set() and trigger != "once"):
            return None
        # Runs in one lane of a target never overlap: the other's run waits for this one
        # (the scheduler already coalesces repeats of the same concern). Identity has a
        # lane of its own: a provider that hangs holds back no migration.
        lane = runtime.lane(concern)
        if not lane.acquire(timeout=BUSY_WAIT_SECONDS):
            return None
        try:
            if concern == "identity":
                self._await_schema(runtime)
            if self.stopping.is_set() and trigger != "once":
                return None  # it waited while the daemon began to stop
            return self._run(runtime, concern, trigger, cadence)
        finally:
            if concern == "schema":
                runtime.schema_ran.set()
            lane.release()

    def _await_schema(self, runtime: TargetRuntime) -> None:
        """Identity reads the users table the schema's migrations make and change: its run
        starts after the target's first schema run (when one is scheduled), and not in the
        middle of one. It waits without taking the schema's lane, so no migration ever
        waits for identity."""
        until = time.monotonic() + BUSY_WAIT_SECONDS
        if runtime.spec.schedule.schema_ is not None:
            while not runtime.schema_ran.wait(0.5):
                if self.stopping.is_set() or time.monotonic() > until:
                    return
        if runtime.busy.acquire(timeout=max(until - time.monotonic(), 0)):
            runtime.busy.release()

    def _run(
        self, runtime: TargetRuntime, concern: str, trigger: str, cadence: bool = False
    ) -> str | None:
        spec = runtime.spec
        if concern not in _concerns(spec):
            return None
        try:
            leads = runtime.leadership.acquire()
        except ReconcilerError as exc:  # no connection for the lock: report, retry
            self._lost_lead(runtime)  # whatever it held went with the connection
            state = runtime.concern(concern)
            state.reason, state.message = "DatabaseUnavailable", f"leadership: {exc}"
            state.failures += 1
            self._refresh_conditions(runtime)
            log.warning(
                "%s %s: cannot take the lead: %s",
                spec.name,
                concern,
                exc,
                extra={"target": spec.name, "concern": concern},
            )
            if not self.stopping.is_set():
                self._retry(runtime, concern, state.failures)
            return "DatabaseUnavailable"
        runtime.leader = leads
        if not leads:
            if runtime.led:  # the lead moved: this replica's views and gauges are stale
                self.metrics.forget(spec.name)
                runtime.conditions, runtime.concerns = (), {}
                runtime.led = False
            self.metrics.leader.labels(spec.name).set(0)
            return None
        runtime.led = True
        self.metrics.leader.labels(spec.name).set(1)
        state = runtime.concern(concern)
        if not self.policy_error:  # no run can clear an invalid policy: it stays in view
            runtime.conditions = evaluate(
                "Progressing",
                f"reconciling {concern}",
                datetime.now(UTC),
                reconciling=True,
                previous=runtime.conditions,
            )
            self.metrics.set_conditions(spec.name, runtime.conditions)
        started = time.perf_counter()
        reason, message = "ApplyFailed", "interrupted"
        try:
            reason, message = self._act(runtime, concern, trigger, cadence)
        except ReconcilerError as exc:
            reason, message = "ApplyFailed", str(exc)
        except Exception as exc:  # a bug must not kill the loop; it stalls the target
            log.exception("unexpected error", extra={"target": spec.name, "concern": concern})
            reason, message = "ApplyFailed", f"internal error: {type(exc).__name__}"
        finally:
            seconds = time.perf_counter() - started
            ok = reason in SETTLED
            state.reason, state.message = reason, message
            state.finished_at, state.seconds = datetime.now(UTC), seconds
            state.failures = 0 if ok else state.failures + 1
            self.metrics.duration.labels(spec.name, concern).observe(seconds)
            self.metrics.runs.labels(spec.name, concern, "success" if ok else "failure").inc()
            if ok:
                self.metrics.last_success.labels(spec.name, concern).set(time.time())
            self._refresh_conditions(runtime)
            log.log(
                _level(reason),
                "%s %s: %s: %s",
                spec.name,
                concern,
                reason,
                message,
                extra={"target": spec.name, "concern": concern, "outcome": reason},
            )
            if not ok and not self.stopping.is_set():
                self._retry(runtime, concern, state.failures)
        return reason

    def leading(self) -> dict[str, bool]:
        """Which targets this replica leads now, for ``/status`` and the metrics: those whose
        last run took the lead, each lock connection proved alive by one round trip (once,
        however many targets share it). A lead found lost is reported at once."""
        held: dict[int, frozenset[Key]] = {}
        leading = {}
        for name, runtime in list(self.targets.items()):
            locks, leads = runtime.leadership.locks, runtime.leader
            if leads and locks is not None:
                if id(locks) not in held:
                    held[id(locks)] = locks.held()
                leads = runtime.leadership.key in held[id(locks)]
                if not leads:
                    self._lost_lead(runtime)
            leading[name] = leads
        return leading

    def _lost_lead(self, runtime: TargetRuntime) -> None:
        """This replica holds no lock for the target: it says so. Its views stay until the
        next run, which clears them if another replica leads."""
        runtime.leader = False
        self.metrics.leader.labels(runtime.spec.name).set(0)

    def _act(
        self, runtime: TargetRuntime, concern: str, trigger: str, cadence: bool = False
    ) -> tuple[str, str]:
        spec = runtime.spec
        source = self.commit or str(self.config)
        acting = not spec.suspend and spec.apply == "auto"
        if concern == "schema":
            try:
                db = runtime.connection()
            except ReconcilerError as exc:
                return "DatabaseUnavailable", str(exc)
            if acting:
                outcome = reconcile_schema(
                    spec,
                    self.ledger,
                    trigger=trigger,
                    source=source,
                    commit=self.commit,
                    db=db,
                    hold=drift.hold(self, runtime),
                )
                if outcome.results or outcome.reason == "DatabaseUnavailable":
                    runtime.drop_connection()  # it ran migrations, or it is gone
                views.schema(self, runtime, outcome.plan, outcome.applied)
                views.rehearsal(self, runtime, outcome.rehearsal)
                opens = outcome.plan.window_opens if outcome.plan else None
                if outcome.reason == "OutsideWindow" and opens and self.scheduler is not None:
                    # Not up to an interval late: a run as the window opens.
                    self.scheduler.add_job(
                        self.reconcile,
                        "date",
                        run_date=opens + timedelta(seconds=1),
                        args=(spec.name, "schema", "window"),
                        id=f"{spec.name}:schema:window",
                        replace_existing=True,
                    )
                return outcome.reason, outcome.message
            try:
                plan = plan_target(spec, db)
            except ReconcilerError:
                runtime.drop_connection()
                raise
            views.schema(self, runtime, plan, 0)
            if spec.suspend:
                return "Suspended", "suspend: true; observing only"
            return (
                "InSync" if plan.in_sync else "Planned",
                f"apply: manual; {len(plan.steps)} pending migration(s)",
            )
        if concern == "identity":
            result = reconcile_identity(
                spec,
                self.ledger,
                dry_run=not acting,
                trigger=trigger,
                source=source,
                cancel=self.stopping,
            )
            views.identity(self, runtime, result)
            if spec.suspend:
                return "Suspended", "suspend: true; observing only"
            return result.reason, result.message
        if concern == "drift":
            if cadence:
                known = drift.recent(self, runtime)
                if known is not None:
                    return known
            return drift.check(self, runtime, trigger)
        if spec.suspend:
            return "Suspended", "suspend: true; no scheduled backup"
        backup = take_backup(spec, self.ledger, reason="scheduled")
        views.backup(self, runtime)
        return "InSync", f"backup {backup.artifact.id}: {backup.message}"

    def _refresh_conditions(self, runtime: TargetRuntime | None = None) -> None:
        for item in [runtime] if runtime else list(self.targets.values()):
            worst = views.worst(item)
            reason, message = worst if worst else ("Progressing", "not reconciled yet")
            if self.policy_error:
                reason, message = (
                    "InvalidPolicy",
                    (f"{self.policy_error}; still reconciling the last good policy"),
                )
            before = item.conditions
            item.conditions = evaluate(reason, message, datetime.now(UTC), previous=before)
            self.metrics.set_conditions(item.spec.name, item.conditions)
            self.notifier.changed(item.spec.name, before, item.conditions, self.commit)

    # -- scheduling -----------------------------------------------------------------

    def trigger(self, name: str, concern: str | None = None) -> bool:
        """Run now (an API call, a new commit); False for an unknown target."""
        if name not in self.targets or self.scheduler is None:
            return name in self.targets
        for item in (concern,) if concern else ON_DEMAND:
            self.scheduler.add_job(
                self.reconcile,
                args=(name, item, "api"),
                id=f"{name}:{item}:now",
                replace_existing=True,
            )
        return True

    def _retry(self, runtime: TargetRuntime, concern: str, failures: int) -> None:
        if self.scheduler is None:
            return
        schedule = runtime.spec.schedule
        interval = {
            "schema": schedule.schema_,
            "identity": schedule.identity,
            "drift": schedule.drift,
        }.get(concern)
        delay = schedule.retry * 2 ** (failures - 1)
        if interval:
            delay = min(delay, interval)
        self.scheduler.add_job(
            self.reconcile,
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=delay),
            args=(runtime.spec.name, concern, "retry"),
            id=f"{runtime.spec.name}:{concern}:retry",
            replace_existing=True,
        )

    def _schedule(self) -> None:
        assert self.scheduler is not None
        for job in self.scheduler.get_jobs():
            if job.id not in ("source", "retention"):
                job.remove()
        for name, runtime in self.targets.items():
            schedule = runtime.spec.schedule
            for concern, every in (
                ("schema", schedule.schema_),
                ("identity", schedule.identity),
                ("drift", schedule.drift),
            ):
                if every is None or (concern == "identity" and runtime.spec.identity is None):
                    continue
                self.scheduler.add_job(
                    self.reconcile,
                    IntervalTrigger(seconds=every, jitter=every * schedule.jitter / 100),
                    args=(name, concern),
                    id=f"{name}:{concern}",
                    next_run_time=datetime.now(UTC)
                    + timedelta(seconds=random.uniform(0, min(every * schedule.jitter / 100, 2.0))),
                )
            if schedule.backup and runtime.spec.backup is not None:
                self.scheduler.add_job(
                    self.reconcile,
                    CronTrigger.from_crontab(schedule.backup, timezone=UTC),
                    args=(name, "backup"),
                    id=f"{name}:backup",
                )

    def start(self) -> None:
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._schedule()
        if self.checkout is not None and self.bootstrap.source is not None:
            self.scheduler.add_job(
                self.reload,
                IntervalTrigger(seconds=self.bootstrap.source.git.interval),
                id="source",
            )
        self.scheduler.add_job(
            self.prune_ledger,
            IntervalTrigger(seconds=RETENTION_EVERY),
            id="retention",
            next_run_time=datetime.now(UTC) + timedelta(seconds=RETENTION_FIRST),
        )
        self.scheduler.start()

    def prune_ledger(self) -> None:
        """Keep the ledger from growing without end (``retention`` in the policy)."""
        keep = self.policy.retention
        try:
            runs, deliveries = self.ledger.prune(
                runs=keep.runs, quiet=keep.quiet, webhooks=WEBHOOK_RETENTION
            )
        except SQLAlchemyError as exc:
            log.warning("ledger retention failed: %s", redact(str(exc).splitlines()[0]))
            return
        if runs or deliveries:
            log.info("ledger retention: deleted %d runs, %d webhook deliveries", runs, deliveries)

    def stop(self, grace: float | None = None) -> list[str]:
        """Stop scheduling; wait for running work (a migration finishes or rolls back) up to
        ``grace``. Provider requests in flight end at once (``stopping`` cancels them).
        The runs still going when the grace period is over, as ``target lane``."""
        self.stopping.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + (self.policy.grace if grace is None else grace)
        unfinished = []
        for runtime in list(self.targets.values()):
            for name, lane in runtime.lanes().items():
                remaining = max(deadline - time.monotonic(), 0)
                if lane.acquire(timeout=remaining):
                    lane.release()
                else:
                    unfinished.append(f"{runtime.spec.name} {name}")
            if runtime.busy.acquire(blocking=False):
                runtime.busy.release()
                runtime.drop_connection()
            runtime.leadership.release()
        # What the last runs had to say is sent, within the grace period: a delivery cut
        # in the middle of a network call as the interpreter shuts down can crash it.
        self.notifier.flush(max(deadline - time.monotonic(), 0))
        self.leaders.close()
        self.ledger.close()
        return unfinished

    def run_once(self) -> int:
        """One full cycle of every target, ``WORKERS`` targets at a time; the exit code."""

        def cycle(name: str) -> list[str]:
            reasons = (self.reconcile(name, c, "once", cadence=True) for c in ON_DEMAND)
            return [r for r in reasons if r is not None]

        with concurrent.futures.ThreadPoolExecutor(WORKERS, "once") as pool:
            reasons = [r for rs in pool.map(cycle, list(self.targets)) for r in rs]
        if any(r in AWAITING for r in reasons):
            return 3
        return 0 if all(r in SUCCESS or r == "Suspended" for r in reasons) else 1

    def serve_until_signalled(self) -> int:
        """Take the port, then start the schedule and serve until SIGTERM or SIGINT. The
        port comes first: a daemon that cannot listen (another one holds the port) stops
        before it has started any work. The stop signals are caught before the schedule
        starts: one that comes as the first run begins stops the daemon gracefully, not
        mid-migration. A reload (SIGHUP) is taken once the schedule runs."""
        from reconciler.runtime.endpoints import routes
        from reconciler.runtime.http import Server

        host, _, port = self.bootstrap.server.listen.rpartition(":")
        self.server = Server(host, int(port), routes(self))
        done = threading.Event()

        def terminate(signum: int, frame: Any) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            done.set()

        def hangup(signum: int, frame: Any) -> None:
            threading.Thread(target=self.reload, name="reload", daemon=True).start()

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGINT, terminate)
        self.start()
        self.server.start()
        signal.signal(signal.SIGHUP, hangup)
        log.info("serving on %s", self.server.url)
        if self.bootstrap.server.token is None:
            log.warning(
                "server.token is not set: /status answers without a token, and run-now "
                "requests (POST /targets/{name}/reconcile) are refused"
            )
        while not done.wait(SIGNAL_POLL_SECONDS):
            pass  # woken, the main thread runs any handler a signal left pending
        watchdog = threading.Timer(self.policy.grace, _exit_late, (self.policy.grace,))
        watchdog.daemon = True  # armed until the process ends, whatever holds it up
        watchdog.start()
        unfinished = self.stop(max(self.policy.grace - 1, 0))
        self.server.stop()
        if unfinished:
            # Their threads would keep the interpreter from exiting: end the process, which
            # ends their connections, and the server rolls their transactions back.
            log.warning(
                "stopped: the grace period (%gs) is over with runs still going (%s); exiting",
                self.policy.grace,
                ", ".join(unfinished),
            )
            logging.shutdown()
            os._exit(0)
        log.info("stopped")
        return 0


SIGNAL_POLL_SECONDS = 0.5
"""How often the waiting main thread wakes. Python runs signal handlers in the main thread
only, and the kernel may hand a signal sent to the process to any of its threads (the HTTP
server's, the scheduler's, a run's). A main thread blocked in a lock without a timeout is
then never interrupted, and the handler waits for it forever: a SIGTERM left the daemon
running. Woken at this interval, it runs the pending handler within half a second."""


def _exit_late(grace: float) -> None:
    """The grace period is over and the process has not ended: something the lanes do not
    cover holds it (a thread in I/O, a close that waits). End it: the server rolls back
    whatever its connections left open, and SIGTERM is kept within its promise."""
    log.warning("stopped: the grace period (%gs) is over before shutdown ended; exiting", grace)
    logging.shutdown()
    os._exit(0)


def _concerns(spec: Target) -> tuple[str, ...]:
    """The concerns the daemon runs for ``spec``."""
    return tuple(
        c
        for c in CONCERNS
        if (c != "identity" or spec.identity is not None)
        and (c != "backup" or spec.backup is not None)
        and (c != "drift" or spec.schedule.drift is not None)
    )


def _level(reason: str) -> int:
    """How loud a run's outcome is logged: an error when a person must act (the target
    stalls), a warning when it will be retried or waits for something, info when settled."""
    if reason in SETTLED:
        return logging.INFO
    return logging.ERROR if reason in STALLING else logging.WARNING
