"""Check deploy/ against the daemon: the dashboard is a valid Grafana dashboard, and every
metric the dashboard and the alerting rules use is one ``reconciler.runtime.metrics`` exports.
With promtool on PATH, every dashboard expression is also parsed by Prometheus itself.

    python deploy/check.py        # exit 0 when everything holds, 1 with one line per problem
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from reconciler.runtime.conditions import REASONS
from reconciler.runtime.metrics import Metrics

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "grafana" / "reconciler-dashboard.json"
ALERTS = HERE / "prometheus" / "alerts.yaml"
METRIC = re.compile(r"\breconciler_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "info": ("_info",),
    "gauge": ("",),
}


def exported() -> set[str]:
    """Series names the daemon's registry exposes, from each family's name and type."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_expressions(problems: list[str]) -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    if board.get("schemaVersion") != 39:
        problems.append(f"{DASHBOARD.name}: schemaVersion must be 39")
    variables = {v.get("name"): v for v in board.get("templating", {}).get("list", [])}
    source = variables.get("datasource", {})
    if source.get("type") != "datasource" or source.get("query") != "prometheus":
        problems.append(f"{DASHBOARD.name}: needs a `datasource` variable of type prometheus")
    target = variables.get("target", {})
    query = target.get("query")
    query = query.get("query") if isinstance(query, dict) else query
    if query != "label_values(reconciler_condition, target)":
        problems.append(
            f"{DASHBOARD.name}: `target` must be label_values(reconciler_condition, target)"
        )
    ids: set[int] = set()
    cells: dict[tuple[int, int], str] = {}
    found = []
    for panel in board.get("panels", []):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            problems.append(f"{DASHBOARD.name}: panel id {panel.get('id')} is used twice")
        ids.add(panel.get("id"))
        box = panel["gridPos"]
        if box["x"] + box["w"] > 24:
            problems.append(f"{DASHBOARD.name}: panel {title!r} is wider than the grid")
        area = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        for other in sorted({cells[cell] for cell in area if cell in cells}):
            problems.append(f"{DASHBOARD.name}: panel {title!r} overlaps {other!r}")
        cells.update(dict.fromkeys(area, title))
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{DASHBOARD.name}: panel {title!r} must use ${{datasource}}")
        if not panel.get("targets"):
            problems.append(f"{DASHBOARD.name}: panel {title!r} has no query")
        found.extend((f"{title} ({t['refId']})", t["expr"]) for t in panel.get("targets", []))
    return found


def reason_colours(problems: list[str]) -> None:
    """The condition tables colour every reason a target can show, and only those."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in board.get("panels", []):
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            for prop in override.get("properties", []):
                for mapping in prop.get("value", []) if prop.get("id") == "mappings" else []:
                    mapped = set(mapping.get("options", {}))
                    if mapped & REASONS and mapped != REASONS:
                        title = panel.get("title", "?")
                        for reason in sorted(REASONS - mapped):
                            problems.append(
                                f"{DASHBOARD.name}: {title!r} has no colour for {reason}"
                            )
                        for reason in sorted(mapped - REASONS):
                            problems.append(f"{DASHBOARD.name}: {title!r} maps unknown {reason}")


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [
        (rule["alert"], rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def promtool_parses(expressions: list[tuple[str, str]], problems: list[str]) -> bool:
    promtool = shutil.which("promtool")
    if promtool is None:
        return False
    rules = [
        {"record": f"check:expression_{i}", "expr": expr.replace("$target", ".*")}
        for i, (_, expr) in enumerate(expressions)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dashboard_rules.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        result = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        problems.append(f"{DASHBOARD.name}: promtool rejects an expression:\n{result.stderr}")
    return True


def main() -> int:
    problems: list[str] = []
    known = exported()
    panels = dashboard_expressions(problems)
    for where, expr in [*panels, *alert_expressions()]:
        for name in sorted(set(METRIC.findall(expr)) - known):
            problems.append(f"{where}: {name} is not a metric the daemon exports")
    reason_colours(problems)
    parsed = promtool_parses(panels, problems)
    for line in problems:
        print(f"deploy/check.py: {line}", file=sys.stderr)
    if not problems:
        checked = "checked, parsed by promtool" if parsed else "checked (no promtool)"
        print(f"deploy: {len(panels)} dashboard expressions {checked}; metric names exported")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
