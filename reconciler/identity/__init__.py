"""Identity: the users in the provider and the rows of the users table, kept in step.

Providers (Clerk, SCIM 2.0, a file) behind one interface (``base.Provider``); the diff and
the changes as set operations in the database (``sync``); Svix-signed webhooks for
near-real-time changes (``webhooks``). The guard that never deletes customers on a bad
listing lives in ``reconciler.act.identity``, where the pipeline runs.
"""

from reconciler.identity.base import Provider, ProviderUser
from reconciler.identity.providers import open_provider

__all__ = ["Provider", "ProviderUser", "open_provider"]
