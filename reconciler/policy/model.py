"""The policy: the desired state of every target, as a tree of strict pydantic models.

Unknown keys are errors (``extra="forbid"``) so a typo never silently disables a rule. Paths
and SQLite URLs are resolved against the policy file's folder, passed in the validation
context as ``base_dir``. Later capabilities (safety, backup, identity, schedule) add their own
sub-models here; the names already published stay.
"""

from __future__ import annotations

import base64
import binascii
import math
import shlex
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)

from reconciler.db.url import DatabaseUrl, parse_database_url, usable_path
from reconciler.durations import parse_duration
from reconciler.errors import PolicyError
from reconciler.rulebook import DEFAULT_BLOCK, DEFAULT_CONTRACT_GRACE, RULES, Blockable
from reconciler.secrets import Secret

DEFAULT_LEDGER = "sqlite:///var/reconciler.db"


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", "."))


def _to_database_url(value: Any, handler: Any, info: ValidationInfo) -> DatabaseUrl:
    if isinstance(value, DatabaseUrl):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a database URL string")
    return parse_database_url(value, _base_dir(info))


def _to_path(value: Any, handler: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ValueError("must be a path")
    return usable_path(Path(value), _base_dir(info))


Seconds = Annotated[float, BeforeValidator(parse_duration)]
"""A duration written as ``30s``, ``5m``, ``2h`` or ``7d``; stored in seconds."""

POSTGRES_TIMEOUT_MAX = 2_147_483.647
"""The longest ``lock_timeout`` or ``statement_timeout`` PostgreSQL takes (INT_MAX ms)."""


def _within_postgres(seconds: float) -> float:
    if seconds > POSTGRES_TIMEOUT_MAX:
        raise ValueError(
            "at most 24d (PostgreSQL's limit for a timeout is 2147483647 ms); 0 disables it"
        )
    return seconds


ServerTimeout = Annotated[Seconds, AfterValidator(_within_postgres)]
"""A timeout the server enforces: refused when the policy loads rather than by the server,
in the middle of a run, when the first migration sets it."""

DatabaseUrlField = Annotated[
    DatabaseUrl, WrapValidator(_to_database_url), PlainSerializer(str, return_type=str)
]
"""A database URL; SQLite paths resolved against the policy folder; password hidden."""

PolicyPath = Annotated[Path, WrapValidator(_to_path)]
"""A filesystem path, relative to the policy file unless absolute."""


def _to_secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string (use ${ENV_VAR})")
    return Secret(value)


SecretField = Annotated[Secret, BeforeValidator(_to_secret), PlainSerializer(str, return_type=str)]
"""A credential: registered for redaction as it is read, shown as ``***`` everywhere."""

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""Lowercase letters, digits, ``-`` and ``_``: safe in URLs, metric labels and file names."""


class Strict(BaseModel):
    """Base for every policy section: unknown keys rejected, values immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, defer_build=True
    )

    EXAMPLE: ClassVar[str | None] = None
    """The section in YAML's flow style, for the error a value of another kind gets."""


class Migrations(Strict):
    EXAMPLE = "{layout: prisma, path: prisma/migrations}"
    layout: Literal["prisma", "alembic"]
    """``prisma``: ``<id>_<name>/migration.sql`` folders; ``alembic``: a script directory."""
    path: PolicyPath
    """The migrations folder (Prisma) or Alembic script directory, relative to the policy."""
    revision: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] = (
        "head"
    )
    """``head`` (every head for Alembic), or a Prisma migration folder / Alembic revision."""


class Timeouts(Strict):
    EXAMPLE = "{lock: 5s, statement: 10m}"
    lock: ServerTimeout = 5.0
    """``lock_timeout`` for each migration: a statement waiting longer on a lock fails instead
    of queueing the application's traffic behind it. Default 5s; 0 disables."""
    statement: ServerTimeout = 600.0
    """``statement_timeout`` for each migration statement. Default 10m; 0 disables."""


