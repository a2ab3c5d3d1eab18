"""Every condition reason a run can end with has a section in docs/reasons.md, in the kind
(in sync, waiting, stalled) the daemon treats it as."""

from __future__ import annotations

import re

from reconciler.runtime.conditions import STALLING, SUCCESS, WAITING
from tests.conftest import ROOT


def sections() -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    current = ""
    for line in (ROOT / "docs" / "reasons.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = line[3:]
            kinds[current] = set()
        elif match := re.match(r"### (\w+)$", line):
            kinds[current].add(match.group(1))
    return kinds


def test_each_reason_is_documented_under_its_kind() -> None:
    documented = sections()
    assert documented["In sync or moving"] == set(SUCCESS) | {"Progressing"}
    assert documented["Waiting"] == set(WAITING)
    assert documented["Stalled: a person acts"] == set(STALLING)
