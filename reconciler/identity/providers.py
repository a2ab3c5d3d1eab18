"""Choose a target's identity provider from its policy."""

from __future__ import annotations

import threading

from reconciler.identity.base import Provider
from reconciler.policy.model import Identity

RETRIES, BACKOFF = 3, 0.5
"""A provider that fails three times in a row (0.5s, 1s, 2s apart) fails the run; the
daemon's own retry schedule takes over from there."""


def open_provider(spec: Identity, cancel: threading.Event | None = None) -> Provider:
    """The provider ``spec`` names. An HTTP provider's every request, with its retries, ends
    within ``spec.deadline``, or as soon as ``cancel`` is set."""
    if spec.provider == "file":
        from reconciler.identity.file import FileProvider

        assert spec.file is not None
        return FileProvider(spec.file.path)
    if spec.provider == "clerk":
        from reconciler.identity.clerk import ClerkProvider

        assert spec.clerk is not None
        clerk: Provider = ClerkProvider(
            spec.clerk.secret_key,
            spec.clerk.api_url,
            max_retries=RETRIES,
            backoff=BACKOFF,
            deadline=spec.deadline,
            cancel=cancel,
        )
        return clerk
    from reconciler.identity.scim import ScimProvider

    assert spec.scim is not None
    scim: Provider = ScimProvider(
        spec.scim.url,
        spec.scim.token,
        max_retries=RETRIES,
        backoff=BACKOFF,
        deadline=spec.deadline,
        cancel=cancel,
    )
    return scim
