"""The ``reconciler`` script: the command line, its start-up free of garbage collections.

Starting the command line allocates only what lives as long as the process (about 150
modules, their classes and functions, click's commands), yet the collector walks it all
about forty times on the way, some 8 ms of a 120 ms ``lint`` (a tenth of its run). So
collection waits until the command is known: a short-lived one (``lint``, ``--help``,
``--version``) runs without it, every other command gets it back, with start-up's objects
frozen out of its walks (``cli.collect_again``). Nothing here runs for library callers
or the tests: importing ``reconciler.cli`` leaves the collector as it is.
"""

from __future__ import annotations

import gc


def run() -> None:
    gc.disable()
    from reconciler.cli import run_command_line  # imported with collection paused

    run_command_line()
