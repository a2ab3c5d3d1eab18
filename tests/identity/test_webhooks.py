"""Clerk webhooks over real HTTP: verified, deduplicated, ordered, applied."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from svix.webhooks import Webhook, WebhookVerificationError

from reconciler.act import reconcile_schema
from reconciler.db.url import parse_database_url
from reconciler.identity.webhooks import ClerkWebhook, webhook_route
from reconciler.ledger import Ledger
from reconciler.ledger.store import WEBHOOK_CLAIM_TIMEOUT
from reconciler.policy import load_policy
from reconciler.runtime.http import Server
from tests.conftest import PRISMA_PG, pg_query

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signatures_match_svix_test_vector() -> None:
    signed = Webhook(SECRET).sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        '{"test": 2432232314}',
    )
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def clerk_user(i: int, email: str, updated_ms: int) -> dict[str, Any]:
    return {
        "id": f"user_{i}",
        "object": "user",
        "primary_email_address_id": f"idn_{i}",
        "email_addresses": [
            {"id": f"idn_x{i}", "email_address": "other@example.com"},
            {"id": f"idn_{i}", "email_address": email},
        ],
        "first_name": "Ada",
        "last_name": "Lovelace",
        "banned": False,
        "locked": False,
        "created_at": updated_ms,
        "updated_at": updated_ms,
        "public_metadata": {},
    }


class Endpoint:
    def __init__(self, url: str, db_url: str, ledger: Ledger, outcomes: list[str]) -> None:
        self.url, self.db_url, self.ledger = url, db_url, ledger
        self.outcomes = outcomes
        """Each delivery's outcome, as the daemon's metrics count it."""
        self.counter = 0

    def send(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        msg_id: str | None = None,
    ) -> httpx.Response:
        self.counter += 1
        msg_id = msg_id or f"msg_{self.counter}_{time.time_ns()}"
        body = json.dumps({"type": kind, "object": "event", "data": data})
        return self.post(body, signed(msg_id, body, secret=secret, timestamp=timestamp))

    def post(self, body: str | bytes, headers: Mapping[str, str | bytes]) -> httpx.Response:
        return httpx.post(f"{self.url}/webhooks/clerk", content=body, headers=headers)

    def deliveries(self) -> list[tuple[Any, ...]]:
        """The ledger's record of every delivery: ``(svix-id, user, outcome)``."""
        with self.ledger.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, user_key, outcome FROM webhook_events ORDER BY id"
            ).fetchall()
        return [tuple(r) for r in rows]

    def users(self) -> dict[str, tuple[Any, ...]]:
        rows = pg_query(
            self.db_url,
            "SELECT clerk_id, email, deleted_at IS NOT NULL FROM users WHERE clerk_id IS NOT NULL",
        )
        return {str(r[0]): (r[1], r[2]) for r in rows}


