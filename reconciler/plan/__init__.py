"""Planning: a pure function from a target's policy and observation to ordered steps.

The names below are imported on first use (PEP 562): ``lint`` renders its report with
``plan.lint_report`` and needs neither the planner nor its model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.plan.model import Blocker, Plan, Step
    from reconciler.plan.planner import plan_schema

__all__ = ["Blocker", "Plan", "Step", "plan_schema"]


def __getattr__(name: str) -> Any:
    if name == "plan_schema":
        from reconciler.plan import planner

        return planner.plan_schema
    if name in __all__:
        from reconciler.plan import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
