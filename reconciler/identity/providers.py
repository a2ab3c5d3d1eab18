"""Choose a target's identity provider from its policy."""

from __future__ import annotations

from reconciler.identity.base import Provider
from reconciler.policy.model import Identity


def open_provider(spec: Identity) -> Provider:
    if spec.provider == "file":
        from reconciler.identity.file import FileProvider

        assert spec.file is not None
        return FileProvider(spec.file.path)
    if spec.provider == "clerk":
        from reconciler.identity.clerk import ClerkProvider

        assert spec.clerk is not None
        clerk: Provider = ClerkProvider(spec.clerk.secret_key, spec.clerk.api_url)
        return clerk
    from reconciler.identity.scim import ScimProvider

    assert spec.scim is not None
    scim: Provider = ScimProvider(spec.scim.url, spec.scim.token)
    return scim
