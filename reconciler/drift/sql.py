"""The ``sync_state`` migration: SQL that, run after the applied migrations, turns the schema
they build into the live one (``reconciler drift --sql``).

Pure: the two catalog readings (``live`` and ``expected``) in, PostgreSQL statements out,
in dependency order. Drops first, dependants before what they depend on (views, foreign
keys, indexes, constraints, columns, tables, sequences, enums, extensions); then creates,
in the opposite order (extensions, enums, sequences, tables, columns, constraints with
foreign keys last, indexes, views). Definitions are PostgreSQL's own canonical text
(``pg_get_indexdef``, ``pg_get_constraintdef``, ``pg_get_viewdef``, ``format_type``), so the
statements rebuild exactly what was read. Drops are written out like any other statement:
the generated file is an ordinary migration, and the gate judges its data loss.
"""

from __future__ import annotations

import re

from reconciler.drift.catalog import Item, Schema
from reconciler.errors import ReconcilerError


class SqlNotSupported(ReconcilerError):
    """Some drift cannot be written as SQL by this generator."""


def quote(name: str) -> str:
    """One identifier, always double-quoted, so case and reserved words survive."""
    return '"' + name.replace('"', '""') + '"'


def relation(name: str) -> str:
    """A catalog name (``users`` in ``public``, ``audit.events`` elsewhere) as SQL."""
    if "." in name:
        schema, rest = name.split(".", 1)
        return f"{quote(schema)}.{quote(rest)}"
    return quote(name)


def _member(item: Item) -> str:
    """The column or constraint name of an item named ``<table>.<member>``."""
    assert item.table is not None
    return item.name[len(item.table) + 1 :]


def _constraint_rank(item: Item) -> int:
    """Primary keys before unique and check constraints; foreign keys after all of them,
    since they need the referenced table's key."""
    definition = item.attrs.get("definition", "")
    for rank, prefix in enumerate(("PRIMARY KEY", "UNIQUE", "CHECK", "EXCLUDE", "FOREIGN KEY")):
        if definition.startswith(prefix):
            return rank
    return 5


def _is_foreign_key(item: Item) -> bool:
    return item.attrs.get("definition", "").startswith("FOREIGN KEY")


def sync_sql(live: Schema, expected: Schema) -> list[str]:
    """The statements that turn ``expected`` (what the migrations build) into ``live``; an
    empty list when they are the same.

    PostgreSQL lets no transaction use an enum value it added itself, so when values are
    added the file commits twice, as Prisma writes it: the drops, extensions and enums in a
    first ``BEGIN``/``COMMIT``, the rest (which may use the new values, in a default or a
    check) in a second."""
    drops, early = _drops(live, expected), _types(live, expected)
    late = _creates(live, expected)
    if not any(" ADD VALUE " in statement for statement in early):
        return drops + early + late
    first = ["BEGIN;", *drops, *early, "COMMIT;"]
    return first + (["BEGIN;", *late, "COMMIT;"] if late else [])


def _of(schema: Schema, kind: str) -> dict[str, Item]:
    return {name: item for (k, name), item in schema.items.items() if k == kind}


def _changed(live: Item, expected: Item | None) -> bool:
    return expected is not None and live.attrs != expected.attrs


