"""Clerk webhooks, delivered by Svix: verified, deduplicated, ordered, applied.

``ClerkWebhook.handle(headers, body)`` is framework-free, so the daemon's HTTP server (or
any other) mounts it at ``/webhooks/clerk``. Before anything is read from the body:

- a delivery svix cannot even check, or the ledger cannot keep (a header missing, an
  ``svix-id`` over 128 characters, an ``svix-timestamp`` that is no number of seconds, an
  ``svix-signature`` that is not space-separated ``version,signature`` entries or whose
  ``v1`` signature is not base64, a body that is not UTF-8) is a bad request: 400. The
  timestamp is read as svix reads it: ``1796165095.0`` is a number of seconds, and svix
  signs and checks the whole second below it;
- the Svix signature is checked (HMAC-SHA256 with the ``whsec_`` secret over
  ``{svix-id}.{svix-timestamp}.{body}``, constant-time, via the ``svix`` library), and a
  timestamp more than 5 minutes off is refused: 401;
- each ``svix-id`` is processed once: the first attempt claims it in the ledger (its
  primary key decides between attempts that arrive at once, on any replica), and every
  other attempt is a duplicate: 200 ``duplicate delivery``, nothing changes. An attempt
  that fails (503) gives its claim up, so Svix's retry is processed;
- an event older than one already applied to the same user (deliveries arrive out of
  order) is acknowledged and ignored.

``user.created`` / ``user.updated`` carry the full user; ``user.deleted`` only its id and
follows the policy's ``orphans`` mode (report, soft-delete or delete). As in the sync, a user
the table lacks and cannot take (a column it requires, NOT NULL without a default, is empty
at the provider: a Clerk user who signed up with a phone number, a username or a web3
wallet has no email) is acknowledged as ``not taken``; one the table has keeps its value of
such a column.

A webhook is a fast path, never a way around the rules the periodic sync keeps. An event is
acknowledged but deferred (left to the sync, which lists the provider again) when:

- the target does not act on its own (``suspend: true`` or ``apply: manual``);
- it deletes, and ``backup.before`` asks for a backup before identity deletions (the sync
  takes it);
- it deletes, and the deletions webhooks made within the last identity interval already
  reach ``max_deletions``: a burst of ``user.deleted`` is the provider's bad day the guard
  exists for, and the sync stops it for approval.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from svix.webhooks import Webhook, WebhookVerificationError

from reconciler.db.connection import connect
from reconciler.errors import ReconcilerError
from reconciler.identity.clerk_user import from_clerk
from reconciler.identity.sync import UsersTable
from reconciler.policy.model import Target
from reconciler.secrets import redact

if TYPE_CHECKING:
    from reconciler.ledger import Ledger


log = logging.getLogger(__name__)

HEADERS = ("svix-id", "svix-timestamp", "svix-signature")
MAX_ID = 128
"""The longest ``svix-id`` the ledger keeps (its column's length); Svix's are far shorter."""
DELETION_WINDOW = 900.0
"""Seconds over which webhook deletions count against ``max_deletions`` when the target
has no identity interval (``schedule.identity: null``)."""


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    outcome: str = "invalid"
    """For metrics: ``applied``, ``deferred``, ``not-taken``, ``ignored``, ``out-of-order``,
    ``replayed`` (a duplicate), ``rejected`` (malformed, or its signature or timestamp
    refused: logged as a warning), ``invalid`` (not a user event) or ``failed``."""


class ClerkWebhook:
    """The ``/webhooks/clerk`` endpoint of one target."""

    def __init__(self, target: Target, ledger: Ledger) -> None:
        spec = target.identity
        if spec is None or spec.clerk is None or spec.clerk.webhook_secret is None:
            raise ReconcilerError(f"target {target.name!r} has no identity.clerk.webhook_secret")
        self.target = target
        self.ledger = ledger
        self.verifier = Webhook(spec.clerk.webhook_secret.reveal())

    def handle(self, headers: Mapping[str, str], body: bytes) -> WebhookResponse:
        lowered = {k.lower(): v for k, v in headers.items()}
        response = self._handle(lowered, body)
        if response.outcome == "rejected":
            # A warning, not an error: the sender is wrong, not the daemon. The reason names
            # no header's value (a signature is no secret, but has no place in a log).
            log.warning(
                "webhook delivery %.80r to target %s rejected (%d): %s",
                lowered.get("svix-id", ""),
                self.target.name,
                response.status,
                response.body.get("error", ""),
            )
        return response

    def _handle(self, lowered: Mapping[str, str], body: bytes) -> WebhookResponse:
        missing = [h for h in HEADERS if not lowered.get(h)]
        if missing:
            return WebhookResponse(400, {"error": f"missing header {missing[0]}"}, "rejected")
        if len(lowered["svix-id"]) > MAX_ID:
            return WebhookResponse(
                400, {"error": f"malformed svix-id header: over {MAX_ID} characters"}, "rejected"
            )
        sent = _sent_at(lowered["svix-timestamp"])
        if sent is None:
            return WebhookResponse(
                400,
                {"error": "malformed svix-timestamp header: not a Unix time in seconds"},
                "rejected",
            )
        malformed = _malformed(lowered["svix-signature"], body)
        if malformed:
            return WebhookResponse(400, {"error": malformed}, "rejected")
        try:
            self.verifier.verify(body, {h: lowered[h] for h in HEADERS})
        except WebhookVerificationError as exc:
            return WebhookResponse(401, {"error": f"rejected: {exc}"}, "rejected")
        except ValueError:
            # The checks above leave nothing svix cannot parse; should one slip through, it
            # is the sender's malformed request all the same.
            return WebhookResponse(400, {"error": "malformed signature headers"}, "rejected")
        event_id = lowered["svix-id"]
        try:
            event = json.loads(body)
            kind, data = str(event["type"]), event["data"]
            key = str(data["id"])
        except (ValueError, KeyError, TypeError):
            return WebhookResponse(400, {"error": "not a Clerk user event"})
        when = _event_time(data, sent)
        # One attempt of a delivery takes it; every other (a retry after a lost answer, the
        # same delivery sent many times at once) changes nothing and is acknowledged, or
        # Svix would retry it for days.
        if not self.ledger.claim_webhook(event_id, self.target.name, key, kind, when):
            return WebhookResponse(200, {"result": "duplicate delivery"}, "replayed")
        try:
            outcome, response = self._process(kind, key, data, when)
        except ReconcilerError as exc:
            self.ledger.release_webhook(event_id)  # Svix tries again; that attempt takes it
            return WebhookResponse(503, {"error": redact(str(exc))}, "failed")
        except BaseException:
            self.ledger.release_webhook(event_id)
            raise
        self.ledger.settle_webhook(event_id, outcome)
        return WebhookResponse(200, response, outcome)

    def _process(
        self, kind: str, key: str, data: dict[str, Any], when: datetime
    ) -> tuple[str, dict[str, Any]]:
        """A claimed delivery's outcome and answer."""
        if kind not in ("user.created", "user.updated", "user.deleted"):
            return "ignored", {"result": "ignored", "type": kind}
        latest = self.ledger.latest_event_time(self.target.name, key)
        if latest is not None and when < latest:
            return "out-of-order", {"result": "ignored: older than an applied event"}
        outcome, result = self._apply(kind, key, data)
        return outcome, {"result": result}

    def _apply(self, kind: str, key: str, data: dict[str, Any]) -> tuple[str, str]:
        """``("applied", what changed)``, ``("deferred", why)`` for the sync to do, or
        ``("not-taken", why)`` for a user the table cannot take."""
        target, spec = self.target, self.target.identity
        assert spec is not None
        if target.suspend or target.apply == "manual":
            held = "suspend: true" if target.suspend else "apply: manual"
            return "deferred", f"deferred: {held}; the users table is changed only by a sync"
        deletes = kind == "user.deleted" and spec.orphans != "report"
        if deletes and target.backup and "identity-delete" in target.backup.before:
            return "deferred", (
                "deferred: backup.before includes identity-delete; the next sync backs up, "
                "then deletes"
            )
        db = connect(target.database, application_name="reconciler-webhook")
        try:
            table = UsersTable(db, spec)
            if deletes:
                window = target.schedule.identity or DELETION_WINDOW
                since = datetime.now(UTC) - timedelta(seconds=window)
                spent = self.ledger.webhook_deletions_since(target.name, since)
                users = table.live_users()
                if spent >= spec.max_deletions.limit(users):
                    return "deferred", (
                        f"deferred: webhooks deleted {spent} of max_deletions "
                        f"({spec.max_deletions.describe(users)}) in the last {window:g} s; "
                        "the next sync applies the guard"
                    )
            if kind == "user.deleted":
                return "applied", table.remove_one(key)
            user = from_clerk(data)
            result = table.upsert_one(user, create=spec.missing == "create")
            if result == "not-taken":
                # As the sync counts them (identity_drift not_taken): acknowledged, since no
                # retry can change them; the user is taken once the column has a value.
                return "not-taken", (
                    f"not taken: {spec.table} requires {', '.join(table.empty_required(user))}"
                    ", which this user leaves empty"
                )
            return "applied", result
        finally:
            db.close()


def _sent_at(timestamp: str) -> datetime | None:
    """``svix-timestamp`` read as svix reads it, or None where svix cannot. svix takes any
    number ``float()`` does (``1796165095.0`` too), checks its 5 minutes against that, and
    signs the whole second below it: the time is that second."""
    try:
        return datetime.fromtimestamp(math.floor(float(timestamp)), UTC)
    except (ValueError, OverflowError, OSError):  # not a number, NaN, infinite, out of range
        return None


def _malformed(signature: str, body: bytes) -> str | None:
    """Why svix could not even check this delivery, or None. svix reads the body as UTF-8
    and ``svix-signature`` as space-separated ``version,signature`` entries, decoding the
    ``v1`` ones as base64 (entries of other versions it skips); what it cannot parse, it
    raises on. An entry with an empty part is malformed too: Svix never sends one."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    for entry in signature.split(" "):
        problem = None
        version, comma, value = entry.partition(",")
        if not entry:
            problem = "an entry is missing (a space too many)"
        elif not comma:
            problem = "an entry has no comma (version,signature)"
        elif "," in value:
            problem = "an entry has more than one comma"
        elif not version or not value:
            problem = "an entry is missing its version or its signature"
        elif version == "v1":
            try:
                base64.b64decode(value)  # as svix decodes it
            except ValueError:
                problem = "a v1 signature is not base64"
        if problem:
            return f"malformed svix-signature header: {problem}"
    return None


def _event_time(data: dict[str, Any], sent: datetime) -> datetime:
    """The user's own ``updated_at`` when present (ms), else the end of the second Svix
    sent the event in (its timestamp has whole seconds; a deletion follows the update)."""
    updated = data.get("updated_at")
    if isinstance(updated, int | float):
        return datetime.fromtimestamp(updated / 1000, UTC)
    return sent + timedelta(milliseconds=999)


def webhook_route(
    hook: ClerkWebhook, count: Callable[[str], None] | None = None
) -> Callable[[Mapping[str, str], bytes], tuple[int, str, bytes]]:
    """The handler in the shape the daemon's HTTP server mounts; ``count`` is told each
    delivery's outcome."""

    def serve(headers: Mapping[str, str], body: bytes) -> tuple[int, str, bytes]:
        response = hook.handle(headers, body)
        if count is not None:
            count(response.outcome)
        return response.status, "application/json", json.dumps(response.body).encode()

    return serve
