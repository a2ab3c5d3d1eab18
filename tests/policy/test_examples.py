"""The shipped policies stay valid: users copy them first."""

from __future__ import annotations

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
