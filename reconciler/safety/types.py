"""Column types as PostgreSQL normalises them, and which changes of type lose nothing.

A migration spells a type many ways (``INT``, ``integer``, ``int4``, ``SERIAL``;
``TIMESTAMP(3)``, ``timestamp without time zone``; ``VARCHAR(20)``, ``character
varying(20)``), and the catalog spells it once more (``int4``, ``_int4`` for an array,
``atttypmod`` for the limits). ``SqlType`` is the one spelling both are brought to, so a
rule can ask "does every value of the old type fit, unchanged, in the new one?"
(``lossless``) without a table of aliases of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from msgspec import Struct

ALIASES = {
    "smallint": "int2",
    "smallserial": "int2",
    "serial2": "int2",
    "int": "int4",
    "integer": "int4",
    "serial": "int4",
    "serial4": "int4",
    "bigint": "int8",
    "bigserial": "int8",
    "serial8": "int8",
    "real": "float4",
    "float": "float8",
    "double precision": "float8",
    "decimal": "numeric",
    "character varying": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "boolean": "bool",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
}
INTEGER_RANK = {"int2": 1, "int4": 2, "int8": 3}
INTEGER_DIGITS = {"int2": 5, "int4": 10, "int8": 19}
"""Decimal digits of the largest value of each integer type: what a numeric must hold."""
FLOAT_MANTISSA = {"float4": 24, "float8": 53}
INTEGER_BITS = {"int2": 16, "int4": 32, "int8": 64}
LIMITED = {"varchar", "bpchar", "numeric", "timestamp", "timestamptz", "time", "timetz"}
"""Types whose modifiers limit the values (a length, a precision); none: no limit."""
TIMES = {"timestamp", "timestamptz", "time", "timetz"}
NO_ASSIGNMENT_CAST = frozenset({"bool", "uuid"})
"""Types no other type converts to by an implicit or assignment cast (``pg_cast`` has none;
text reaches them only by an explicit cast): ``ALTER COLUMN ... TYPE`` one of them without
``USING`` either finds the column already of that type or is refused ("cannot be cast
automatically"). It never changes a value, whatever the old type was."""


class SqlType(Struct, frozen=True):
    """A type by its catalog name (``int4``, ``varchar``, ``int4[]``, an enum's name) and
    its modifiers as written (``varchar(20)``: ``(20,)``; ``numeric(10, 2)``: ``(10, 2)``)."""

    name: str
    mods: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.mods))})" if self.mods else self.name


def normalise(name: str, mods: tuple[int, ...] = (), array: bool = False) -> SqlType:
    """``name`` as written in a migration or read from ``pg_type.typname``."""
    base = name  # an enum's name keeps its case: "Role" and "role" are two types
    if base.startswith("_"):  # the catalog's name of an array type
        base, array = base[1:], True
    if base.lower() == "float" and mods:  # float(p): real up to 24 bits of mantissa
        base, mods = ("float4" if mods[0] <= 24 else "float8"), ()
    base = ALIASES.get(base.lower(), base)
    if base == "numeric" and len(mods) == 1:
        mods = (mods[0], 0)  # numeric(p) is numeric(p, 0)
    return SqlType(base + ("[]" if array else ""), tuple(mods))


def from_catalog(typname: str, atttypmod: int | None) -> SqlType:
    """The type of a live column, its limits decoded from ``pg_attribute.atttypmod``."""
    base = normalise(typname)
    if atttypmod is None or atttypmod < 0 or base.name not in LIMITED:
        return base
    if base.name in ("varchar", "bpchar"):
        return SqlType(base.name, (atttypmod - 4,))
    if base.name == "numeric":
        packed = atttypmod - 4
        return SqlType(base.name, ((packed >> 16) & 0xFFFF, packed & 0xFFFF))
    return SqlType(base.name, (atttypmod,))  # timestamp(p), time(p): p itself


def lossless(old: SqlType, new: SqlType) -> bool:
    """Whether every value ``old`` can hold is held by ``new`` unchanged.

    True only for the widenings PostgreSQL makes without touching a value: a larger
    integer, ``real`` to ``double precision``, a longer or unlimited text, a numeric with no
    fewer digits on either side of the point, a finer (or unlimited) time precision,
    ``timestamp`` to ``timestamptz`` (see ``docs/rules/narrowing-type.md``), ``jsonb`` to
    ``json``, and any type to unlimited text. Anything else may change a value, and is for
    the caller to measure.
    """
    if old == new:
        return True
    if new.name in ("text", "varchar") and not new.mods and not old.name.endswith("[]"):
        return True  # every value has a text form (an array's too, but it reads differently)
    if old.name in INTEGER_RANK:
        return _integer_fits(old.name, new)
    if (old.name, new.name) in (("float4", "float8"), ("jsonb", "json")):
        return True
    if old.name in ("varchar", "text", "bpchar") and new.name in ("varchar", "bpchar"):
        return _length_fits(old, new)
    if old.name == "numeric" and new.name == "numeric":
        return _numeric_fits(old.mods, new.mods)
    if old.name in TIMES or old.name == "date":
        return _time_fits(old, new)
    return False


def _integer_fits(old: str, new: SqlType) -> bool:
    if new.name in INTEGER_RANK:
        return INTEGER_RANK[new.name] >= INTEGER_RANK[old]
    if new.name == "numeric":
        return not new.mods or new.mods[0] - new.mods[1] >= INTEGER_DIGITS[old]
    if new.name in FLOAT_MANTISSA:
        return FLOAT_MANTISSA[new.name] > INTEGER_BITS[old]
    return False


