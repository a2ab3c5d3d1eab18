"""The shipped policies stay valid: users copy them first."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import ROOT

SHIPPED = [ROOT / "config.example.yaml", *sorted((ROOT / "policies").glob("*.yaml"))]


@pytest.mark.parametrize("policy", SHIPPED, ids=lambda p: p.name)
def test_shipped_policy_passes_check(cli: Callable[..., Result], policy: Path) -> None:
    result = cli("check", "--config", policy)
    assert result.exit_code == 0, result.output
    assert "policy valid" in result.stdout


def test_each_shipped_policy_has_a_ledger_and_target_names_of_its_own() -> None:
    """Run one example after another: `status` and `backups` of one show only its runs."""
    from reconciler.policy import load_policy

    policies = {p.name: load_policy(p, environ={}) for p in SHIPPED}
    ledgers = {name: policy.ledger for name, policy in policies.items()}
    assert len(set(ledgers.values())) == len(ledgers), ledgers
    names = [t.name for policy in policies.values() for t in policy.targets]
    assert len(set(names)) == len(names), names


DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "deploy" / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *SHIPPED,
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_policies_a_document_names_exist(document: Path) -> None:
    """A newcomer follows these first: a policy they name must be there to copy."""
    named = re.findall(
        r"(?<![\w/])(config\.example\.yaml|policies/[\w.-]+\.ya?ml)", document.read_text()
    )
    assert [name for name in named if not (ROOT / name).is_file()] == []


def test_the_kubernetes_policy_validates_with_its_secret_filled_in() -> None:
    """The policy the ConfigMap mounts, with the keys of secret.example.yaml set."""
    import yaml

    from reconciler.policy import parse_policy

    manifest = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "configmap.yaml").read_text())
    secret = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "secret.example.yaml").read_text())
    keys = {**secret.get("stringData", {}), **secret.get("data", {})}
    environ = dict.fromkeys(keys, "placeholder")
    environ["LEDGER_URL"] = environ["DATABASE_URL"] = "postgresql://app@db.internal:5432/shop"
    policy = parse_policy(
        manifest["data"]["policy.yaml"], Path("/etc/reconciler/policy.yaml"), environ
    )
    assert [t.name for t in policy.targets] == ["shop"]
    assert policy.server.listen == "0.0.0.0:9108"
