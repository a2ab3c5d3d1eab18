"""What every command of the command line shares: options, errors, exit codes, prompts."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

import click

from reconciler.errors import ReconcilerError
from reconciler.secrets import redact

if TYPE_CHECKING:
    from reconciler.policy import Policy, Target

EXIT_OK, EXIT_ERROR, EXIT_PENDING, EXIT_BLOCKED = 0, 1, 2, 3
P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str) -> NoReturn:
    for line in redact(message).splitlines():
        click.echo(f"reconciler: error: {line}", err=True)
    sys.exit(EXIT_ERROR)


def errors_to_exit(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ReconcilerError as exc:
            fail(str(exc))

    return wrapper


def chosen_targets(policy: Policy, name: str | None) -> list[Target]:
    return [policy.target(name)] if name else list(policy.targets)


config_option = click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(path_type=Path),
    envvar="RECONCILER_CONFIG",
    default="reconciler.yaml",
    show_default=True,
    help="The policy file ($RECONCILER_CONFIG).",
)
target_option = click.option("--target", "-t", "target", help="Only this target.")
output_option = click.option(
    "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True
)
"""Text for people, JSON for scripts: every command that reports takes the same option."""


def _use_parse_cache(ctx: click.Context, param: click.Parameter, no_cache: bool) -> None:
    from reconciler.safety import parse_cache

    parse_cache.enable(not no_cache)


cache_option = click.option(
    "--no-cache",
    is_flag=True,
    expose_value=False,
    callback=_use_parse_cache,
    help="Parse every migration again, without reading or writing the parse cache "
    "($RECONCILER_CACHE_DIR, else ~/.cache/reconciler).",
)
"""What each migration's SQL parses to is kept on disk between runs (``safety.parse_cache``),
so a command whose migrations are unchanged does not import the parser; the findings are
always judged afresh. Set for this process when the command's options are read."""


_NO_BREAK = "\u2011"  # a non-breaking hyphen: the wrapper splits lines at "-", not at this


class HelpFormatter(click.HelpFormatter):
    """click reflows help text to the terminal's width, and Python's wrapper breaks lines at
    hyphens too: ``before-restore`` came out as ``before-`` and ``restore``. This one breaks
    at spaces only, so a reason, a value or an option is never split."""

    def write_text(self, text: str) -> None:
        with self._hyphens_kept():
            super().write_text(text.replace("-", _NO_BREAK))

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        with self._hyphens_kept():
            kept = [(term, text.replace("-", _NO_BREAK)) for term, text in rows]
            super().write_dl(kept, col_max, col_spacing)

    @contextmanager
    def _hyphens_kept(self) -> Iterator[None]:
        start = len(self.buffer)
        yield
        self.buffer[start:] = [part.replace(_NO_BREAK, "-") for part in self.buffer[start:]]


class HelpContext(click.Context):
    formatter_class = HelpFormatter


def whole_words_in_help(command: click.Command) -> click.Command:
    """``command``'s help (and its subcommands', for a group) wrapped by ``HelpFormatter``."""
    command.context_class = HelpContext
    for sub in getattr(command, "commands", {}).values():
        whole_words_in_help(sub)
    return command


def interactive() -> bool:
    """Whether a person can answer a question (standard input is a terminal)."""
    return sys.stdin.isatty()


def confirm(question: str, action: str = "apply") -> None:
    """Ask on the terminal; only ``yes`` goes on. ``action`` names what is refused or
    cancelled otherwise."""
    if not interactive():
        fail(
            f"refusing to {action} without --yes: standard input is not a terminal. "
            "Nothing was changed."
        )
    answer = click.prompt(
        f"\n{question} Only 'yes' will be accepted", default="", show_default=False
    )
    if answer.strip() != "yes":
        fail(f"{action} cancelled: only 'yes' confirms. Nothing was changed.")
