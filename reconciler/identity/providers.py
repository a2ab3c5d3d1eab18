"""Choose a target's identity provider from its policy."""

from __future__ import annotations

from reconciler.identity.base import Provider
from reconciler.policy.model import Identity

RETRIES, BACKOFF = 3, 0.5
"""A provider that fails three times in a row (0.5s, 1s, 2s apart) fails the run; the
daemon's own retry schedule takes over from there."""


def open_provider(spec: Identity) -> Provider:
    if spec.provider == "file":
        from reconciler.identity.file import FileProvider

        assert spec.file is not None
        return FileProvider(spec.file.path)
    if spec.provider == "clerk":
        from reconciler.identity.clerk import ClerkProvider

        assert spec.clerk is not None
        clerk: Provider = ClerkProvider(
            spec.clerk.secret_key, spec.clerk.api_url, max_retries=RETRIES, backoff=BACKOFF
        )
        return clerk
    from reconciler.identity.scim import ScimProvider

    assert spec.scim is not None
    scim: Provider = ScimProvider(
        spec.scim.url, spec.scim.token, max_retries=RETRIES, backoff=BACKOFF
    )
    return scim
