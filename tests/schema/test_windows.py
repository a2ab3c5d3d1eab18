"""Maintenance windows: outside all of them, pending migrations wait (``OutsideWindow``) and
say when they will run; a person can still apply now with ``--ignore-window``."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.errors import PolicyError
from reconciler.policy import load_policy
from reconciler.policy.model import Window
from reconciler.runtime.daemon import Daemon
from reconciler.safety.gate import window_opens
from tests.conftest import PRISMA_SQLITE

Cli = Callable[..., Result]
TUESDAY_EVENING = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 21:00 in Berlin


def window(**fields: object) -> Window:
    return Window.model_validate(fields)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_window_across_midnight_on_weekdays_in_berlin() -> None:
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    nights = [window(days=weekdays, timezone="Europe/Berlin", **{"from": "22:00", "to": "02:00"})]
    assert window_opens(nights, TUESDAY_EVENING) == at("2026-11-24T21:00:00+00:00")
    assert window_opens(nights, at("2026-11-24T21:30:00+00:00")) is None
    assert window_opens(nights, at("2026-11-25T00:30:00+00:00")) is None  # Tuesday's, still
    # Friday night's window closes Saturday 02:00; the next opens Monday 22:00.
    assert window_opens(nights, at("2026-11-28T12:00:00+00:00")) == at("2026-11-30T21:00+00:00")


def test_summer_time_moves_the_window_in_utc() -> None:
    morning = [window(**{"from": "02:00", "to": "04:00", "timezone": "Europe/Berlin"})]
    assert window_opens(morning, at("2026-01-15T12:00:00+00:00")) == at("2026-01-16T01:00+00:00")
    assert window_opens(morning, at("2026-07-15T12:00:00+00:00")) == at("2026-07-16T00:00+00:00")


def test_no_windows_means_any_time_and_several_mean_the_soonest() -> None:
    assert window_opens([], TUESDAY_EVENING) is None
    two = [
        window(**{"from": "23:00", "to": "23:30"}),
        window(days=["wed"], **{"from": "06:00", "to": "07:00"}),
    ]
    assert window_opens(two, TUESDAY_EVENING) == at("2026-11-24T23:00+00:00")


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ('{from: "25:00", to: "02:00"}', 'windows[0].from: must be a time of day such as "02:30"'),
        ('{from: "01:00", to: "02:00", days: [monday]}', "windows[0].days[0]: must be one of"),
        (
            '{from: "01:00", to: "02:00", timezone: Mars/Olympus}',
            "windows[0].timezone: unknown time zone 'Mars/Olympus'",
        ),
        ('{from: "01:00"}', "windows[0].to: required"),
    ],
)
def test_a_bad_window_is_one_line_naming_the_field(
    write_policy: Callable[[str], Path], entry: str, error: str
) -> None:
    path = write_policy(
        "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
        f"    migrations: {{layout: prisma, path: m}}\n    windows:\n      - {entry}\n"
    )
    with pytest.raises(PolicyError) as raised:
        load_policy(path, environ={})
    assert error in str(raised.value)
    assert str(raised.value).startswith(f"{path}:6:")


def test_unquoted_times_read_as_yaml_numbers_still_mean_the_time(
    write_policy: Callable[[str], Path],
) -> None:
    path = write_policy(
        "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
        "    migrations: {layout: prisma, path: m}\n"
        "    windows: [{from: 22:30, to: 02:00}]\n"
    )
    [loaded] = load_policy(path, environ={}).targets[0].windows
    assert (loaded.start.isoformat(), loaded.end.isoformat()) == ("22:30:00", "02:00:00")


def closed_window_policy(tmp_path: Path) -> Path:
    """The SQLite shop with one window, which opens in an hour and closes an hour later."""
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    later = datetime.now(UTC) + timedelta(hours=1)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n"
        "    database: sqlite:///shop.db\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        f'    windows: [{{from: "{later:%H:%M}", to: "{later + timedelta(hours=1):%H:%M}"}}]\n'
    )
    return policy


def tables(db: Path) -> set[str]:
    if not db.exists():
        return set()
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_outside_the_window_apply_waits_unless_a_person_overrides(cli: Cli, tmp_path: Path) -> None:
    policy = closed_window_policy(tmp_path)

    planned = cli("plan", "-c", policy)
    assert planned.exit_code == 2
    assert "outside the maintenance windows: they run when the next opens" in planned.stdout

    waited = cli("apply", "-c", policy, "--yes")
    assert waited.exit_code == 3, waited.output
    assert "OutsideWindow" in waited.output
    assert "users" not in tables(tmp_path / "shop.db")

    status = cli("status", "-c", policy)
    assert "  window     closed; the next opens " in status.stdout

    applied = cli("apply", "-c", policy, "--yes", "--ignore-window")
    assert applied.exit_code == 0, applied.output
    assert "users" in tables(tmp_path / "shop.db")


def test_one_migration_outside_the_window_waits(cli: Cli, tmp_path: Path) -> None:
    policy = closed_window_policy(tmp_path)
    for folder in sorted(p for p in (tmp_path / "migrations").iterdir() if p.is_dir())[1:]:
        shutil.rmtree(folder)
    waited = cli("apply", "-c", policy, "--yes")
    assert waited.exit_code == 3, waited.output
    assert "1 migration waits for the maintenance window, which opens " in waited.output


def test_the_daemon_waits_for_the_window_and_is_not_failing(tmp_path: Path) -> None:
    daemon = Daemon(closed_window_policy(tmp_path))
    try:
        assert daemon.run_once() == 3
        state = daemon.targets["shop"].concern("schema")
        assert state.reason == "OutsideWindow"
        assert state.failures == 0  # waiting is not failing: no retries, no failure alert
        opens = daemon.targets["shop"].schema["window_opens"]
        assert datetime.fromisoformat(opens) > datetime.now(UTC)  # shown in /status
        assert "users" not in tables(tmp_path / "shop.db")
    finally:
        daemon.stop(grace=0)


@pytest.mark.parametrize(("kept", "waiting"), [(7, "6 migrations wait"), (2, "1 migration waits")])
def test_a_window_that_closes_mid_run_stops_before_the_next_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: int, waiting: str
) -> None:
    """The clock is the one thing faked: the window is open for the first migration only."""
    from reconciler.act import engine, reconcile_schema
    from reconciler.ledger import Ledger

    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    for folder in sorted(p for p in (tmp_path / "migrations").iterdir() if p.is_dir())[kept:]:
        shutil.rmtree(folder)
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n"
        "    database: sqlite:///shop.db\n"
        "    migrations: {layout: prisma, path: migrations}\n"
    )
    opens = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    answers = iter([None])
    monkeypatch.setattr(engine, "window_opens", lambda windows, now: next(answers, opens))
    policy = load_policy(policy_path, environ={})
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
    assert outcome.reason == "OutsideWindow"
    assert f"applied 1; the maintenance window closed, {waiting} for the next" in outcome.message
    assert [r.outcome for r in outcome.results] == ["applied"]
    assert "users" in tables(tmp_path / "shop.db")
    assert "subscriptions" not in tables(tmp_path / "shop.db")


def test_the_daemon_comes_back_as_the_window_opens(tmp_path: Path) -> None:
    import time

    daemon = Daemon(closed_window_policy(tmp_path))
    daemon.start()
    try:
        deadline = time.monotonic() + 20
        while daemon.targets["shop"].concern("schema").reason != "OutsideWindow":
            assert time.monotonic() < deadline, "no schema run"
            time.sleep(0.05)
        assert daemon.scheduler is not None
        job = daemon.scheduler.get_job("shop:schema:window")
        opens = datetime.fromisoformat(daemon.targets["shop"].schema["window_opens"])
        assert job is not None
        assert job.next_run_time == opens + timedelta(seconds=1)
    finally:
        daemon.stop(grace=0)
