"""The policy: its model (``model``) and its loader (``load``), the contract users write."""

from reconciler.policy import plugins  # first: before pydantic is imported

# isort: split
from reconciler.policy.load import DAEMON_SECTIONS, Section, load_policy, parse_policy
from reconciler.policy.model import Migrations, Policy, Target, Timeouts

__all__ = [
    "DAEMON_SECTIONS",
    "Migrations",
    "Policy",
    "Section",
    "Target",
    "Timeouts",
    "load_policy",
    "parse_policy",
    "plugins",
]
