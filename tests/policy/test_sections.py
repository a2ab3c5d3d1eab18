"""The policy's later sections reject bad input with the file, the line and the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.errors import PolicyError
from reconciler.policy import load_policy

BASE = """targets:
  - name: shop
    database: postgresql://app@db/shop
    migrations: {layout: prisma, path: m}
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "    backup: {driver: sqlite}\n",
            "targets[0]: backup.driver sqlite needs a sqlite:/// database",
        ),
        ("    rehearse: true\n", "rehearse: true needs a `backup:` section"),
        ("    backup: {driver: neon}\n", "driver neon needs a `neon:` section"),
        (
            "    schedule: {backup: 'every night'}\n",
            "targets[0].schedule.backup: not a cron expression",
        ),
        (
            "    schedule: {jitter: 150%}\n",
            "targets[0].schedule.jitter: must be between 0% and 100%",
        ),
        (
            "    identity: {provider: clerk, key: clerk_id}\n",
            "provider clerk needs a `clerk:` section",
        ),
        (
            "    identity: {provider: file, file: {path: u.yaml}, key: clerk_id, "
            "orphans: soft-delete}\n",
            "orphans: soft-delete needs soft_delete_column",
        ),
        (
            "    identity: {provider: file, file: {path: u.yaml}, key: 'clerk id'}\n",
            "targets[0].identity.key: string should match pattern",
        ),
        (
            "    safety: {block: [info]}\n",
            "targets[0].safety.block[0]: must be one of data-loss, will-fail, locking, compat",
        ),
        ("server: {listen: localhost}\n", "server.listen: must be host:port"),
        ("    drift: warn\n", "targets[0].drift: must be one of"),
        ("    schedule: {drift: often}\n", "targets[0].schedule.drift:"),
        (
            "    identity: {provider: clerk, key: clerk_id, clerk: {secret_key: sk_x, "
            "webhook_secret: 'whsec_n0t*base64!'}}\n",
            "targets[0].identity.clerk.webhook_secret: must be the endpoint's signing secret "
            "as Clerk shows it: whsec_ and base64",
        ),
    ],
)
def test_bad_sections(write_policy: Callable[[str], Path], extra: str, expected: str) -> None:
    text = BASE + extra if extra.startswith("    ") else extra + BASE
    with pytest.raises(PolicyError) as caught:
        load_policy(write_policy(text), environ={})
    assert expected in str(caught.value)
    assert str(caught.value).count(":") >= 3  # file:line:column: field
    assert "n0t*base64" not in str(caught.value)


def test_secrets_in_sections_are_hidden(write_policy: Callable[[str], Path]) -> None:
    text = (
        BASE
        + (
            "    identity:\n      provider: clerk\n"
            "      clerk: {secret_key: '${CLERK_SECRET_KEY}', webhook_secret: whsec_abcdefgh}\n"
            "      key: clerk_id\n"
        )
        + "server: {token: '${TOKEN}'}\n"
    )
    policy = load_policy(
        write_policy(text),
        environ={"CLERK_SECRET_KEY": "sk_live_very_secret", "TOKEN": "t0ken-123"},
    )
    shown = repr(policy) + policy.model_dump_json()
    for secret in ("sk_live_very_secret", "t0ken-123", "whsec_abcdefgh"):
        assert secret not in shown
    assert policy.targets[0].identity is not None
    assert policy.targets[0].identity.clerk is not None
    assert policy.targets[0].identity.clerk.secret_key.reveal() == "sk_live_very_secret"


def test_drift_defaults_by_environment(write_policy: Callable[[str], Path]) -> None:
    """Production holds migrations on drift unless told otherwise; elsewhere drift is only
    reported; an explicit value wins; checks run hourly unless set (null: never)."""
    text = (
        BASE + "  - name: stage\n    environment: staging\n    database: postgresql://app@db/s\n"
        "    migrations: {layout: prisma, path: m}\n"
        "  - name: loose\n    drift: report\n    database: postgresql://app@db/l\n"
        "    migrations: {layout: prisma, path: m}\n    schedule: {drift: null}\n"
    )
    shop, stage, loose = load_policy(write_policy(text), environ={}).targets
    assert (shop.drift_mode, stage.drift_mode, loose.drift_mode) == ("block", "report", "report")
    assert (shop.schedule.drift, loose.schedule.drift) == (3600.0, None)
