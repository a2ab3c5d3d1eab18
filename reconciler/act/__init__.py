"""Acting: the one pipeline every face drives (observe → plan → gate → apply → record).

The engine is imported on first use (PEP 562), so that ``act.lint`` or ``act.assess`` alone
does not load every stage with its drivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.act.engine import Outcome, TargetSession, plan_target, reconcile_schema

__all__ = ["Outcome", "TargetSession", "plan_target", "reconcile_schema"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from reconciler.act import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
