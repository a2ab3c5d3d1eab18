"""Planning: a pure function from a target's policy and observation to ordered steps."""

from reconciler.plan.model import Blocker, Plan, Step
from reconciler.plan.planner import plan_schema

__all__ = ["Blocker", "Plan", "Step", "plan_schema"]
