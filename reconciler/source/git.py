"""A git repository as the source of desired state: fetched by the daemon with the ``git``
command, one commit at a time, so every run can name the commit it reconciled."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from reconciler.errors import SourceError
from reconciler.secrets import redact


class GitCheckout:
    def __init__(self, url: str, ref: str, directory: Path) -> None:
        self.url, self.ref, self.directory = url, ref, directory

    def _git(self, *args: str) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        try:
            result = subprocess.run(
                ["git", *args],
                cwd=self.directory,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceError(f"git {args[0]}: {exc}") from None
        if result.returncode != 0:
            lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
            raise SourceError(
                redact(
                    f"git {args[0]} {redact(self.url)} {self.ref}: "
                    f"{lines[-1] if lines else result.returncode}"
                )
            )
        return result.stdout.strip()

    def fetch(self) -> str:
        """Bring the checkout to the tip of ``ref``; the commit SHA."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.directory / ".git").exists():
            self._git("init", "--quiet")
        self._git("fetch", "--quiet", "--depth", "1", self.url, self.ref)
        self._git("checkout", "--quiet", "--force", "FETCH_HEAD")
        return self._git("rev-parse", "HEAD")
