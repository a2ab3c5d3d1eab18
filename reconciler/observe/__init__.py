"""Observation: what is live in a target, read without changing anything."""

from reconciler.observe.schema import Drift, SchemaObservation, compare, observe_schema

__all__ = ["Drift", "SchemaObservation", "compare", "observe_schema"]
