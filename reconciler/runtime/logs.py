"""Log lines: JSON in a container (one object per line, for log pipelines), readable text
on a terminal. Context (target, concern, run id, outcome) travels as ``extra`` fields.
Every line passes the secrets filter."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from reconciler.secrets import redact

FIELDS = ("target", "concern", "run_id", "step", "outcome", "commit")


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the final message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_command(verbose: int) -> None:
    """A command's log lines on stderr, ``LEVEL logger: message``: warnings only, unless
    ``-v`` (info) or ``-vv`` (debug)."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)], handlers=[handler]
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            # The filter masks the message only: the exception's own text passes here.
            line["error"] = redact(self.formatException(record.exc_info).splitlines()[-1])
        return json.dumps(line)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{n}={getattr(record, n)}" for n in FIELDS if hasattr(record, n))
        base = (
            f"{datetime.fromtimestamp(record.created):%H:%M:%S} {record.levelname:<7} "
            f"{record.getMessage()}"
        )
        return f"{base}  [{context}]" if context else base


def configure(level: int = logging.INFO, json_lines: bool | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    use_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
