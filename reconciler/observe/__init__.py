"""Observation: what is live in a target, read without changing anything.

The names below are imported on first use (PEP 562): static ``lint`` reads no live
database, and importing ``observe.schema`` would load the migration layouts for nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.observe.schema import Drift, SchemaObservation, compare, observe_schema

__all__ = ["Drift", "SchemaObservation", "compare", "observe_schema"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from reconciler.observe import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
