"""The differences between the live schema and the one its applied migrations build, each
said as a person would say it (``users.phone: in the database, created by no migration``).

Pure: two ``Schema`` readings in, ``Difference`` records out. A table that is on one side
only is one difference; its columns, indexes and constraints are not listed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.drift.catalog import Item, Schema


@dataclass(frozen=True)
class Difference:
    """One way the live schema departs from its migrations."""

    kind: str
    """The object's kind: ``table``, ``column``, ``index``, ``constraint``..."""
    name: str
    change: Literal["added", "dropped", "changed"]
    """``added``: in the database only; ``dropped``: built by the migrations only."""
    message: str
    live: dict[str, str] | None = None
    expected: dict[str, str] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "object": self.name,
            "change": self.change,
            "message": self.message,
            "live": self.live,
            "expected": self.expected,
        }


_ORDER = ("extension", "enum", "table", "column", "constraint", "index", "sequence", "view")


def compare(live: Schema, expected: Schema) -> list[Difference]:
    """Every difference, tables before what is in them, in a stable order."""
    gone_tables = {
        name for kind, name in expected.items.keys() - live.items.keys() if kind == "table"
    }
    new_tables = {
        name for kind, name in live.items.keys() - expected.items.keys() if kind == "table"
    }
    whole = gone_tables | new_tables
    found: list[Difference] = []
    for key in sorted(live.items.keys() | expected.items.keys(), key=_sort_key):
        now, then = live.items.get(key), expected.items.get(key)
        item = now or then
        assert item is not None
        if item.kind != "table" and item.table in whole:
            continue  # said once, with its table
        if then is None:
            assert now is not None
            found.append(
                Difference(now.kind, now.name, "added",
                           f"{_subject(now)}: in the database, created by no migration", now.attrs)
            )  # fmt: skip
        elif now is None:
            found.append(
                Difference(then.kind, then.name, "dropped",
                           f"{_subject(then)}: dropped in the database, still created by the "
                           "migrations", None, then.attrs)
            )  # fmt: skip
        elif now.attrs != then.attrs:
            parts = [
                _changed(name, now.attrs.get(name), then.attrs.get(name))
                for name in sorted(now.attrs.keys() | then.attrs.keys(), key=_attr_order)
                if now.attrs.get(name) != then.attrs.get(name)
            ]
            found.append(
                Difference(now.kind, now.name, "changed", f"{_subject(now)}: " + "; ".join(parts),
                           now.attrs, then.attrs)
            )  # fmt: skip
    return found


def _sort_key(key: tuple[str, str]) -> tuple[int, str]:
    kind, name = key
    return (_ORDER.index(kind) if kind in _ORDER else len(_ORDER), name)


_ATTRS = ("type", "nullable", "default", "generated", "identity", "collation")


def _attr_order(name: str) -> tuple[int, str]:
    return (_ATTRS.index(name) if name in _ATTRS else len(_ATTRS), name)


def _subject(item: Item) -> str:
    if item.label:
        return item.label
    return f"table {item.name}" if item.kind == "table" else item.name


def _changed(attr: str, live: str | None, expected: str | None) -> str:
    """One attribute's difference: ``type varchar(320) in the database, text by the
    migrations``; ``NOT NULL in the database, nullable by the migrations``."""
    if attr in ("nullable", "logging", "kind", "unique", "cycle", "definition"):
        return f"{live} in the database, {expected} by the migrations"  # said by the value
    if attr == "values":
        return _enum_values(live or "", expected or "")
    if live is not None and expected is not None:
        return f"{_attr(attr, live)} in the database, {expected} by the migrations"
    if live is None and attr == "generated":
        return f"not generated in the database, {expected} by the migrations"
    if live is None:
        return f"no {attr} in the database, {_attr(attr, expected)} by the migrations"
    return f"{_attr(attr, live)} in the database, none by the migrations"


def _attr(attr: str, value: str | None) -> str:
    if attr in ("generated", "primary key"):
        return str(value)
    return f"{attr} {value}"


def _enum_values(live: str, expected: str) -> str:
    now, then = live.split(", "), expected.split(", ")
    added = [v for v in now if v not in then]
    dropped = [v for v in then if v not in now]
    parts = []
    if added:
        parts.append(f"value{'s' if len(added) > 1 else ''} {', '.join(added)} in the database, "
                     "added by no migration")  # fmt: skip
    if dropped:
        parts.append(f"value{'s' if len(dropped) > 1 else ''} {', '.join(dropped)} removed in "
                     "the database, still created by the migrations")  # fmt: skip
    if not parts:
        parts.append(f"values in the order {live} in the database, {expected} by the migrations")
    return "; ".join(parts)
