"""Acting: the one pipeline every face drives (observe → plan → gate → apply → record)."""

from reconciler.act.engine import Outcome, TargetSession, plan_target, reconcile_schema

__all__ = ["Outcome", "TargetSession", "plan_target", "reconcile_schema"]
