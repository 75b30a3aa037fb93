"""Which database URL is in force, and where it came from.

Precedence, first match wins:

1. an explicit URL (``--database-url``, ``db_url=``);
2. ``ATLAS_DATABASE_URL``;
3. ``STORAGE__DATABASE_URL`` (older Atlas deployments);
4. ``storage.database_url`` in the configuration file;
5. ``DATABASE_URL`` (generic, so it yields to the file);
6. nothing: the embedded PostgreSQL.

The environment beats the file so a deployment can point a checked-in config
at another server without editing it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from atlas.config.models import AtlasConfig

__all__ = ["EMBEDDED", "ResolvedURL", "resolve_database_url"]

EMBEDDED = "embedded"


@dataclass(frozen=True)
class ResolvedURL:
    """A database URL and the name of the setting it came from."""

    url: str | None
    source: str

    @property
    def is_embedded(self) -> bool:
        """True when no URL is configured and the embedded server is to be used."""
        return self.url is None


def resolve_database_url(
    explicit: str | None = None,
    config: AtlasConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedURL:
    """Resolve the database URL by the precedence in this module's docstring.

    Empty strings count as unset, so ``ATLAS_DATABASE_URL=`` falls through.
    """
    env = os.environ if environ is None else environ
    if explicit:
        return ResolvedURL(explicit, "--database-url")
    for name in ("ATLAS_DATABASE_URL", "STORAGE__DATABASE_URL"):
        if env.get(name):
            return ResolvedURL(env[name], name)
    if config is not None and config.storage is not None and config.storage.database_url:
        return ResolvedURL(config.storage.database_url, "storage.database_url")
    if env.get("DATABASE_URL"):
        return ResolvedURL(env["DATABASE_URL"], "DATABASE_URL")
    return ResolvedURL(None, EMBEDDED)