def signed(
    msg_id: str, body: str, *, secret: str = SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Svix sends with ``body``: signed with the svix library."""
    when = datetime.fromtimestamp(timestamp or int(time.time()), UTC)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(when.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, when, body),
        "content-type": "application/json",
    }


@contextmanager
def serving(
    pg_url: str,
    tmp_path: Path,
    *,
    identity: str = "",
    target: str = "",
    ledger_url: str = "sqlite:///ledger.db",
) -> Iterator[Endpoint]:
    """The webhook endpoint of a Clerk target on PostgreSQL, its schema applied; ``identity``
    and ``target`` are policy lines added to those sections."""
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")
    (tmp_path / "policy.yaml").write_text(
        f"ledger: {ledger_url}\ntargets:\n  - name: shop\n"
        f"    database: {pg_url}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        f"{target}"
        "    identity:\n      provider: clerk\n"
        f"      clerk: {{secret_key: sk_test_x1y2z3, webhook_secret: '{SECRET}'}}\n"
        "      key: clerk_id\n      columns: {email: email, first_name: first_name}\n"
        "      orphans: soft-delete\n      soft_delete_column: deleted_at\n"
        f"{identity}"
    )
    policy = load_policy(tmp_path / "policy.yaml", environ={})
    with Ledger(policy.ledger) as ledger:
        reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
        hook = ClerkWebhook(policy.targets[0], ledger)
        outcomes: list[str] = []
        route = webhook_route(hook, outcomes.append)
        with Server("127.0.0.1", 0, {("POST", "/webhooks/clerk"): route}) as srv:
            yield Endpoint(srv.url, pg_url, ledger, outcomes)


@pytest.fixture
def endpoint(pg_url: str, tmp_path: Path) -> Iterator[Endpoint]:
    with serving(
        pg_url, tmp_path, identity="      max_deletions: {count: 10, percent: 100}\n"
    ) as served:
        yield served


def test_created_updated_deleted(endpoint: Endpoint) -> None:
    now = int(time.time() * 1000) - 1500
    created = endpoint.send("user.created", clerk_user(1, "ada@example.com", now))
    assert created.status_code == 200
    assert created.json() == {"result": "created"}
    assert endpoint.users() == {"user_1": ("ada@example.com", False)}
    updated = endpoint.send("user.updated", clerk_user(1, "ada@new.example.com", now + 500))
    assert updated.json() == {"result": "updated"}
    deleted = endpoint.send("user.deleted", {"object": "user", "id": "user_1", "deleted": True})
    assert deleted.json() == {"result": "soft-deleted"}
    assert endpoint.users() == {"user_1": ("ada@new.example.com", True)}


def test_forged_signature_is_refused(endpoint: Endpoint) -> None:
    forged = endpoint.send(
        "user.created", clerk_user(2, "eve@example.com", 1), secret="whsec_" + "A" * 32
    )
    assert forged.status_code == 401
    assert endpoint.users() == {}


def test_stale_timestamp_is_refused(endpoint: Endpoint) -> None:
    stale = endpoint.send(
        "user.created", clerk_user(3, "old@example.com", 1), timestamp=int(time.time()) - 6 * 60
    )
    assert stale.status_code == 401
    assert endpoint.users() == {}


def test_missing_headers_are_a_bad_request(endpoint: Endpoint) -> None:
    response = httpx.post(f"{endpoint.url}/webhooks/clerk", content=b"{}")
    assert response.status_code == 400
    assert "svix-id" in response.json()["error"]


def test_replayed_delivery_changes_nothing(endpoint: Endpoint) -> None:
    now = int(time.time() * 1000)
    first = endpoint.send("user.created", clerk_user(4, "a@example.com", now), msg_id="msg_r")
    assert first.status_code == 200
    pg_query(endpoint.db_url, "UPDATE users SET email = 'changed@app' WHERE clerk_id = 'user_4'")
    replay = endpoint.send("user.updated", clerk_user(4, "a@example.com", now + 5), msg_id="msg_r")
    # Acknowledged, or Svix would retry it for days.
    assert replay.status_code == 200
    assert replay.json() == {"result": "duplicate delivery"}
    assert endpoint.users()["user_4"][0] == "changed@app"
    assert endpoint.outcomes == ["applied", "replayed"]


def test_out_of_order_events_keep_the_newest(endpoint: Endpoint) -> None:
    now = int(time.time() * 1000)
    endpoint.send("user.created", clerk_user(5, "v1@example.com", now))
    newer = endpoint.send("user.updated", clerk_user(5, "v3@example.com", now + 2000))
    assert newer.json() == {"result": "updated"}
    older = endpoint.send("user.updated", clerk_user(5, "v2@example.com", now + 1000))
    assert older.status_code == 200
    assert older.json()["result"].startswith("ignored")
    assert endpoint.users()["user_5"][0] == "v3@example.com"


def deleted(endpoint: Endpoint, i: int) -> httpx.Response:
    return endpoint.send("user.deleted", {"object": "user", "id": f"user_{i}", "deleted": True})


def test_a_target_that_does_not_act_defers_every_event(pg_url: str, tmp_path: Path) -> None:
    with serving(pg_url, tmp_path, target="    suspend: true\n") as endpoint:
        now = int(time.time() * 1000)
        created = endpoint.send("user.created", clerk_user(6, "s@example.com", now), msg_id="m6")
        assert created.status_code == 200
        assert created.json()["result"].startswith("deferred: suspend: true")
        assert endpoint.users() == {}
        # Acknowledged once: a redelivery is a duplicate.
        again = endpoint.send("user.created", clerk_user(6, "s@example.com", now), msg_id="m6")
        assert again.json() == {"result": "duplicate delivery"}


def test_deletions_wait_for_the_backup_the_policy_asks_for(pg_url: str, tmp_path: Path) -> None:
    backup = (
        "    backup: {driver: pg_dump, dir: backups, before: [schema-change, identity-delete]}\n"
    )
    with serving(
        pg_url,
        tmp_path,
        target=backup,
        identity="      max_deletions: {count: 10, percent: 100}\n",
    ) as endpoint:
        now = int(time.time() * 1000)
        assert endpoint.send("user.created", clerk_user(7, "b@example.com", now)).status_code == 200
        response = deleted(endpoint, 7)
        assert response.status_code == 200
        assert "identity-delete" in response.json()["result"]
        assert endpoint.users() == {"user_7": ("b@example.com", False)}


def test_a_burst_of_deletions_stops_at_max_deletions(pg_url: str, tmp_path: Path) -> None:
    with serving(
        pg_url, tmp_path, identity="      max_deletions: {count: 2, percent: 100}\n"
    ) as endpoint:
        now = int(time.time() * 1000)
        for i in range(10, 14):
            endpoint.send("user.created", clerk_user(i, f"u{i}@example.com", now))
        results = [deleted(endpoint, i).json()["result"] for i in range(10, 14)]
        assert results[:2] == ["soft-deleted", "soft-deleted"]
        assert all(
            r.startswith(
                "deferred: webhooks deleted 2 of max_deletions (2 here: the lower of count 2 and "
                "percent 100 of 2 users = 2) in the last "
            )
            for r in results[2:]
        )
        live = {key for key, (_, gone) in endpoint.users().items() if not gone}
        assert live == {"user_12", "user_13"}


def test_the_percentage_counts_against_the_live_users(pg_url: str, tmp_path: Path) -> None:
    # 2% of 4 users is 0: the default guard lets no webhook delete from so small a table.
    with serving(pg_url, tmp_path) as endpoint:
        now = int(time.time() * 1000)
        for i in range(20, 24):
            endpoint.send("user.created", clerk_user(i, f"u{i}@example.com", now))
        assert deleted(endpoint, 20).json()["result"].startswith("deferred: webhooks deleted 0")
        assert endpoint.users()["user_20"] == ("u20@example.com", False)


# -- malformed deliveries: a 4xx and a warning, never a 500 ------------------------------


def assert_warned_without_traceback(caplog: pytest.LogCaptureFixture, reason: str) -> None:
    warnings = [r for r in caplog.records if r.name == "reconciler.identity.webhooks"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert reason in warnings[0].getMessage()
    assert warnings[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("v1", "no comma"),
        ("v1g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "no comma"),
        ("v1,abc", "not base64"),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", "not base64"),
        ("v1,", "missing"),
        (",g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "missing"),
        ("v1,a,b", "more than one comma"),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=  v1,abcd", "missing"),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OÉ=", "not base64"),
    ],
)
def test_a_malformed_signature_header_is_a_bad_request(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture, signature: str, reason: str
) -> None:
    body = json.dumps({"type": "user.created", "data": clerk_user(30, "m@example.com", 1)})
    headers = signed("msg_malformed", body) | {"svix-signature": signature}
    with caplog.at_level(logging.WARNING):
        # Sent as the bytes they are: a header is Latin-1 on the wire.
        response = endpoint.post(body, {k: v.encode("latin-1") for k, v in headers.items()})
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed svix-signature header")
    assert reason in response.json()["error"]
    assert endpoint.outcomes == ["rejected"]
    assert_warned_without_traceback(caplog, "malformed svix-signature header")
    assert endpoint.users() == {}
    assert endpoint.deliveries() == []


def test_a_body_that_is_not_utf8_is_a_bad_request(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    text = json.dumps({"type": "user.created", "data": clerk_user(32, "Zoë@example.com", 1)})
    body = text.replace("ë", "\\u00eb").encode().replace(b"\\u00eb", b"\xeb")  # Latin-1
    with caplog.at_level(logging.WARNING):
        response = endpoint.post(body, signed("msg_latin1", text))
    assert response.status_code == 400
    assert response.json() == {"error": "the body is not UTF-8"}
    assert endpoint.outcomes == ["rejected"]
    assert_warned_without_traceback(caplog, "the body is not UTF-8")
    assert endpoint.users() == {}


def test_a_bad_signature_is_unauthorized_and_logged_once(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        forged = endpoint.send(
            "user.created", clerk_user(33, "eve@example.com", 1), secret="whsec_" + "B" * 32
        )
    assert forged.status_code == 401
    assert endpoint.outcomes == ["rejected"]
    assert_warned_without_traceback(caplog, "No matching signature found")
    assert "B" * 32 not in caplog.text
    assert SECRET not in caplog.text
    assert forged.request.headers["svix-signature"] not in caplog.text


# -- the same delivery, many times at once -------------------------------------------------


AUDIT = """
CREATE TABLE users_changes (op text NOT NULL, clerk_id text, email text);
CREATE FUNCTION users_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO users_changes VALUES (TG_OP, NEW.clerk_id, NEW.email);
  RETURN NEW;
END $$;
CREATE TRIGGER users_audit AFTER INSERT OR UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION users_audit();
"""


def at_once(count: int, send: Any) -> list[httpx.Response]:
    """``send()`` from ``count`` threads released together."""
    start = threading.Barrier(count)
    responses: list[httpx.Response] = []

    def run() -> None:
        start.wait()
        response = send()
        responses.append(response)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(responses) == count
    return responses


@pytest.mark.parametrize("ledger", ["sqlite", "postgresql"])
def test_one_delivery_sent_ten_times_at_once_is_applied_once(
    pg_url: str, other_pg_url: str, tmp_path: Path, ledger: str
) -> None:
    ledger_url = "sqlite:///ledger.db" if ledger == "sqlite" else other_pg_url
    with serving(pg_url, tmp_path, ledger_url=ledger_url) as endpoint:
        pg_query(pg_url, AUDIT)
        now = int(time.time() * 1000)
        for kind, email, result in (
            ("user.created", "ten@example.com", "created"),
            ("user.updated", "ten@new.example.com", "updated"),
        ):
            body = json.dumps({"type": kind, "data": clerk_user(40, email, now)})
            headers = signed(f"msg_{kind}", body)
            responses = at_once(10, lambda b=body, h=headers: endpoint.post(b, h))
            assert sorted(r.status_code for r in responses) == [200] * 10
            answers = Counter(r.json()["result"] for r in responses)
            assert answers == {result: 1, "duplicate delivery": 9}
            now += 1000
        assert endpoint.users() == {"user_40": ("ten@new.example.com", False)}
        changes = pg_query(pg_url, "SELECT op, clerk_id, email FROM users_changes")
        assert changes == [
            ("INSERT", "user_40", "ten@example.com"),
            ("UPDATE", "user_40", "ten@new.example.com"),
        ]
        assert endpoint.deliveries() == [
            ("msg_user.created", "user_40", "applied"),
            ("msg_user.updated", "user_40", "applied"),
        ]
        assert sorted(endpoint.outcomes) == ["applied"] * 2 + ["replayed"] * 18


def test_a_delivery_that_failed_is_taken_again(endpoint: Endpoint) -> None:
    """A delivery answered 503 is not a duplicate when Svix retries it."""
    pg_query(endpoint.db_url, "ALTER TABLE users RENAME COLUMN first_name TO given_name")
    user = clerk_user(41, "retry@example.com", int(time.time() * 1000))
    failed = endpoint.send("user.created", user, msg_id="msg_retry")
    assert failed.status_code == 503
    assert endpoint.deliveries() == []
    pg_query(endpoint.db_url, "ALTER TABLE users RENAME COLUMN given_name TO first_name")
    retried = endpoint.send("user.created", user, msg_id="msg_retry")
    assert retried.status_code == 200
    assert retried.json() == {"result": "created"}
    assert endpoint.outcomes == ["failed", "applied"]


# -- users the table cannot take -------------------------------------------------------------


def signed_up_without_email(i: int, updated_ms: int, **by: Any) -> dict[str, Any]:
    """A Clerk user as Clerk's documented ``user.created`` example has it, but signed up
    with a phone number, a username or a web3 wallet: no email address at all."""
    return {
        "birthday": "",
        "created_at": updated_ms,
        "email_addresses": [],
        "external_accounts": [],
        "external_id": None,
        "first_name": "Grace",
        "gender": "",
        "id": f"user_{i}",
        "image_url": "https://img.example.com/x",
        "last_name": None,
        "last_sign_in_at": None,
        "object": "user",
        "password_enabled": False,
        "phone_numbers": [],
        "primary_email_address_id": None,
        "primary_phone_number_id": None,
        "primary_web3_wallet_id": None,
        "private_metadata": {},
        "profile_image_url": "https://img.example.com/y",
        "public_metadata": {},
        "two_factor_enabled": False,
        "unsafe_metadata": {},
        "updated_at": updated_ms,
        "username": None,
        "web3_wallets": [],
        **by,
    }


SIGN_UPS = {
    "phone": {
        "phone_numbers": [
            {"id": "idn_p1", "object": "phone_number", "phone_number": "+15555550100"}
        ],
        "primary_phone_number_id": "idn_p1",
    },
    "username": {"username": "grace", "password_enabled": True},
    "web3": {
        "web3_wallets": [
            {"id": "idn_w1", "object": "web3_wallet", "web3_wallet": "0x0000000000000000"}
        ],
        "primary_web3_wallet_id": "idn_w1",
    },
}


@pytest.mark.parametrize("sign_up", sorted(SIGN_UPS))
def test_a_user_without_email_is_not_taken(endpoint: Endpoint, sign_up: str) -> None:
    user = signed_up_without_email(50, int(time.time() * 1000), **SIGN_UPS[sign_up])
    created = endpoint.send("user.created", user, msg_id="msg_no_email")
    assert created.status_code == 200
    assert created.json() == {
        "result": "not taken: users requires email, which this user leaves empty"
    }
    assert endpoint.users() == {}
    assert endpoint.deliveries() == [("msg_no_email", "user_50", "not-taken")]
    again = endpoint.send("user.created", user, msg_id="msg_no_email")
    assert again.json() == {"result": "duplicate delivery"}
    assert endpoint.outcomes == ["not-taken", "replayed"]


def test_a_user_who_drops_their_email_keeps_the_one_the_table_has(endpoint: Endpoint) -> None:
    now = int(time.time() * 1000)
    assert endpoint.send("user.created", clerk_user(51, "kept@example.com", now)).status_code == 200
    # Ada moves to signing in with her phone, drops her email address and changes her name.
    user = signed_up_without_email(51, now + 1000, **SIGN_UPS["phone"])
    updated = endpoint.send("user.updated", user)
    assert updated.status_code == 200
    assert updated.json() == {"result": "updated"}
    rows = pg_query(
        endpoint.db_url, "SELECT email, first_name FROM users WHERE clerk_id = 'user_51'"
    )
    assert rows == [("kept@example.com", "Grace")]
    assert endpoint.outcomes == ["applied", "applied"]


# -- the timestamp as Svix's library reads it ------------------------------------------------


def test_a_timestamp_written_as_a_float_is_read_as_svix_reads_it(endpoint: Endpoint) -> None:
    now = int(time.time())
    user = clerk_user(60, "float@example.com", now * 1000)
    body = json.dumps({"type": "user.created", "data": user})
    headers = signed("msg_float", body, timestamp=now) | {"svix-timestamp": f"{now}.0"}
    Webhook(SECRET).verify(body, headers)  # the svix library takes it: so does the endpoint
    response = endpoint.post(body, headers)
    assert response.status_code == 200
    assert response.json() == {"result": "created"}
    assert endpoint.users() == {"user_60": ("float@example.com", False)}
    # The signature covers the whole second; another second is another signature.
    moved = signed("msg_float2", body, timestamp=now) | {"svix-timestamp": f"{now + 1}.0"}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, moved)
    assert endpoint.post(body, moved).status_code == 401


@pytest.mark.parametrize("timestamp", ["soon", "nan", "inf", "-inf", "1e300", "0x6b0e1a27"])
def test_a_timestamp_that_is_no_time_is_a_bad_request(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture, timestamp: str
) -> None:
    body = json.dumps({"type": "user.created", "data": clerk_user(31, "t@example.com", 1)})
    headers = signed("msg_timestamp", body) | {"svix-timestamp": timestamp}
    with caplog.at_level(logging.WARNING):
        response = endpoint.post(body, headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed svix-timestamp header")
    assert endpoint.outcomes == ["rejected"]
    assert_warned_without_traceback(caplog, "malformed svix-timestamp header")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_delivery_is_claimed_once_until_settled_released_or_abandoned(
    pg_url: str, tmp_path: Path, kind: str
) -> None:
    url = pg_url if kind == "postgresql" else f"sqlite:///{tmp_path}/ledger.db"
    now = datetime.now(UTC)
    with Ledger(parse_database_url(url)) as ledger:
        assert ledger.claim_webhook("msg_a", "shop", "user_1", "user.updated", now)
        assert not ledger.claim_webhook("msg_a", "shop", "user_1", "user.updated", now)
        ledger.release_webhook("msg_a")  # it failed: the next attempt processes it
        assert ledger.claim_webhook("msg_a", "shop", "user_1", "user.updated", now)
        # A claim its process never settled nor released is taken over once it is old.
        later = now + timedelta(seconds=WEBHOOK_CLAIM_TIMEOUT + 60)
        assert not ledger.claim_webhook("msg_a", "shop", "user_1", "user.updated", now, now=now)
        assert ledger.claim_webhook("msg_a", "shop", "user_1", "user.updated", now, now=later)
        ledger.settle_webhook("msg_a", "applied")
        much_later = later + timedelta(days=1)
        assert not ledger.claim_webhook(
            "msg_a", "shop", "user_1", "user.updated", now, now=much_later
        )
        ledger.release_webhook("msg_a")  # settled: stays
        assert ledger.webhook_seen("msg_a")
        assert ledger.latest_event_time("shop", "user_1") == now


def test_an_svix_id_longer_than_the_ledger_keeps_is_a_bad_request(
    pg_url: str, other_pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(pg_url, tmp_path, ledger_url=other_pg_url) as endpoint:
        with caplog.at_level(logging.WARNING):
            response = endpoint.send(
                "user.created", clerk_user(70, "long@example.com", 1), msg_id="msg_" + "x" * 200
            )
        assert response.status_code == 400
        assert response.json() == {"error": "malformed svix-id header: over 128 characters"}
        assert endpoint.outcomes == ["rejected"]
        assert_warned_without_traceback(caplog, "over 128 characters")
        assert endpoint.users() == {}