def _drops(live: Schema, expected: Schema) -> list[str]:
    out: list[str] = []
    live_tables = _of(live, "table")
    gone_tables = [n for n in _of(expected, "table") if n not in live_tables]
    live_views, live_cons, live_idx = _of(live, "view"), _of(live, "constraint"), _of(live, "index")
    live_cols = _of(live, "column")
    rebuilt = _views_over_changed_columns(live, expected)
    for name, item in sorted(_of(expected, "view").items()):
        if name not in live_views or _changed(live_views[name], item) or name in rebuilt:
            kind = "MATERIALIZED VIEW" if item.label.startswith("materialized") else "VIEW"
            out.append(f"DROP {kind} {relation(name)};")
    expected_cons = _of(expected, "constraint")
    gone_cons = [
        item
        for name, item in sorted(expected_cons.items())
        if name not in live_cons or _changed(live_cons[name], item)
    ]
    for item in [c for c in gone_cons if _is_foreign_key(c)] + [
        c for c in gone_cons if not _is_foreign_key(c)
    ]:
        if item.table in gone_tables and not _is_foreign_key(item):
            continue  # goes with its table
        out.append(
            f"ALTER TABLE {relation(item.table or '')} DROP CONSTRAINT {quote(_member(item))};"
        )
    for name, item in sorted(_of(expected, "index").items()):
        if item.table in gone_tables:
            continue
        if name not in live_idx or _changed(live_idx[name], item):
            out.append(f"DROP INDEX {relation(name)};")
    for name, item in sorted(_of(expected, "column").items()):
        if item.table in gone_tables:
            continue
        now = live_cols.get(name)
        if now is None or (now.attrs.get("generated") != item.attrs.get("generated")):
            out.append(
                f"ALTER TABLE {relation(item.table or '')} DROP COLUMN {quote(_member(item))};"
            )
    for name in sorted(gone_tables):
        out.append(f"DROP TABLE {relation(name)};")
    live_seqs = _of(live, "sequence")
    for name, item in sorted(_of(expected, "sequence").items()):
        if name not in live_seqs and item.table not in gone_tables:
            # an owned sequence may have gone already with its column (serial, identity)
            exists = " IF EXISTS" if item.table else ""
            out.append(f"DROP SEQUENCE{exists} {relation(name)};")
    live_enums = _of(live, "enum")
    for name in sorted(_of(expected, "enum")):
        if name not in live_enums:
            out.append(f"DROP TYPE {relation(name)};")
    live_ext = _of(live, "extension")
    for name in sorted(_of(expected, "extension")):
        if name not in live_ext:
            out.append(f"DROP EXTENSION {quote(name)};")
    return out


def _types(live: Schema, expected: Schema) -> list[str]:
    """Extensions and enums: what the tables and their defaults may need."""
    out: list[str] = []
    before_ext = _of(expected, "extension")
    for name, item in sorted(_of(live, "extension").items()):
        if name not in before_ext:
            schema = item.attrs.get("schema", "public")
            out.append(f"CREATE EXTENSION IF NOT EXISTS {quote(name)} WITH SCHEMA {quote(schema)};")
    before_enums = _of(expected, "enum")
    for name, item in sorted(_of(live, "enum").items()):
        then = before_enums.get(name)
        if then is None:
            out.append(f"CREATE TYPE {relation(name)} AS ENUM ({item.attrs['values']});")
        elif _changed(item, then):
            out += _enum_values(name, item.attrs["values"], then.attrs["values"])
    return out