def _length_fits(old: SqlType, new: SqlType) -> bool:
    if old.name != "bpchar" and new.name == "bpchar":
        return False  # blank-padded: 'a' and 'a ' would become one value
    if not new.mods:
        return True
    return bool(old.mods) and old.name != "text" and old.mods[0] <= new.mods[0]


def _numeric_fits(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    if not new:
        return True
    if not old:
        return False
    (old_p, old_s), (new_p, new_s) = old[:2], new[:2]
    return new_s >= old_s and new_p - new_s >= old_p - old_s


def _time_fits(old: SqlType, new: SqlType) -> bool:
    if old.name == "date":
        return new.name in ("timestamp", "timestamptz")
    same_kind = old.name == new.name or (old.name, new.name) == ("timestamp", "timestamptz")
    if not same_kind:
        return False
    if not new.mods:
        return True
    return bool(old.mods) and old.mods[0] <= new.mods[0]


AT_TIME_ZONE = SqlType("at time zone")
"""The step of a ``USING`` that is ``AT TIME ZONE``, not a cast (``Op.using_steps``)."""

_FIXED_ZONES = frozenset(
    {
        "utc", "gmt", "uct", "z", "zulu", "universal", "greenwich", "gmt0", "gmt+0",
        "gmt-0", "etc/utc", "etc/gmt", "etc/uct", "etc/universal", "etc/zulu",
        "etc/greenwich", "etc/gmt0", "etc/gmt+0", "etc/gmt-0",
    }
)  # fmt: skip
_FIXED_OFFSET = re.compile(
    r"(?:etc/gmt[+-]\d{1,2}"  # Etc/GMT+5: five hours behind UTC, all year
    r"|[a-z]{3,}[+-]?\d{1,2}(?::\d{2}){0,2}"  # a POSIX zone with no daylight saving part
    r"|[+-]?\d{1,2}(?::?\d{2}){0,2})",  # an offset: +05:30, -08
    re.IGNORECASE,
)


def fixed_offset(zone: str) -> bool:
    """Whether ``AT TIME ZONE zone`` shifts every value by one and the same offset.

    A zone with daylight saving time does not: local times in the hour skipped in spring
    do not exist, and PostgreSQL reads them as standard time, the instant of the hour
    after (in ``America/New_York``, ``2018-03-11 02:30`` and ``03:30`` are both
    ``07:30 UTC``); in autumn two instants read as one local time. Only UTC's names, an
    interval, a numeric offset and a POSIX zone without a daylight saving part are fixed;
    an abbreviation (``EST``, ``CET``) may also name a zone with daylight saving time."""
    text = zone.strip()
    if text.startswith("interval "):
        return True
    return text.lower() in _FIXED_ZONES or _FIXED_OFFSET.fullmatch(text) is not None


def steps_keep(
    old: SqlType | None, steps: tuple[SqlType, ...], zone: str, new: SqlType | None
) -> bool:
    """Whether a ``USING`` that is the column through ``steps`` (casts, ``AT_TIME_ZONE``)
    hands every value unchanged to the conversion to ``new``: each cast keeps every value
    (``lossless``) but a last one to ``new`` itself, which is that conversion, and the
    zone is a fixed offset, from ``timestamp`` or ``timestamptz``. ``old`` None (unknown):
    only a cast to unlimited text is known to keep every value."""
    for step, current, final in _walk(old, steps, new):
        if step == AT_TIME_ZONE:
            if not fixed_offset(zone) or (
                current is not None and current.name not in ("timestamp", "timestamptz")
            ):
                return False
        elif not final and not _cast_keeps(current, step):
            return False
    return True


def casts_cut(old: SqlType | None, steps: tuple[SqlType, ...], new: SqlType | None) -> bool:
    """Whether a cast of ``steps`` (not the zone, not a last cast to ``new``) may change a
    value: every value the ``USING`` changes is then cut short, not rewritten."""
    return any(
        step != AT_TIME_ZONE and not final and not _cast_keeps(current, step)
        for step, current, final in _walk(old, steps, new)
    )


def _walk(
    old: SqlType | None, steps: tuple[SqlType, ...], new: SqlType | None
) -> Iterator[tuple[SqlType, SqlType | None, bool]]:
    """Each step of a ``USING``, the type it receives, and whether it is a last cast to
    ``new`` itself (the conversion, judged by the type change, not as a step)."""
    current = old
    for index, step in enumerate(steps):
        yield step, current, index == len(steps) - 1 and step == new
        current = _zoned(current) if step == AT_TIME_ZONE else step


def _cast_keeps(current: SqlType | None, cast: SqlType) -> bool:
    if current is None:  # unknown: only unlimited text holds any value
        return cast.name in ("text", "varchar") and not cast.mods
    return lossless(current, cast)


def _zoned(current: SqlType | None) -> SqlType | None:
    """The type ``AT TIME ZONE`` gives a value of type ``current``: a ``timestamp`` read as
    local time becomes an instant, an instant becomes a local time."""
    if current is None or current.name not in ("timestamp", "timestamptz"):
        return None
    return SqlType("timestamptz" if current.name == "timestamp" else "timestamp", current.mods)


def named_type(names: list[str], mods: tuple[int, ...], array: bool) -> SqlType | None:
    """A type named by its (possibly qualified) ``names``, as the catalog names it."""
    names = [p for p in names if p != "pg_catalog"]
    if not names:
        return None
    name = names[-1] if len(names) == 1 or names[-2] == "public" else ".".join(names[-2:])
    return normalise(name, mods, array=array)
