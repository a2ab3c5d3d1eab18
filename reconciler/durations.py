"""Human durations in the policy (``5s``, ``10m``, ``1h30m``, ``7d``) as seconds.

Used by the policy model for timeouts, grace periods, cadences and retention.
"""

from __future__ import annotations

import math
import re

MAX_SECONDS = 36500 * 86400.0
"""The longest duration a policy may give (100 years): anything longer is a mistake, and
would overflow the date arithmetic of windows, grace periods and schedules."""
_RULE = "must be a duration such as 30s, 5m, 2h or 7d"
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: object) -> float:
    """Seconds in ``text``; a bare number means seconds. Raises ``ValueError`` with the rule
    for anything else: another type, a negative, infinite or NaN number, more than 100
    years."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(_RULE)
    if isinstance(text, str):
        compact = text.strip().replace(" ", "")
        pos, total = 0, 0.0
        for match in _PART.finditer(compact):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(compact) or not compact:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise ValueError(f"{_RULE}, not {shown!r}")
        seconds = total
    else:
        try:
            seconds = float(text)
        except OverflowError:  # an int beyond any float
            seconds = math.inf
        if math.isnan(seconds):
            raise ValueError(_RULE)
        if seconds < 0:
            raise ValueError("must not be negative")
    if seconds > MAX_SECONDS:
        raise ValueError("must be at most 36500d (100 years)")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``1.2s``, ``5m``, ``2h30m``, ``7d``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    parts = []
    remaining = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