class Approval(Strict):
    """A reviewed decision to let one migration do what a rule would block."""

    EXAMPLE = (
        "{migration: 20261201000000_drop_name, checksum: 5d41402abc4b, "
        "rules: [drop-column], reason: copied to full_name}"
    )

    migration: str
    """The migration id (Prisma folder name or Alembic revision)."""
    checksum: str = Field(pattern=r"^[0-9a-f]{8,64}$")
    """The start (8+ hex digits) of the migration's sha256: editing the file voids the
    approval. ``reconciler plan`` prints the exact snippet to paste."""
    rules: list[str] = Field(default_factory=list)
    """Rule ids this approval covers, e.g. ``[drop-column]``."""
    tables: list[str] = Field(default_factory=list)
    """Tables whose measured loss the migration may cause although no rule flags it: rows
    a foreign key cascades to, or a trigger deletes (measured on the copy and inside the
    live transaction)."""
    reason: str = Field(min_length=3)
    """Why the loss is intended; recorded in the ledger with every use."""
    approved_by: str | None = None
    """Who approved (defaults to the commit's author in the ledger when the source is git)."""
    expires: date | None = None
    """After this day the approval no longer applies."""

    @model_validator(mode="after")
    def _known_rules(self) -> Approval:
        if not self.rules and not self.tables:
            raise ValueError("an approval needs `rules` (or `tables` for a measured loss)")
        unknown = [r for r in self.rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown rule {unknown[0]!r}; rules are: {', '.join(sorted(RULES))}")
        if "syntax-error" in self.rules:
            raise ValueError("syntax-error cannot be approved: fix the SQL")
        return self


class Safety(Strict):
    EXAMPLE = "{block: [data-loss, will-fail], contract_grace: 7d, approvals: []}"
    block: list[Blockable] = Field(default_factory=lambda: list(DEFAULT_BLOCK))
    """Severities that block a step unless approved: data-loss, will-fail, locking, compat.
    Syntax errors always block; info never does."""
    contract_grace: Seconds = DEFAULT_CONTRACT_GRACE
    """How long a column must be replaced before it may be dropped (golden rule 2)."""
    approvals: list[Approval] = Field(default_factory=list)


class NeonSettings(Strict):
    EXAMPLE = "{project_id: odd-sky-123456, branch_id: br-main-123456, api_key: '${NEON_API_KEY}'}"
    project_id: str
    branch_id: str
    """The target's branch; backups are branches of it."""
    api_key: SecretField
    """Neon API key; write ``'${NEON_API_KEY}'``."""
    api_url: str = "https://console.neon.tech/api/v2"
    database: str | None = None
    """Database name in the branch (default: the target URL's database)."""
    role: str | None = None
    """Role for the branch's connection string (default: the target URL's user)."""


class Keep(Strict):
    EXAMPLE = "{last: 10, max_age: 30d}"
    last: int = Field(default=10, ge=1)
    """Keep at most this many backups (the newest verified one is always kept)."""
    max_age: Seconds = 30 * 86400.0
    """Delete backups older than this."""


BackupMoment = Literal["schema-change", "identity-delete"]
_SCHEMA_CHANGE: tuple[BackupMoment, ...] = ("schema-change",)


class Backup(Strict):
    EXAMPLE = "{driver: pg_dump, dir: var/backups, before: [schema-change]}"
    driver: Literal["pg_dump", "sqlite", "neon"]
    dir: PolicyPath = Path("var/backups")
    """Where ``pg_dump`` and ``sqlite`` backups are written, relative to the policy."""
    neon: NeonSettings | None = None
    before: list[BackupMoment] = Field(default_factory=lambda: list(_SCHEMA_CHANGE))
    """Take a (verified) backup before these kinds of change."""
    keep: Keep = Field(default_factory=Keep.model_construct)
    verify: Literal["restore", "none"] = "restore"
    """``restore``: restore into a scratch database and compare its census with the live
    one; an unverified backup blocks the change."""

    @model_validator(mode="after")
    def _neon_needs_settings(self) -> Backup:
        if self.driver == "neon" and self.neon is None:
            raise ValueError("driver neon needs a `neon:` section (project_id, branch_id, api_key)")
        return self


Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
"""A table or column name (quoted when used, so case is kept)."""
ProviderField = Literal["email", "first_name", "last_name", "external_id", "active"]


def _email_only() -> dict[ProviderField, str]:
    return {"email": "email"}


class ClerkSettings(Strict):
    EXAMPLE = "{secret_key: '${CLERK_SECRET_KEY}'}"
    secret_key: SecretField
    """Clerk's secret key (``sk_live_...``); write ``'${CLERK_SECRET_KEY}'``."""
    api_url: str = "https://api.clerk.com/v1"
    webhook_secret: SecretField | None = None
    """The Svix signing secret (``whsec_...``) of the webhook endpoint, if webhooks are used."""

    @field_validator("webhook_secret")
    @classmethod
    def _signing_secret(cls, value: Secret | None) -> Secret | None:
        """A secret that is not base64 after ``whsec_`` would make every delivery fail its
        signature check; said here, without the value."""
        if value is not None:
            key = value.reveal().removeprefix("whsec_")
            try:
                valid = bool(key) and base64.b64decode(key, validate=True) != b""
            except (binascii.Error, ValueError):
                valid = False
            if not valid:
                raise ValueError(
                    "must be the endpoint's signing secret as Clerk shows it: whsec_ and base64"
                )
        return value


class ScimSettings(Strict):
    EXAMPLE = "{url: 'https://idp.example.com/scim/v2', token: '${SCIM_TOKEN}'}"
    url: str
    """The SCIM 2.0 base URL (``.../scim/v2``)."""
    token: SecretField


class FileSettings(Strict):
    EXAMPLE = "{path: users.yaml}"
    path: PolicyPath
    """A YAML, JSON or CSV list of users (``id``, ``email``, ``first_name``, ``last_name``)."""


class MaxDeletions(Strict):
    EXAMPLE = "{count: 10, percent: 2}"
    count: int = Field(default=10, ge=0)
    percent: float = Field(default=2.0, ge=0, le=100)
    """Deletions (soft or hard) above either limit stop the run before any is applied."""

    def limit(self, table_users: int) -> int:
        """The most deletions one run may make: under both the count and the percentage."""
        return min(self.count, self._by_percent(table_users))

    def _by_percent(self, table_users: int) -> int:
        return math.floor(table_users * self.percent / 100)

    def describe(self, table_users: int) -> str:
        """The limit and the setting it comes from, so a person knows which one to change:
        ``0 here: the lower of count 10 and percent 2 of 3 users = 0``."""
        return (
            f"{self.limit(table_users):,} here: the lower of count {self.count:,} and percent "
            f"{self.percent:g} of {table_users:,} user{'s' if table_users != 1 else ''} = "
            f"{self._by_percent(table_users):,}"
        )


class Identity(Strict):
    EXAMPLE = "{provider: file, file: {path: users.yaml}, key: clerk_id}"
    provider: Literal["clerk", "scim", "file"]
    clerk: ClerkSettings | None = None
    scim: ScimSettings | None = None
    file: FileSettings | None = None
    table: Identifier = "users"
    key: Identifier
    """The column holding the provider's user id (``clerk_id``)."""
    columns: dict[ProviderField, Identifier] = Field(default_factory=lambda: _email_only())
    """Provider field → column of ``table``, kept equal by the sync."""
    missing: Literal["create", "report"] = "create"
    """Users in the provider but not in the table."""
    orphans: Literal["report", "soft-delete", "delete"] = "report"
    """Rows in the table whose user the provider no longer has. A hard delete never
    cascades: a table referenced with ON DELETE CASCADE is refused."""
    soft_delete_column: Identifier | None = None
    max_deletions: MaxDeletions = Field(default_factory=MaxDeletions.model_construct)
    deadline: Seconds = Field(default=60.0, gt=0)
    """How long one request to the provider may take in all, its retries and their waits
    included, however the provider answers (slowly, a byte at a time, or not at all). A
    page of users takes a second or two; a minute leaves room for the retries (0.5s, 1s, 2s
    apart) and a short ``Retry-After``, and bounds how long a stalled provider holds a run.
    Default 60s."""

    @model_validator(mode="after")
    def _settings_present(self) -> Identity:
        if getattr(self, self.provider) is None:
            raise ValueError(f"provider {self.provider} needs a `{self.provider}:` section")

        if self.orphans == "soft-delete" and not self.soft_delete_column:
            raise ValueError("orphans: soft-delete needs soft_delete_column (e.g. deleted_at)")
        return self


Percent = Annotated[float, BeforeValidator(lambda v: _percent(v))]


def _percent(value: Any) -> float:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and value.strip().endswith("%"):
            number = float(value.strip()[:-1])
        else:
            raise ValueError
    except (ValueError, OverflowError):
        raise ValueError("must be a percentage such as 10%") from None
    if not 0 <= number <= 100:
        raise ValueError("must be between 0% and 100%")
    return number


class Schedule(Strict):
    EXAMPLE = "{schema: 5m, identity: 15m}"
    schema_: Seconds | None = Field(default=300.0, alias="schema")
    """How often the schema is reconciled (default 5m); null: never on a timer."""
    identity: Seconds | None = 900.0
    """How often users are reconciled (default 15m), when the target has ``identity``."""
    backup: str | None = None
    """A cron expression (``0 3 * * *``, UTC) for scheduled backups, besides those taken
    before changes."""
    jitter: Percent = 10.0
    """Spread each run by up to this share of its interval, so a fleet does not wake at once."""
    retry: Seconds = 60.0
    """After a failure, retry this soon, doubling each time, never later than the interval."""
    drift: Seconds | None = 3600.0
    """How often the daemon checks the live schema for drift (default 1h); null: never on
    a timer. A check replays the applied history on a scratch database (seconds for a long
    history; once for a fleet sharing one), so it runs far less often than ``schema``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    @field_validator("backup")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"not a cron expression: {exc}") from None
        return value


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(value: Any) -> time:
    """``"02:30"``; YAML reads an unquoted ``22:30`` as the number 1350 (minutes, base 60)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        hours, _, minutes = value.strip().partition(":")
        if hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60:
            return time(int(hours), int(minutes))
        if value.strip() == "24:00":
            return time(0, 0)
    raise ValueError('must be a time of day such as "02:30"')


Clock = Annotated[time, BeforeValidator(_clock)]


class Window(Strict):
    """When migrations may be applied: ``from`` to ``to`` on ``days``, in ``timezone``. A
    window whose ``to`` is not after its ``from`` ends the next day."""

    EXAMPLE = (
        '{days: [mon, tue, wed, thu, fri], from: "02:00", to: "05:00", timezone: Europe/Berlin}'
    )

    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)
    """The days the window opens on; every day by default."""
    start: Clock = Field(alias="from")
    end: Clock = Field(alias="to")
    timezone: str = "UTC"
    """An IANA name such as ``Europe/Berlin``; the window follows its daylight saving time."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, too long
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as Europe/Berlin)"
            ) from None
        return value


class Target(Strict):
    EXAMPLE = (
        "{name: shop, database: 'sqlite:///var/shop.db', migrations: {layout: prisma, "
        "path: prisma/migrations}}"
    )
    name: Name
    """Short unique name: used in the CLI, the ledger, metrics labels and log lines."""
    environment: Literal["production", "staging", "development"] = "production"
    """Guards destructive verbs: ``reset`` runs only on ``development``."""
    database: DatabaseUrlField
    """The application database; use ``${ENV}`` for anything holding a password."""
    migrations: Migrations
    apply: Literal["auto", "manual"] = "auto"
    """``auto``: the daemon applies pending migrations; ``manual``: only plans; ``apply`` runs
    them when a person asks."""
    timeouts: Timeouts = Field(default_factory=Timeouts.model_construct)
    windows: list[Window] = Field(default_factory=list)
    """Maintenance windows: pending migrations are applied only inside one of them (the
    daemon waits, ``OutsideWindow``; ``apply --ignore-window`` overrides). None: any time."""
    safety: Safety = Field(default_factory=Safety.model_construct)
    backup: Backup | None = None
    identity: Identity | None = None
    schedule: Schedule = Field(default_factory=Schedule.model_construct)
    suspend: bool = False
    """Stop acting (keep observing and exporting): condition ``Suspended``."""
    rehearse: bool = False
    """Run pending migrations on a copy (restored from the fresh backup, or a Neon branch)
    first, and measure what data each step loses; needs ``backup``."""
    drift: Literal["report", "block"] | None = None
    """What drift in the live schema does: ``report`` only says it (condition, metric,
    ``/status``); ``block`` also holds every pending migration until it is captured or
    undone. Unset: ``block`` in production, ``report`` elsewhere (``drift_mode``). Either
    way a pending migration that creates what drift already made is never run."""
    seed: PolicyPath | None = None
    """Run by ``reset`` after the history: a ``.sql`` file, or an executable that receives
    ``DATABASE_URL`` in its environment."""

    _policy_file: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _remember_the_file(self, info: ValidationInfo) -> Target:
        self._policy_file = (info.context or {}).get("policy_file")
        return self

    @property
    def policy_file(self) -> str | None:
        """The policy file this target was read from, named as it was given (the command
        line's ``--config``), for the commands a message tells a person to run."""
        return self._policy_file

    def command(self, verb: str) -> str:
        """``reconciler VERB --config F --target T``: a command line for this target."""
        config = f" --config {shlex.quote(self._policy_file)}" if self._policy_file else ""
        return f"reconciler {verb}{config} --target {self.name}"

    @property
    def drift_mode(self) -> Literal["report", "block"]:
        """``drift``, or its default: production holds migrations on a schema nobody
        reviewed (a ``db push`` there is what the protocol forbids); staging and development
        take pushes by habit, so drift there is only reported."""
        if self.drift is not None:
            return self.drift
        return "block" if self.environment == "production" else "report"

    @property
    def without_snapshot(self) -> str | None:
        """What ``check``, ``plan``, ``status`` and ``/status`` say of a production target
        that takes no backup before a schema change (no ``backup`` section, or one whose
        ``before`` leaves ``schema-change`` out); None otherwise. The protocol this tool
        automates takes a snapshot before any schema change in production. A warning, not
        a refusal: what is applied is still verified inside its transaction."""
        if self.environment != "production":
            return None
        loses = "schema changes are applied with no snapshot to restore"
        if self.backup is None:
            driver = "sqlite" if self.database.dialect == "sqlite" else "pg_dump"
            return (
                f"production without a backup: {loses}; add a `backup:` section "
                f"(e.g. backup: {{driver: {driver}, dir: var/backups}}) to take a verified "
                "one before each"
            )
        if "schema-change" not in self.backup.before:
            return (
                f"production, but backup.before leaves out schema-change: {loses}; "
                "add schema-change to backup.before"
            )
        return None


def _check_target(target: Target) -> Target:
    backup = target.backup
    if backup is not None:
        dialect = target.database.dialect
        if backup.driver == "sqlite" and dialect != "sqlite":
            raise ValueError("backup.driver sqlite needs a sqlite:/// database")
        if backup.driver in ("pg_dump", "neon") and dialect != "postgresql":
            raise ValueError(f"backup.driver {backup.driver} needs a PostgreSQL database")
    if target.rehearse and backup is None:
        raise ValueError(
            "rehearse: true needs a `backup:` section (the copy is restored from the fresh backup)"
        )
    return target


class Server(Strict):
    EXAMPLE = "{listen: '127.0.0.1:9108', token: '${RECONCILER_TOKEN}'}"
    listen: str = "127.0.0.1:9108"
    """host:port for /metrics, /healthz, /readyz, /status, webhooks and run-now requests."""
    token: SecretField | None = None
    """Bearer token for /status and POST /targets/{name}/reconcile (which always needs one).
    Empty (``${RECONCILER_TOKEN:-}`` with the variable unset) means no token."""

    @field_validator("token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:9108")
        return value


class GitSource(Strict):
    EXAMPLE = "{url: 'https://git.example.com/ops/db-policy.git', ref: main, path: policy.yaml}"
    url: str
    """A repository the ``git`` command can fetch (https, ssh, or a local path)."""
    ref: str = "main"
    path: str = "policy.yaml"
    """The policy file inside the repository."""
    interval: Seconds = 60.0


class Notifications(Strict):
    EXAMPLE = "{url: '${NOTIFY_URL}', format: slack}"
    url: SecretField
    """The webhook to call when a target's condition changes (it often embeds a token)."""
    format: Literal["json", "slack"] = "json"


class Source(Strict):
    EXAMPLE = "{git: {url: 'https://git.example.com/ops/db-policy.git'}}"
    git: GitSource


class Retention(Strict):
    """How long the ledger keeps runs; the daemon deletes older ones every few hours."""

    EXAMPLE = "{runs: 365d, quiet: 7d}"

    runs: Seconds = 365 * 86400.0
    """Runs that changed something or tried to (a migration, a backup, users), and every
    other run after this long. The newest run of each target and concern is always kept."""
    quiet: Seconds = 7 * 86400.0
    """Runs that changed nothing (a daemon in sync writes one per target and interval)."""


class Policy(Strict):
    ledger: DatabaseUrlField
    """reconciler's own store of runs and steps; SQLite by default, PostgreSQL in production.
    A relative SQLite path is resolved against the policy file's folder."""
    targets: list[Annotated[Target, AfterValidator(_check_target)]] = Field(min_length=1)
    server: Server = Field(default_factory=Server.model_construct)
    notifications: Notifications | None = None
    source: Source | None = None
    """Where the desired state lives when not in this file: the daemon fetches it."""
    grace: Seconds = 30.0
    """On SIGTERM, how long a running migration may take to finish before the process exits."""
    retention: Retention = Field(default_factory=Retention.model_construct)

    @model_validator(mode="before")
    @classmethod
    def _default_ledger(cls, data: Any) -> Any:
        if isinstance(data, dict) and "ledger" not in data:
            return {"ledger": DEFAULT_LEDGER, **data}
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        seen: set[str] = set()
        for target in self.targets:
            if target.name in seen:
                raise ValueError(f"target name {target.name!r} is used twice")
            seen.add(target.name)
        return self

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets)
        raise PolicyError(f"no target named {name!r} in the policy (targets: {known})")
