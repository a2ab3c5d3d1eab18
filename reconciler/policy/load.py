"""Load a policy file: YAML with line numbers, ``${ENV}`` expansion, strict validation.

The YAML is composed into nodes (not loaded directly) so every value keeps its line and
column. Each error becomes one line that names the file, the position and the field::

    policy.yaml:7:7: targets[0].migrations.layout: must be one of prisma, alembic

Whatever the file holds, the answer is a ``Policy`` or a ``PolicyError`` made of such lines,
never another exception: a control character, a tag other than YAML's plain types, an
impossible date, a number too long to read, a key that is not a name, a recursive alias and
nesting deeper than ``MAX_DEPTH`` levels are each named where they are written. Aliases may
add at most ``MAX_ALIAS_VALUES`` values to the document: a "billion laughs" file is refused
at the alias that crosses the limit, as it is read, before it takes any memory.

Environment references are expanded in scalar values: ``${VAR}`` (an error when unset) and
``${VAR:-default}``; ``$${`` writes a literal ``${``. Expanded values are never echoed in
errors, since they often hold passwords.

The sections only the daemon reads (``DAEMON_SECTIONS``: ``server``, ``notifications``) are
resolved only for a command that says it ``needs`` them. For the others, a value there that
refers to the environment is neither resolved nor required: it is left out, as if not
written (no token; no ``notifications`` at all, since they need their URL), so ``plan``,
``check`` or ``lint`` never need the daemon's secrets. Everything else in those sections
is still checked.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.errors import PolicyError
from reconciler.policy.model import Notifications, Policy, Server
from reconciler.secrets import Secret
from reconciler.textfiles import read_utf8

Loc = tuple[str | int, ...]
Section = Literal["server", "notifications"]
DAEMON_SECTIONS: tuple[Section, ...] = ("server", "notifications")
_SECTION_MODELS: dict[str, type[BaseModel]] = {"server": Server, "notifications": Notifications}
MAX_DEPTH = 64
"""Nesting a policy may have, in its text or through aliases (a real one has about 7)."""
MAX_ALIAS_VALUES = 100_000
"""Values aliases may add to a policy (a fleet of 200 targets has about 10,000 in all)."""
_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_CORE + kind for kind in ("null", "bool", "int", "float", "str", "timestamp")}
_AS_TEXT = {_CORE + "merge", _CORE + "value"}
"""The tags PyYAML gives a plain ``<<`` and ``=``: the policy reads them as the text."""
_KINDS = {"bool": "true or false", "int": "integer", "float": "number", "timestamp": "date"}
_DEFERRED = object()
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_TEXT = "holds a lone surrogate (\\ud800-\\udfff), which is not text"


class _Located:
    """Positions (1-based line, column) of every key and value, by path."""

    def __init__(self) -> None:
        self.marks: dict[Loc, tuple[int, int]] = {}

    def at(self, loc: Loc) -> tuple[int, int]:
        while loc not in self.marks and loc:
            loc = loc[:-1]
        return self.marks.get(loc, (1, 1))


def load_policy(
    path: str | Path,
    environ: Mapping[str, str] | None = None,
    *,
    needs: Collection[Section] = (),
) -> Policy:
    """Read and validate the policy at ``path``; raises ``PolicyError`` listing every problem.
    ``needs``: the daemon-only sections to resolve (see the module's docstring)."""
    file = Path(path)
    try:
        text = read_utf8(file)
    except FileNotFoundError:
        raise PolicyError(_one_line(f"{file}:1:1: policy file not found")) from None
    except OSError as exc:  # a folder, no permission, a name longer than the system allows
        reason = exc.strerror or type(exc).__name__
        raise PolicyError(_one_line(f"{file}:1:1: cannot read the policy: {reason}")) from None
    except ValueError as exc:
        raise PolicyError(_one_line(str(exc))) from None
    return parse_policy(text, file, os.environ if environ is None else environ, needs=needs)


def parse_policy(
    text: str,
    file: Path,
    environ: Mapping[str, str],
    *,
    needs: Collection[Section] = (),
) -> Policy:
    """Validate policy ``text`` as if read from ``file`` (used for git sources too)."""
    name = str(file)

    def error(lines: list[tuple[int, int, str]]) -> PolicyError:
        return PolicyError(
            "\n".join(_one_line(f"{name}:{ln}:{col}: {msg}") for ln, col, msg in lines)
        )

    try:
        root = yaml.compose(text, Loader=_Composer)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise error([(line, column, f"invalid YAML: {_yaml_problem(exc)}")]) from None
    except yaml.reader.ReaderError as exc:
        raise error([(*_position(text, exc.position), _unacceptable(exc.character))]) from None
    except yaml.YAMLError as exc:  # none other is known; still one line, not a traceback
        raise error([(1, 1, f"invalid YAML: {exc}")]) from None
    if root is None:
        raise error([(1, 1, "the policy is empty; it needs at least `targets:`")])
    reader = _Reader(environ, needs)
    data = reader.value(root, ())
    if reader.problems:
        raise error(reader.problems)
    if not isinstance(data, dict):
        raise error([(1, 1, "the policy must be a mapping with `targets:`")])
    unresolved = {s for loc in reader.deferred if (s := _leave_out(data, loc)) is not None}
    base_dir = file.resolve().parent
    try:
        policy = Policy.model_validate(data, context={"base_dir": base_dir, "policy_file": name})
    except ValidationError as exc:
        located = reader.located
        lines = sorted({(*located.at(tuple(e["loc"])), _describe(e)) for e in exc.errors()})
        raise error(lines) from None
    return policy.model_copy(update=dict.fromkeys(unresolved)) if unresolved else policy


class _Composer(yaml.SafeLoader):
    """PyYAML's composer, bounded. It knows each node's size and depth once expanded (every
    alias replaced by what it names) as soon as the node is composed, so it refuses, at the
    place they are written: nesting deeper than ``MAX_DEPTH``, in the text or through
    aliases; an alias inside the node it names (which would expand without end); and aliases
    that add more than ``MAX_ALIAS_VALUES`` values in all. Nothing is ever expanded here."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.open_anchors: set[str] = set()
        self.expanded: dict[int, tuple[int, int]] = {}  # id(node): (values, depth)
        self.alias_values = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.open_anchors:
                raise _refused(f"recursive alias: *{event.anchor} is inside &{event.anchor}", event)
            node = super().compose_node(parent, index)
            self.alias_values += self.expanded[id(node)][0] if node is not None else 0
            if self.alias_values > MAX_ALIAS_VALUES:
                raise _refused(
                    f"aliases expand the policy by more than {MAX_ALIAS_VALUES} values", event
                )
            return node
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _refused(f"nested more than {MAX_DEPTH} levels deep", event)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.open_anchors.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
            self.open_anchors.discard(anchor or "")
        if node is None:
            return None
        values, depth = 1, 1
        for child in _children(node):
            child_values, child_depth = self.expanded[id(child)]
            values, depth = values + child_values, max(depth, child_depth + 1)
        if depth > MAX_DEPTH:
            raise _refused(f"aliases nest this more than {MAX_DEPTH} levels deep", event)
        self.expanded[id(node)] = (values, depth)
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _refused(problem: str, event: yaml.Event) -> yaml.MarkedYAMLError:
    return yaml.composer.ComposerError(None, None, problem, cast(yaml.Mark, event.start_mark))


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    context, first = exc.context or "", exc.context_mark
    if context.startswith("found duplicate anchor") and first is not None:
        return f"{context.split(';')[0]} (first at line {first.line + 1})"
    return str(exc.problem or exc)


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _unacceptable(code: int) -> str:
    kind = "control character" if code < 0x20 or 0x7F <= code < 0xA0 else "character"
    return f"invalid YAML: {kind} U+{code:04X} is not allowed"


class _Reader:
    """Nodes to plain values, noting where each was written and every problem on the way."""

    def __init__(self, environ: Mapping[str, str], needs: Collection[Section]) -> None:
        self.environ = environ
        self.needs = set(needs)
        self.located = _Located()
        self.problems: list[tuple[int, int, str]] = []
        self.deferred: list[Loc] = []
        # A constructor per load: one keeps every node it ever built (a leak in a daemon).
        self.scalars = yaml.constructor.SafeConstructor()

    def problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append((node.start_mark.line + 1, node.start_mark.column + 1, message))

    def problem_at(self, loc: Loc, message: str) -> None:
        """A problem with a value, shown where its field is (its key), as pydantic's are."""
        self.problems.append((*self.located.at(loc), message))

    def value(self, node: yaml.Node, loc: Loc) -> Any:
        self.located.marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _CORE + "seq":
                self.problem_at(loc, f"{_field(loc)}: {_unsupported(node.tag)}")
                return None
            return [self.value(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, loc)

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> Any:
        if node.tag != _CORE + "map":
            self.problem_at(loc, f"{_field(loc)}: {_unsupported(node.tag)}")
            return None
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in (
                _PLAIN_TAGS | _AS_TEXT
            ):
                shape = {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}
                what = shape.get(type(key_node), _unsupported(key_node.tag))
                self.problem(key_node, f"{_field(loc)}: a key must be a plain name, not {what}")
                continue
            key = str(key_node.value)
            if _SURROGATE.search(key):
                self.problem(key_node, f"{_field(loc)}: {_NOT_TEXT}")
                continue
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                self.problems.append((*where, f"{_field((*loc, key))}: duplicate key"))
                continue
            self.located.marks[(*loc, key)] = where
            value = self.value(value_node, (*loc, key))
            if value is not _DEFERRED:
                result[key] = value
        return result

    def scalar(self, node: yaml.Node, loc: Loc) -> Any:
        if node.tag in _AS_TEXT:
            value: Any = str(node.value)
        elif node.tag not in _PLAIN_TAGS:
            self.problem_at(loc, f"{_field(loc)}: {_unsupported(node.tag)}")
            return None
        else:
            try:
                value = self.scalars.construct_object(node, deep=True)
            except Exception as exc:
                # PyYAML's constructors for these plain types only read the node's text, and
                # fail in many ways on text their tag does not fit: 2026-02-30 (ValueError),
                # a number longer than Python reads, `!!bool maybe` (KeyError), `!!int ''`
                # (IndexError), `!!timestamp x` (AttributeError).
                self.problem_at(loc, f"{_field(loc)}: {_unreadable(node, exc)}")
                return None
        if isinstance(value, str) and "$" in value:
            unneeded = self.unneeded(loc)
            if unneeded and any(m.group(1) for m in _ENV_REF.finditer(value)):
                if unneeded == "field":
                    self.deferred.append(loc)
                    return _DEFERRED
                return value  # an unknown key: left as written, to be reported as such
            try:
                value = _expand(value, self.environ)
            except KeyError as missing:
                self.problem_at(
                    loc,
                    f"{_field(loc)}: environment variable {missing.args[0]} is not set "
                    f"(write ${{{missing.args[0]}:-default}} to give a default)",
                )
        if isinstance(value, str) and _SURROGATE.search(value):
            # From an escape (\ud800) or a variable holding bytes that are not UTF-8:
            # nothing downstream can encode it, not even an error message.
            self.problem_at(loc, f"{_field(loc)}: {_NOT_TEXT}")
            return None
        return value

    def unneeded(self, loc: Loc) -> Literal["field", "unknown", ""]:
        """Whether ``loc`` is in a daemon-only section this command does not need: a field
        of it, or a key it does not know."""
        if not loc or loc[0] not in _SECTION_MODELS or loc[0] in self.needs:
            return ""
        if len(loc) == 1 or str(loc[1]) in _SECTION_MODELS[str(loc[0])].model_fields:
            return "field"
        return "unknown"


def _leave_out(data: dict[str, Any], loc: Loc) -> str | None:
    """Take a deferred value out of ``data``. An optional field takes its default (no
    token). A required one (a notification URL: the required values of these sections are
    secrets) is stood in for, so that the rest of its section is still checked; the section
    is returned, to be dropped once the policy is valid."""
    section, content = str(loc[0]), data.get(str(loc[0]))
    if len(loc) == 1 or not isinstance(content, dict):
        data.pop(section, None)
        return None
    field = str(loc[1])
    if _SECTION_MODELS[section].model_fields[field].is_required():
        content[field] = _Unresolved()
        return section
    content.pop(field, None)
    return None


class _Unresolved(Secret):
    """The stand-in for a secret left unresolved: no value, so nothing to register."""

    def __init__(self) -> None:
        self._value = ""


def _unsupported(tag: str) -> str:
    shown = "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
    return f"tag {_clip(shown)} is not supported; write the value without a tag"


def _unreadable(node: yaml.Node, exc: Exception) -> str:
    kind = str(node.tag)[len(_CORE) :]
    text = str(node.value)
    if kind == "int" and sum(c.isdigit() for c in text) > sys.get_int_max_str_digits() > 0:
        return f"a number of more than {sys.get_int_max_str_digits()} digits"
    if kind == "timestamp" and isinstance(exc, ValueError):
        return f"not a valid date: {exc}"
    return f"not a valid {_KINDS.get(kind, kind)}"


def _expand(value: str, environ: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        var, default = match.group(1), match.group(2)
        if var in environ and environ[var] != "":
            return environ[var]
        if default is not None:
            return default
        raise KeyError(var)

    return _ENV_REF.sub(replace, value)


def _one_line(text: str) -> str:
    """``text`` with every character that is not printable (a newline, a control character,
    a line separator) escaped: one line, whatever the file held."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(loc: Loc) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key: the key is named
            continue
        shown = _clip(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{shown}" if out else shown)
    return out or "(top level)"


def _describe(error: ErrorDetails) -> str:
    loc: Loc = tuple(error["loc"])
    kind, msg = error["type"], error["msg"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, _keys_of(_section_at(loc[:-1])) - {key}, n=1)
        return f"{_field(loc)}: unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind == "missing":
        return f"{_field(loc)}: required"
    if kind == "model_type":  # pydantic names the class: say what to write instead
        return f"{_field(loc)}: must be a mapping{_expected(_section_at(loc))}"
    if kind == "dict_type":
        return f"{_field(loc)}: must be a mapping"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{_field(loc)}: must be one of {', '.join(choices)}"
    if kind == "string_pattern_mismatch" and loc[-1] == "name":
        return f"{_field(loc)}: must be lowercase letters, digits, '-' or '_' (at most 63)"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Input should be"):
        msg = "must be" + msg[len("Input should be") :]
    elif msg.startswith("List should have at least 1 item"):
        msg = "must list at least one entry"
    return f"{_field(loc)}: {msg[0].lower() + msg[1:] if msg else msg}"


def _expected(section: type[BaseModel] | None) -> str:
    example = getattr(section, "EXAMPLE", None)
    return f" such as {example}" if example else ""


def _section_at(loc: Loc) -> type[BaseModel] | None:
    """The policy section (model) a location names: ``targets[0].timeouts`` is Timeouts."""
    section: type[BaseModel] = Policy
    for part in loc:
        if isinstance(part, int):
            continue  # an entry of a list: the list's own model
        fields = {field.alias or name: field for name, field in section.model_fields.items()}
        field = fields.get(str(part))
        found = _model_args(field.annotation) if field is not None else []
        if len(found) != 1:
            return None
        section = found[0]
    return section


def _keys_of(section: type[BaseModel] | None) -> set[str]:
    """The keys a section takes; every key of the policy when the section is not known."""
    if section is None:
        return _known_keys()
    return {field.alias or name for name, field in section.model_fields.items()}


def _known_keys() -> set[str]:
    keys: set[str] = set()
    pending: list[type[BaseModel]] = [Policy]
    while pending:
        model = pending.pop()
        for field_name, field in model.model_fields.items():
            keys.add(field_name)
            for arg in _model_args(field.annotation):
                if arg not in pending:
                    pending.append(arg)
    return keys


def _model_args(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(_model_args(arg))
    return found
