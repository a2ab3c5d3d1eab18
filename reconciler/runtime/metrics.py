"""The daemon's Prometheus metrics: one registry, names under ``reconciler_``, base units.

Labels carry target names, concerns, condition types and reasons, never a user id or an
email. Gauges that describe state (pending migrations, drift, backup age) are set in one
place, ``Metrics.observe_*``, from the same records ``/status`` shows.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from reconciler import __version__
from reconciler.runtime.conditions import Condition

CONDITION_TYPES = ("Ready", "Reconciling", "Stalled")
RESULTS = ("success", "failure")
IDENTITY_ACTIONS = ("created", "updated", "soft_deleted", "deleted")
WEBHOOK_OUTCOMES = (
    "applied",
    "deferred",
    "not-taken",
    "ignored",
    "out-of-order",
    "replayed",
    "rejected",
    "invalid",
    "failed",
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        Info("reconciler_build", "Build facts of this reconciler.", registry=r).info(
            {"version": __version__}
        )
        self.source = Gauge(
            "reconciler_source_info", "The commit of the desired state.", ["commit"], registry=r
        )
        self.duration = Histogram(
            "reconciler_reconcile_duration_seconds",
            "Time one reconcile took.",
            ["target", "concern"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
        )
        self.runs = Counter(
            "reconciler_reconcile",
            "Reconciles by result.",
            ["target", "concern", "result"],
            registry=r,
        )
        self.condition = Gauge(
            "reconciler_condition",
            "1 for each current condition of a target.",
            ["target", "type", "status", "reason"],
            registry=r,
        )
        self.pending = Gauge(
            "reconciler_schema_pending_migrations",
            "Migrations not yet applied.",
            ["target"],
            registry=r,
        )
        self.revision = Gauge(
            "reconciler_schema_revision_info",
            "Live and desired schema revision.",
            ["target", "live", "desired"],
            registry=r,
        )
        self.applied = Counter(
            "reconciler_migrations_applied",
            "Migrations applied by this process.",
            ["target"],
            registry=r,
        )
        self.blocked = Gauge(
            "reconciler_safety_blocked_steps",
            "Pending steps the gate stops.",
            ["target"],
            registry=r,
        )
        self.backup_time = Gauge(
            "reconciler_backup_last_success_timestamp_seconds",
            "When the newest verified backup was taken.",
            ["target"],
            registry=r,
        )
        self.backup_size = Gauge(
            "reconciler_backup_size_bytes", "Size of the newest backup.", ["target"], registry=r
        )
        self.backup_verified = Gauge(
            "reconciler_backup_verified",
            "1 if the newest backup was proven by a restore.",
            ["target"],
            registry=r,
        )
        self.drift = Gauge(
            "reconciler_identity_drift",
            "Users that differ between the provider and the table.",
            ["target", "kind"],
            registry=r,
        )
        self.schema_drift = Gauge(
            "reconciler_schema_drift_objects",
            "Objects where the live schema differs from what its applied migrations build.",
            ["target"],
            registry=r,
        )
        self.identity_changes = Counter(
            "reconciler_identity_changes",
            "Users changed by identity sync.",
            ["target", "action"],
            registry=r,
        )
        self.webhooks = Counter(
            "reconciler_webhook_deliveries",
            f"Webhook deliveries by outcome ({', '.join(WEBHOOK_OUTCOMES)}).",
            ["target", "outcome"],
            registry=r,
        )
        self.rehearsal_seconds = Gauge(
            "reconciler_rehearsal_duration_seconds",
            "How long the last rehearsal's steps took on the copy.",
            ["target"],
            registry=r,
        )
        self.rehearsal_lost = Gauge(
            "reconciler_rehearsal_lost_values",
            "Rows and non-null values the last rehearsal measured as lost (approved or not).",
            ["target"],
            registry=r,
        )
        self.leader = Gauge(
            "reconciler_leader", "1 while this replica acts on the target.", ["target"], registry=r
        )
        self.last_success = Gauge(
            "reconciler_last_success_timestamp_seconds",
            "When a reconcile last succeeded.",
            ["target", "concern"],
            registry=r,
        )
        self._revision_labels: dict[str, tuple[str, str]] = {}
        self._source_commit: str | None = None

    def track(self, target: str, concerns: tuple[str, ...], identity: bool) -> None:
        """Create a target's counter series at 0. A series that appears only with its first
        event hides that event from ``increase()`` and ``rate()``: an alert on failures
        would fire only from the second one on."""
        for concern in concerns:
            for result in RESULTS:
                self.runs.labels(target, concern, result)
        self.applied.labels(target)
        if "drift" in concerns:
            self.schema_drift.labels(target).set(0)
        if identity:
            for action in IDENTITY_ACTIONS:
                self.identity_changes.labels(target, action)
            for outcome in WEBHOOK_OUTCOMES:
                self.webhooks.labels(target, outcome)

    def set_source(self, commit: str) -> None:
        if self._source_commit is not None:
            self.source.remove(self._source_commit)
        self._source_commit = commit
        self.source.labels(commit).set(1)

    def set_conditions(self, target: str, conditions: tuple[Condition, ...]) -> None:
        for series in list(self.condition._metrics):  # drop the target's previous reasons
            if series[0] == target:
                self.condition.remove(*series)
        for c in conditions:
            self.condition.labels(target, c.type, "True" if c.status else "False", c.reason).set(1)

    def set_revision(self, target: str, live: str, desired: str) -> None:
        old = self._revision_labels.get(target)
        if old is not None and old != (live, desired):
            self.revision.remove(target, *old)
        self._revision_labels[target] = (live, desired)
        self.revision.labels(target, live, desired).set(1)

    def forget(self, target: str) -> None:
        """A target left the policy: its series go too."""
        for metric in (
            self.condition,
            self.revision,
            self.pending,
            self.blocked,
            self.backup_time,
            self.backup_size,
            self.backup_verified,
            self.drift,
            self.schema_drift,
            self.leader,
            self.last_success,
        ):
            for series in list(metric._metrics):
                if series and series[0] == target:
                    metric.remove(*series)
        self._revision_labels.pop(target, None)
