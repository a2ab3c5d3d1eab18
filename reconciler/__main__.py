"""``python -m reconciler``: the same command line as the ``reconciler`` script."""

from reconciler.cli import run_command_line

run_command_line()
