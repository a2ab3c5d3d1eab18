"""Sync from the Clerk double over real HTTP: first sync, re-sync, and the guard against a
provider's bad day (a failure on page 37 of 40, a count that disagrees, rate limits)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.act import reconcile_schema
from reconciler.act.identity import IdentityOutcome, reconcile_identity
from reconciler.identity.clerk import ClerkProvider
from reconciler.identity.clerk_user import from_clerk
from reconciler.ledger import Ledger
from reconciler.policy import Policy, load_policy
from reconciler.secrets import Secret
from tests.conftest import PRISMA_PG, pg_query
from tests.identity.doubles import ClerkDouble, Population, clerk_user

KEY = "sk_test_double_key_123"
LISTED = 40 * 500  # forty full pages
# users.email is NOT NULL: Clerk users without an email address (phone sign-ups) are
# reported as not taken, never inserted half-empty.
EMAILS = [from_clerk(clerk_user(i)).email is not None for i in range(LISTED)]
USERS = sum(EMAILS)


@pytest.fixture
def clerk() -> Iterator[ClerkDouble]:
    with ClerkDouble(Population(LISTED), KEY) as double:
        yield double


@pytest.fixture
def policy(pg_url: str, tmp_path: Path, clerk: ClerkDouble) -> Policy:
    shutil.copytree(PRISMA_PG, tmp_path / "migrations")
    (tmp_path / "policy.yaml").write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n"
        f"    database: {pg_url}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    identity:\n      provider: clerk\n"
        f"      clerk: {{secret_key: {KEY}, api_url: '{clerk.url}'}}\n"
        "      key: clerk_id\n"
        "      columns: {email: email, first_name: first_name, last_name: last_name}\n"
        "      orphans: delete\n"
        "      max_deletions: {count: 100000, percent: 100}\n"
    )
    loaded = load_policy(tmp_path / "policy.yaml", environ={})
    with Ledger(loaded.ledger) as ledger:
        assert reconcile_schema(loaded.targets[0], ledger, trigger="t", source="p").in_sync
    return loaded


def sync(policy: Policy, clerk: ClerkDouble) -> IdentityOutcome:
    with (
        ClerkProvider(Secret(KEY), clerk.url, backoff=0.01, max_retries=2) as provider,
        Ledger(policy.ledger) as ledger,
    ):
        provider._sleep = lambda seconds: None  # type: ignore[method-assign]
        return reconcile_identity(
            policy.targets[0], ledger, dry_run=False, trigger="t", source="p", provider=provider
        )


def users(url: str) -> int:
    return int(pg_query(url, "SELECT count(*) FROM users")[0][0])  # type: ignore[arg-type]


def test_first_sync_and_no_op_resync(policy: Policy, clerk: ClerkDouble, pg_url: str) -> None:
    first = sync(policy, clerk)
    assert first.in_sync, first.message
    assert first.applied is not None
    assert first.applied.created == USERS
    assert len(first.applied.rejected) == LISTED - USERS > 0
    assert f"{LISTED - USERS} not taken by users" in first.message
    assert users(pg_url) == USERS
    again = sync(policy, clerk)
    assert again.applied is not None
    assert (again.applied.created, again.applied.updated, again.applied.deleted) == (0, 0, 0)


def test_failure_on_page_37_of_40_deletes_nobody(
    policy: Policy, clerk: ClerkDouble, pg_url: str
) -> None:
    sync(policy, clerk)
    clerk.fail_from_page(37, status=502)
    outcome = sync(policy, clerk)
    assert outcome.reason == "IncompleteListing", outcome.message
    assert users(pg_url) == USERS


def test_count_that_disagrees_deletes_nobody(
    policy: Policy, clerk: ClerkDouble, pg_url: str
) -> None:
    sync(policy, clerk)
    clerk.population.remove(5)
    clerk.count_answer = LISTED + 3
    outcome = sync(policy, clerk)
    assert outcome.reason == "IncompleteListing"
    assert "counts" in outcome.message
    assert users(pg_url) == USERS


def test_truncated_page_deletes_nobody(policy: Policy, clerk: ClerkDouble, pg_url: str) -> None:
    sync(policy, clerk)
    clerk.truncate_page(12, "cut")
    outcome = sync(policy, clerk)
    assert outcome.reason == "IncompleteListing"
    assert users(pg_url) == USERS


def test_rate_limits_are_waited_out(policy: Policy, clerk: ClerkDouble, pg_url: str) -> None:
    clerk.rate_limit(3)
    outcome = sync(policy, clerk)
    assert outcome.in_sync, outcome.message
    assert users(pg_url) == USERS


def test_a_removed_user_is_deleted_when_the_listing_is_whole(
    policy: Policy, clerk: ClerkDouble, pg_url: str
) -> None:
    sync(policy, clerk)
    clerk.population.remove(EMAILS.index(True))
    outcome = sync(policy, clerk)
    assert outcome.applied is not None
    assert outcome.applied.deleted == 1
    assert users(pg_url) == USERS - 1


def test_a_user_skipped_by_offset_paging_is_not_deleted(
    policy: Policy, clerk: ClerkDouble, pg_url: str
) -> None:
    """Listed by offset (an API without the cursor), a user deleted while the listing runs
    moves every later user one place up: the first user of the next page is never listed,
    and the counts before and after agree with the listing. Asked about on its own, that
    user is still there: nothing is deleted, and the next run deletes only the one gone."""
    sync(policy, clerk)
    gone, skipped = EMAILS.index(True), 3 * 500
    assert EMAILS[skipped]
    clerk.reject_starting_after = True
    clerk.after_page(3, lambda: clerk.population.remove(gone))
    outcome = sync(policy, clerk)
    assert outcome.reason == "IncompleteListing", outcome.message
    assert "left out 1 user that clerk still has" in outcome.message
    assert clerk_user(skipped)["id"] in outcome.message
    assert users(pg_url) == USERS
    again = sync(policy, clerk)
    assert again.in_sync, again.message
    assert again.applied is not None
    assert again.applied.deleted == 1
    assert users(pg_url) == USERS - 1
    left = pg_query(pg_url, "SELECT 1 FROM users WHERE clerk_id = %s", (clerk_user(gone)["id"],))
    assert left == []


def test_an_answer_that_is_not_a_clerk_404_stops_the_deletion(
    policy: Policy, clerk: ClerkDouble, pg_url: str
) -> None:
    sync(policy, clerk)
    clerk.population.remove(EMAILS.index(True))
    clerk.html_lookups = True
    outcome = sync(policy, clerk)
    assert outcome.reason == "ProviderUnavailable", outcome.message
    assert "HTTP 404 Not Found (not an answer that the user is gone: nothing deleted)" in (
        outcome.message
    )
    assert users(pg_url) == USERS
