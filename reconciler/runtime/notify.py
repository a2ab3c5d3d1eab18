"""Notifications: a webhook call when a target's condition changes (not on every run).

Generic JSON, or Slack's ``{"text": ...}`` shape. Delivery happens on a background thread
with retries (1s, 2s, 4s), so a slow receiver never delays a reconcile.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import httpx

from reconciler.policy.model import Notifications
from reconciler.runtime.conditions import Condition
from reconciler.secrets import redact

log = logging.getLogger(__name__)
ATTEMPTS = 4


class Notifier:
    def __init__(self, settings: Notifications | None) -> None:
        self.settings = settings
        self.deliveries: list[threading.Thread] = []

    def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the deliveries under way: a process that ends
        (``run --once``) sends what it has to say first, and no delivery is cut in the
        middle of a call into the network or TLS libraries as the interpreter shuts down
        (which can crash it)."""
        deadline = time.monotonic() + timeout
        for thread in list(self.deliveries):
            thread.join(max(deadline - time.monotonic(), 0))

    def changed(
        self,
        target: str,
        before: tuple[Condition, ...],
        after: tuple[Condition, ...],
        commit: str | None,
    ) -> None:
        if self.settings is None:
            return
        old = next((c for c in before if c.type == "Ready"), None)
        new = next((c for c in after if c.type == "Ready"), None)
        if new is None or (
            old is not None and (old.status, old.reason) == (new.status, new.reason)
        ):
            return
        stalled = next((c.status for c in after if c.type == "Stalled"), False)
        body = {
            "target": target,
            "ready": new.status,
            "stalled": stalled,
            "reason": new.reason,
            "message": redact(new.message),
            "previous_reason": old.reason if old else None,
            "commit": commit,
            "time": datetime.now(UTC).isoformat(),
        }
        if self.settings.format == "slack":
            mark = (
                ":white_check_mark:"
                if new.status
                else (":rotating_light:" if stalled else ":warning:")
            )
            body = {"text": f"{mark} *{target}* is {new.reason}: {redact(new.message)}"}
        thread = threading.Thread(target=self._deliver, args=(body,), name="notify", daemon=True)
        self.deliveries = [t for t in self.deliveries if t.is_alive()] + [thread]
        thread.start()

    def _deliver(self, body: dict[str, object]) -> None:
        assert self.settings is not None
        url = self.settings.url.reveal()
        for attempt in range(ATTEMPTS):
            try:
                response = httpx.post(url, json=body, timeout=10)
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 400:
                        log.warning("notification refused: HTTP %s", response.status_code)
                    return
            except httpx.HTTPError as exc:
                log.debug("notification attempt %s failed: %s", attempt + 1, exc)
            if attempt + 1 < ATTEMPTS:  # no wait after the last one
                time.sleep(2**attempt)
        log.warning("notification not delivered after %s attempts", ATTEMPTS)
