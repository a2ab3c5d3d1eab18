"""No policy file, however broken, gets anything from the loader but a ``Policy`` or a
``PolicyError``: one line per problem, each naming the file, the line and the column.

The files are the shipped policies, mutated (``tests/policy/mutations.py``). The run is
derandomized: the same examples every time, in a few seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import PolicyError
from reconciler.policy import DAEMON_SECTIONS, Policy, load_policy
from tests.policy.mutations import mutated_policies

ENVIRON = {"SHOP_DATABASE_URL": "postgresql://app:pw-Never-Shown@db.internal/shop"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the mutated copies are written: beside nothing, so their relative paths lead
    nowhere (the loader does not need them to exist)."""
    return tmp_path_factory.mktemp("mutated") / "policies"


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=mutated_policies(), daemon=st.booleans())
def test_a_mutated_policy_loads_or_gives_one_line_per_problem(
    folder: Path, case: tuple[Path, str], daemon: bool
) -> None:
    """Loaded as the daemon does (every section resolved) or as the other commands do."""
    source, text = case
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / source.name
    path.write_text(text, encoding="utf-8")
    try:
        policy = load_policy(path, environ=ENVIRON, needs=DAEMON_SECTIONS if daemon else ())
    except PolicyError as exc:
        message = str(exc)
        lines = message.split("\n")
        assert lines == message.splitlines(), f"a problem spans lines: {message!r}"
        located = re.compile(re.escape(str(path)) + r":\d+:\d+: \S")
        for line in lines:
            assert located.match(line), f"not `file:line:col: message`: {line!r}"
        assert "pw-Never-Shown" not in message
    else:
        assert isinstance(policy, Policy)