def _creates(live: Schema, expected: Schema) -> list[str]:
    out: list[str] = []
    before_tables = _of(expected, "table")
    new_tables = {n for n in _of(live, "table") if n not in before_tables}
    live_cols = _of(live, "column")
    before_seqs = _of(expected, "sequence")
    identity_tables = {c.table for c in live_cols.values() if "identity" in c.attrs}
    owned: list[str] = []
    for name, item in sorted(_of(live, "sequence").items()):
        then = before_seqs.get(name)
        if then is None and item.table in identity_tables:
            continue  # made by the identity column itself, with the table or the column
        if then is None:
            out.append(f"CREATE SEQUENCE {relation(name)} {_sequence_options(item)};")
            owner = _owner_column(name, item, live_cols)
            if owner:
                owned.append(f"ALTER SEQUENCE {relation(name)} OWNED BY {owner};")
        elif _changed(item, then):
            out.append(f"ALTER SEQUENCE {relation(name)} {_sequence_options(item)};")
    for name, table in sorted(_of(live, "table").items()):
        then = before_tables.get(name)
        kind = table.attrs.get("kind", "table")
        if kind != "table" and (then is None or then.attrs.get("kind") != kind):
            raise SqlNotSupported(
                f"table {name}: a {kind} in the database, which this generator does not "
                "write; write this migration by hand"
            )
        if then is not None and then.attrs.get("logging") != table.attrs.get("logging"):
            logged = "UNLOGGED" if table.attrs.get("logging") == "unlogged" else "LOGGED"
            out.append(f"ALTER TABLE {relation(name)} SET {logged};")
        if then is not None:
            continue
        columns = [c for c in live_cols.values() if c.table == name]
        body = ",\n".join(f"    {_column_definition(c)}" for c in columns)
        unlogged = "UNLOGGED " if table.attrs.get("logging") == "unlogged" else ""
        out.append(f"CREATE {unlogged}TABLE {relation(name)} (\n{body}\n);")
    out += owned
    before_cols = _of(expected, "column")
    for name, item in live_cols.items():
        if item.table in new_tables:
            continue
        then = before_cols.get(name)
        if then is None or then.attrs.get("generated") != item.attrs.get("generated"):
            out.append(
                f"ALTER TABLE {relation(item.table or '')} ADD COLUMN {_column_definition(item)};"
            )
        elif _changed(item, then):
            out += _alter_column(item, then)
    before_cons = _of(expected, "constraint")
    added = [
        item
        for name, item in _of(live, "constraint").items()
        if name not in before_cons or _changed(item, before_cons[name])
    ]
    for item in sorted(added, key=lambda c: (_constraint_rank(c), c.name)):
        out.append(
            f"ALTER TABLE {relation(item.table or '')} ADD CONSTRAINT {quote(_member(item))} "
            f"{item.attrs['definition']};"
        )
    before_idx = _of(expected, "index")
    for name, item in sorted(_of(live, "index").items()):
        if name not in before_idx or _changed(item, before_idx[name]):
            out.append(f"{item.attrs['definition']};")
    before_views = _of(expected, "view")
    rebuilt = _views_over_changed_columns(live, expected)
    views = {
        name: item
        for name, item in _of(live, "view").items()
        if name not in before_views or _changed(item, before_views[name]) or name in rebuilt
    }
    for name in _view_order(views):
        item = views[name]
        kind = "MATERIALIZED VIEW" if item.label.startswith("materialized") else "VIEW"
        definition = item.attrs["definition"].strip().rstrip(";")
        out.append(f"CREATE {kind} {relation(name)} AS\n{definition};")
    return out


def _column_definition(item: Item) -> str:
    parts = [quote(_member(item)), item.attrs["type"]]
    if "collation" in item.attrs:
        parts.append(f"COLLATE {quote(item.attrs['collation'])}")
    if "generated" in item.attrs:
        parts.append(item.attrs["generated"])
    elif "default" in item.attrs:
        parts.append(f"DEFAULT {item.attrs['default']}")
    if "identity" in item.attrs:
        parts.append(f"GENERATED {item.attrs['identity']} AS IDENTITY")
    if item.attrs.get("nullable") == "NOT NULL":
        parts.append("NOT NULL")
    return " ".join(parts)


def _alter_column(item: Item, then: Item) -> list[str]:
    head = f"ALTER TABLE {relation(item.table or '')} ALTER COLUMN {quote(_member(item))}"
    now, was = item.attrs, then.attrs
    out: list[str] = []
    retyped = now["type"] != was["type"] or now.get("collation") != was.get("collation")
    if "default" in was and (
        "default" not in now or (retyped and now["default"] != was["default"])
    ):
        out.append(f"{head} DROP DEFAULT;")  # an old default may not cast to the new type
    if retyped:
        collate = f" COLLATE {quote(now['collation'])}" if "collation" in now else ""
        column = quote(_member(item))
        out.append(f"{head} TYPE {now['type']}{collate} USING {column}::{now['type']};")
    if now.get("default") != was.get("default") and "default" in now:
        out.append(f"{head} SET DEFAULT {now['default']};")
    if now.get("nullable") != was.get("nullable"):
        out.append(f"{head} {'SET' if now.get('nullable') == 'NOT NULL' else 'DROP'} NOT NULL;")
    if now.get("identity") != was.get("identity"):
        if "identity" not in now:
            out.append(f"{head} DROP IDENTITY;")
        elif "identity" not in was:
            out.append(f"{head} ADD GENERATED {now['identity']} AS IDENTITY;")
        else:
            out.append(f"{head} SET GENERATED {now['identity']};")
    return out


