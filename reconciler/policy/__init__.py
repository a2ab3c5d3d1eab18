"""The policy: its model (``model``) and its loader (``load``), the contract users write."""

from reconciler.policy.load import load_policy, parse_policy
from reconciler.policy.model import Migrations, Policy, Target, Timeouts

__all__ = ["Migrations", "Policy", "Target", "Timeouts", "load_policy", "parse_policy"]
