"""Mutated copies of the shipped policies, for the property that no policy file, however
broken, gets past the loader as anything but one ``PolicyError`` line per problem.

A mutation works on the text, line by line, the way a person (or a bad merge, a copy from a
web page, a template) breaks a file: a value deleted, duplicated or replaced by an odd
scalar, a tag or an alias, a control character typed in, a line lost or repeated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from tests.conftest import ROOT

SHIPPED = [ROOT / "config.example.yaml", *sorted((ROOT / "policies").glob("*.yaml"))]

ODD_VALUES = [
    "",
    "~",
    "null",
    "''",
    '""',
    "yes",
    "no",
    "0",
    "-1",
    "-5s",
    "1.5",
    "1e400",
    "-1e400",
    ".inf",
    "-.inf",
    ".nan",
    "9" * 5000,
    "9" * 400,
    "0x" + "f" * 2000,
    "0o777",
    "0b101",
    "1:30",
    "22:30",
    "24:00",
    "99:99",
    "2026-02-30",
    "2026-13-01",
    "2026-12-31",
    "2026-12-31 10:00:00",
    "2026-02-30T10:00:00Z",
    "=",
    "<<",
    "[]",
    "{}",
    "[1, 2]",
    "[[[[[]]]]]",
    "{a: 1}",
    "{a: }",
    "[a, {b: [c]}]",
    "!prod production",
    "!prod",
    "!!binary aGVsbG8=",
    "!!python/object:os.system echo",
    "!!python/name:os.system",
    "!!set {a}",
    "!!omap [a: 1]",
    "!!map x",
    "!!int abc",
    "!!float abc",
    "!!bool maybe",
    "!!timestamp 2026-02-30",
    "!!str 0001",
    "!<tag:example.com,2026:x> y",
    "&anchor value",
    "*undefined",
    "&r [*r]",
    "&m {a: *m}",
    "${UNSET_VARIABLE}",
    "${UNSET_VARIABLE:-}",
    "${UNSET_VARIABLE:-5s}",
    "$${literal}",
    "'${UNSET_VARIABLE'",
    '"\\0"',
    '"a\\x07b"',
    '"a\\nb"',
    '"line\\u2028sep"',
    '"\\uFFFE"',
    '"\\ud800"',
    '"sqlite:///\\udc80.db"',
    "'" + "a" * 300 + "'",
    "'" + "/".join(["b" * 255] * 20) + "'",
    "'" + "c" * 5000 + "'",
    "/",
    ".",
    "..",
    "sqlite:///",
    "sqlite:///:memory:",
    "sqlite:///" + "d" * 5000,
    "postgresql://",
    "postgresql://u:p@h:99999/db",
    "postgresql://u:p@h:port/db",
    "postgresql://[::1/db",
    "mysql://x/y",
    "'* * * * *'",
    "'99 99 99 99 99'",
    "'0 3 * * * *'",
    "Europe/Nowhere",
    "../../../../etc/passwd",
    "'" + "Z" * 300 + "'",
    "'\\0'",
    "10%",
    "150%",
    "'%'",
    "whsec_",
    "whsec_!!!",
    "'-'",
    "? complex",
    "- a",
    "|\n  block",
    ">-",
    "'unterminated",
    '"unterminated',
    "[unclosed",
    "{unclosed",
    "a: b: c",
    "@reserved",
    "`backtick",
    "%directive",
    "\t tab",
]

CONTROL = ["\0", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9f", "\ufffe"]

INSERTED_LINES = [
    "%YAML 1.1",
    "---",
    "...",
    "--- !prod",
    "extra: &x 1",
    "x: &a [*a]",
    "!prod key: v",
    "? [a, b]\n: 1",
    "? {a: 1}\n: 1",
    "<<: {ledger: 'sqlite:///l.db'}",
    "targets: 5",
    "- item",
    "  indented: 1",
    "\tkey: tab",
    "ledger: ledger",
    "'a\\nb': 1",
    '"a\\nb": 1',
    '"\\ud800": 1',
    "key: value\nkey: again",
    "server: {token: '${UNSET_TOKEN}'}",
    "grace: " + "9" * 400,
    "deep: " + "[" * 200 + "]" * 200,
    "laughs: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
    + "\n".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 5)),
]

_VALUE = re.compile(r"^(\s*(?:-\s+)?[A-Za-z_][A-Za-z0-9_]*:\s?)(.*?)(\s+#.*)?$")


@dataclass(frozen=True)
class Mutation:
    kind: str
    line: int
    what: str
    column: int = 0

    def apply(self, lines: list[str]) -> list[str]:
        if not lines:
            return lines
        at = self.line % len(lines)
        out = list(lines)
        if self.kind == "delete":
            del out[at]
        elif self.kind == "duplicate":
            out.insert(at, out[at])
        elif self.kind == "replace":
            match = _VALUE.match(out[at])
            if match:
                out[at] = match.group(1) + self.what
            else:
                out[at] = out[at] + " " + self.what
        elif self.kind == "empty":
            match = _VALUE.match(out[at])
            out[at] = match.group(1) if match else ""
        elif self.kind == "control":
            text = out[at]
            column = self.column % (len(text) + 1)
            out[at] = text[:column] + self.what + text[column:]
        elif self.kind == "insert":
            indent = re.match(r"\s*", out[at])
            prefix = indent.group(0) if indent else ""
            out.insert(at, "\n".join(prefix + part for part in self.what.split("\n")))
        elif self.kind == "tag":
            match = _VALUE.match(out[at])
            if match:
                out[at] = match.group(1) + self.what + " " + match.group(2)
        elif self.kind == "indent":
            out[at] = " " * (self.column % 5) + out[at].lstrip()
        return out


_LINES = st.integers(min_value=0, max_value=200)
MUTATIONS: st.SearchStrategy[Mutation] = st.one_of(
    st.builds(Mutation, st.just("delete"), _LINES, st.just("")),
    st.builds(Mutation, st.just("duplicate"), _LINES, st.just("")),
    st.builds(Mutation, st.just("empty"), _LINES, st.just("")),
    st.builds(Mutation, st.just("replace"), _LINES, st.sampled_from(ODD_VALUES)),
    st.builds(Mutation, st.just("insert"), _LINES, st.sampled_from(INSERTED_LINES)),
    st.builds(
        Mutation,
        st.just("tag"),
        _LINES,
        st.sampled_from(["!prod", "!!str", "!!int", "!!map", "!!python/none", "&a", "*a"]),
    ),
    st.builds(Mutation, st.just("control"), _LINES, st.sampled_from(CONTROL), _LINES),
    st.builds(Mutation, st.just("indent"), _LINES, st.just(""), _LINES),
)


_TEXTS = {path: path.read_text(encoding="utf-8").splitlines() for path in SHIPPED}
_CHANGES = st.lists(MUTATIONS, min_size=1, max_size=3)
_SOURCES = st.sampled_from(SHIPPED)


@st.composite
def mutated_policies(draw: st.DrawFn) -> tuple[Path, str]:
    """A shipped policy and its text after one to three mutations."""
    source = draw(_SOURCES)
    lines = _TEXTS[source]
    for mutation in draw(_CHANGES):
        lines = mutation.apply(lines)
    return source, "\n".join(lines) + "\n"
