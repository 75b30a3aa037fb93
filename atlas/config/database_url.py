"""Which database URL is in force, and where it came from.

Precedence, first match wins:

1. an explicit URL (``--database-url``, ``db_url=``);
2. ``ATLAS_DATABASE_URL``;
3. ``STORAGE__DATABASE_URL`` (older Atlas deployments);
4. ``storage.database_url`` in the configuration file;
5. ``DATABASE_URL`` (generic, so it yields to the file);
6. nothing: the embedded PostgreSQL.

The environment beats the file so a deployment can point a checked-in config
at another server without editing it. The URL that wins is checked at once, so
a malformed one fails with one line naming its source, its password masked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from atlas.config.models import AtlasConfig
from atlas.errors import ConfigError

__all__ = ["EMBEDDED", "ResolvedURL", "resolve_database_url"]

EMBEDDED = "embedded"


@dataclass(frozen=True, repr=False)
class ResolvedURL:
    """A database URL and the name of the setting it came from (its repr masks the password)."""

    url: str | None
    source: str

    def __repr__(self) -> str:
        return f"ResolvedURL(url={_masked(self.url)!r}, source={self.source!r})"

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
    Raises :class:`ConfigError` when the winning URL is not one libpq reads as
    meant (wrong scheme, bad ``%`` escape, ...); the message masks the password.
    """
    resolved = _resolve(explicit, config, os.environ if environ is None else environ)
    if resolved.url is not None:
        from atlas.storage.urls import invalid_url_message  # atlas.storage imports this module

        message = invalid_url_message(resolved.url, resolved.source)
        if message is not None:
            raise ConfigError(message)
    return resolved


def _resolve(
    explicit: str | None, config: AtlasConfig | None, env: Mapping[str, str]
) -> ResolvedURL:
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


def _masked(url: str | None) -> str | None:
    from atlas.storage.urls import mask_url  # atlas.storage imports this module

    return None if url is None else mask_url(url)
