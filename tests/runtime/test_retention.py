"""Ledger retention: a daemon in sync writes a run per target and interval; the ledger keeps
what changed something for a year, the rest for a week, and each target's last run always."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.db.url import parse_database_url
from reconciler.ledger import BackupInfo, Ledger

DAY = 86400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Ledger]:
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
    else:
        url = f"sqlite:///{tmp_path}/ledger.db"
    with Ledger(parse_database_url(url)) as opened:
        yield opened


def quiet_run(ledger: Ledger, target: str, concern: str = "schema") -> int:
    run_id = ledger.start_run(target, concern, "schedule", "policy.yaml")
    ledger.finish_run(run_id, "InSync", "at head")
    return run_id


def ids(ledger: Ledger, target: str, concern: str = "schema") -> list[int]:
    return sorted(r.id for r in ledger.runs(target, concern, limit=100))


def test_quiet_runs_go_after_a_week_the_others_after_a_year(ledger: Ledger) -> None:
    now = datetime.now(UTC)
    for _ in range(3):
        quiet_run(ledger, "shop")
    applied = ledger.start_run("shop", "schema", "schedule", "policy.yaml")
    step = ledger.start_step(applied, "shop", "apply-migration", "20261201_x", "abc")
    ledger.finish_step(step, "applied", 0.1)
    ledger.finish_run(applied, "InSync", "applied 1 migration")
    last = quiet_run(ledger, "shop")
    synced = quiet_run(ledger, "shop", "identity")
    ledger.record_identity(synced, "shop", {"created": 2}, dry_run=False)
    looked = quiet_run(ledger, "shop", "identity")
    ledger.record_identity(looked, "shop", {"listed": 5}, dry_run=False)
    backed_up = quiet_run(ledger, "shop", "backup")
    ledger.record_backup(BackupInfo("b1", "shop", "sqlite", "/b1", "scheduled", backed_up, now))
    backup_failed = quiet_run(ledger, "shop", "backup")
    other = quiet_run(ledger, "billing")
    assert ledger.claim_webhook("msg_1", "shop", "user_1", "user.updated", now)
    ledger.settle_webhook("msg_1", "applied")
    keep = {"runs": 365 * DAY, "quiet": 7 * DAY, "webhooks": 7 * DAY}

    assert ledger.prune(**keep, now=now + timedelta(days=3)) == (0, 0)

    assert ledger.prune(**keep, now=now + timedelta(days=8)) == (3, 1)
    assert ids(ledger, "shop") == [applied, last]  # the newest stays, whatever its age
    assert ids(ledger, "shop", "identity") == [synced, looked]  # looked is the newest
    assert ids(ledger, "billing") == [other]
    assert [s.migration for s in ledger.steps(applied)] == ["20261201_x"]
    assert not ledger.webhook_seen("msg_1")

    assert ids(ledger, "shop", "backup") == [backed_up, backup_failed]

    assert ledger.prune(**keep, now=now + timedelta(days=400)) == (3, 0)
    assert ids(ledger, "shop") == [last]
    assert ledger.steps(applied) == []
    assert ids(ledger, "shop", "identity") == [looked]
    assert ids(ledger, "shop", "backup") == [backup_failed]
    backup = ledger.backup("b1")  # the backup outlives the run that took it
    assert backup is not None
    assert backup.run_id is None
