"""Keep secrets out of every line reconciler prints, logs, exports or raises.

Secrets enter through the policy (``${ENV}`` references and database passwords). Each one is
registered here as it is loaded; ``redact`` replaces every registered value in a text, and the
logging filter and the CLI's error printer run all output through it. ``Secret`` wraps a value
whose ``repr`` and ``str`` never show it.
"""

from __future__ import annotations

import threading
from urllib.parse import quote, quote_plus

_MASK = "***"
_lock = threading.Lock()
_known: set[str] = set()
_MIN_LENGTH = 4  # shorter values would mask ordinary words and numbers


def register(value: str) -> None:
    """Remember ``value`` (and its URL-quoted forms) so ``redact`` hides it everywhere."""
    if len(value) < _MIN_LENGTH:
        return
    with _lock:
        _known.update({value, quote(value, safe=""), quote_plus(value)})


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, _MASK)
    return text


class Secret:
    """A string that shows as ``***`` in ``repr``/``str``; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK})"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