def _sequence_options(item: Item) -> str:
    a = item.attrs
    return (
        f"AS {a['type']} START WITH {a['start']} INCREMENT BY {a['increment']} "
        f"MINVALUE {a['minimum']} MAXVALUE {a['maximum']} CACHE {a['cache']} {a['cycle']}"
    )


def _owner_column(name: str, item: Item, columns: dict[str, Item]) -> str | None:
    """The column a serial's sequence belongs to: the one of its table whose default
    draws from it (the catalog records only the table)."""
    if item.table is None:
        return None
    short = name.split(".", 1)[1] if "." in name else name
    for column in columns.values():
        default = column.attrs.get("default", "")
        if column.table == item.table and "nextval(" in default and short in default:
            return f"{relation(item.table)}.{quote(_member(column))}"
    return None


def _values(text: str) -> list[str]:
    return [v for v in text.split(", ") if v] if text else []


def _enum_values(name: str, live: str, expected: str) -> list[str]:
    """``ADD VALUE`` for each value the live enum gained, placed as it is placed there. A
    value the live enum lost cannot be removed by ``ALTER TYPE``: that is refused."""
    now, then = _values(live), _values(expected)
    lost = [v for v in then if v not in now]
    kept = [v for v in now if v in then]
    if lost or kept != [v for v in then if v in now]:
        raise SqlNotSupported(
            f"enum {name}: values removed or reordered in the database ({live}); PostgreSQL "
            "cannot do that with ALTER TYPE, write this migration by hand"
        )
    out: list[str] = []
    for index, value in enumerate(now):
        if value in then:
            continue
        place = f" AFTER {now[index - 1]}" if index else f" BEFORE {now[1]}" if then else ""
        out.append(f"ALTER TYPE {relation(name)} ADD VALUE {value}{place};")
    return out


def _view_order(views: dict[str, Item]) -> list[str]:
    """Views that read other new views after them (by name in their definition)."""
    done: list[str] = []
    pending = sorted(views)
    while pending:
        for name in pending:
            short = name.rsplit(".", 1)[-1]
            needs = [
                other
                for other in pending
                if other != name and re.search(rf"\b{re.escape(other.rsplit('.', 1)[-1])}\b",
                                               views[name].attrs["definition"])
            ]  # fmt: skip
            if not needs or short == "":
                done.append(name)
                pending.remove(name)
                break
        else:  # a cycle by name only: keep the rest in name order
            done += pending
            break
    return done


def _views_over_changed_columns(live: Schema, expected: Schema) -> set[str]:
    """Views that stay as they are but read a table one of whose columns is dropped or
    retyped: PostgreSQL refuses both under a view, so the view is dropped before and
    created again after. A view's tables are known by name in its definition (the catalog
    does not record its dependencies), which may rebuild a view more than needed, never
    less."""
    live_cols = _of(live, "column")
    tables: set[str] = set()
    for name, then in _of(expected, "column").items():
        now = live_cols.get(name)
        if now is None or any(
            now.attrs.get(a) != then.attrs.get(a) for a in ("type", "collation", "generated")
        ):
            tables.add((then.table or "").rsplit(".", 1)[-1])
    live_views = _of(live, "view")
    return {
        name
        for name, item in _of(expected, "view").items()
        if name in live_views
        and any(
            re.search(rf"\b{re.escape(table)}\b", item.attrs.get("definition", ""))
            for table in tables
        )
    }
