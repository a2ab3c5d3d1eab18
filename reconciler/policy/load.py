"""Load a policy file: YAML with line numbers, ``${ENV}`` expansion, strict validation.

The YAML is composed into nodes (not loaded directly) so every value keeps its line and
column. Each error becomes one line that names the file, the position and the field::

    policy.yaml:7:7: targets[0].migrations.layout: must be one of prisma, alembic

Environment references are expanded in scalar values: ``${VAR}`` (an error when unset) and
``${VAR:-default}``; ``$${`` writes a literal ``${``. Expanded values are never echoed in
errors, since they often hold passwords.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.errors import PolicyError
from reconciler.policy.model import Policy
from reconciler.textfiles import read_utf8

Loc = tuple[str | int, ...]
_SCALARS = yaml.constructor.SafeConstructor()
_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Located:
    """Positions (1-based line, column) of every key and value, by path."""

    def __init__(self) -> None:
        self.marks: dict[Loc, tuple[int, int]] = {}

    def at(self, loc: Loc) -> tuple[int, int]:
        while loc not in self.marks and loc:
            loc = loc[:-1]
        return self.marks.get(loc, (1, 1))


def load_policy(path: str | Path, environ: Mapping[str, str] | None = None) -> Policy:
    """Read and validate the policy at ``path``; raises ``PolicyError`` listing every problem."""
    file = Path(path)
    try:
        text = read_utf8(file)
    except FileNotFoundError:
        raise PolicyError(f"{file}: policy file not found") from None
    except OSError as exc:
        raise PolicyError(f"{file}: cannot read the policy: {exc}") from None
    except ValueError as exc:
        raise PolicyError(str(exc)) from None
    return parse_policy(text, file, os.environ if environ is None else environ)


def parse_policy(text: str, file: Path, environ: Mapping[str, str]) -> Policy:
    """Validate policy ``text`` as if read from ``file`` (used for git sources too)."""
    name = str(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        raise PolicyError(f"{name}:{where}: invalid YAML: {exc.problem or exc}") from None
    if root is None:
        raise PolicyError(f"{name}:1:1: the policy is empty; it needs at least `targets:`")
    located = _Located()
    problems: list[tuple[int, int, str]] = []
    data = _to_python(root, (), located, environ, problems)
    if problems:
        raise PolicyError("\n".join(f"{name}:{ln}:{col}: {msg}" for ln, col, msg in problems))
    if not isinstance(data, dict):
        raise PolicyError(f"{name}:1:1: the policy must be a mapping with `targets:`")
    base_dir = file.resolve().parent
    try:
        return Policy.model_validate(data, context={"base_dir": base_dir, "policy_file": name})
    except ValidationError as exc:
        lines = sorted({(*located.at(tuple(e["loc"])), _describe(e)) for e in exc.errors()})
        raise PolicyError(
            "\n".join(f"{name}:{ln}:{col}: {msg}" for ln, col, msg in lines)
        ) from None


def _to_python(
    node: yaml.Node,
    loc: Loc,
    located: _Located,
    environ: Mapping[str, str],
    problems: list[tuple[int, int, str]],
) -> Any:
    located.marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                problems.append((*where, f"{_field((*loc, key))}: duplicate key"))
                continue
            located.marks[(*loc, key)] = where
            result[key] = _to_python(value_node, (*loc, key), located, environ, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(item, (*loc, i), located, environ, problems)
            for i, item in enumerate(node.value)
        ]
    value = _SCALARS.construct_object(node, deep=True)
    if isinstance(value, str) and "$" in value:
        try:
            return _expand(value, environ)
        except KeyError as missing:
            where = located.marks[loc]
            problems.append(
                (
                    *where,
                    f"{_field(loc)}: environment variable {missing.args[0]} is not set "
                    f"(write ${{{missing.args[0]}:-default}} to give a default)",
                )
            )
    return value


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


def _field(loc: Loc) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key: the key is named
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _describe(error: ErrorDetails) -> str:
    loc: Loc = tuple(error["loc"])
    kind, msg = error["type"], error["msg"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, _known_keys(), n=1)
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
