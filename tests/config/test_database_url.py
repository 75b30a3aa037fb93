"""Which database URL wins: explicit > ATLAS_DATABASE_URL > STORAGE__DATABASE_URL > file > ..."""

from __future__ import annotations

import pytest

from atlas.config import EMBEDDED, AtlasConfig, StorageConfig, resolve_database_url
from atlas.errors import ConfigError

FILE = AtlasConfig(storage=StorageConfig(database_url="postgresql://file/db"))
ALL_ENV = {
    "ATLAS_DATABASE_URL": "postgresql://atlas-env/db",
    "STORAGE__DATABASE_URL": "postgresql://storage-env/db",
    "DATABASE_URL": "postgresql://generic-env/db",
}


def without(*names: str) -> dict[str, str]:
    return {k: v for k, v in ALL_ENV.items() if k not in names}


@pytest.mark.parametrize(
    ("explicit", "config", "environ", "url", "source"),
    [
        pytest.param(
            "postgresql://cli/db", FILE, ALL_ENV, "postgresql://cli/db", "--database-url",
            id="explicit-beats-everything",
        ),
        pytest.param(
            None, FILE, ALL_ENV, "postgresql://atlas-env/db", "ATLAS_DATABASE_URL",
            id="atlas-env-beats-file",
        ),
        pytest.param(
            None, FILE, without("ATLAS_DATABASE_URL"), "postgresql://storage-env/db",
            "STORAGE__DATABASE_URL", id="legacy-env-beats-file",
        ),
        pytest.param(
            None, FILE, {"DATABASE_URL": "postgresql://generic-env/db"}, "postgresql://file/db",
            "storage.database_url", id="file-beats-generic-env",
        ),
        pytest.param(
            None, AtlasConfig(), {"DATABASE_URL": "postgresql://generic-env/db"},
            "postgresql://generic-env/db", "DATABASE_URL", id="generic-env-without-storage-block",
        ),
        pytest.param(
            None, AtlasConfig(storage=StorageConfig()), {}, None, EMBEDDED,
            id="storage-block-without-url-is-embedded",
        ),
        pytest.param(None, None, {}, None, EMBEDDED, id="nothing-is-embedded"),
        pytest.param(
            "", FILE, {"ATLAS_DATABASE_URL": ""}, "postgresql://file/db", "storage.database_url",
            id="empty-strings-count-as-unset",
        ),
    ],
)  # fmt: skip
def test_precedence(
    explicit: str | None,
    config: AtlasConfig | None,
    environ: dict[str, str],
    url: str | None,
    source: str,
) -> None:
    resolved = resolve_database_url(explicit, config, environ)
    assert (resolved.url, resolved.source) == (url, source)
    assert resolved.is_embedded is (url is None)


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_DATABASE_URL", "postgresql://from-process/db")
    assert resolve_database_url(config=FILE).url == "postgresql://from-process/db"


@pytest.mark.parametrize(
    ("explicit", "config", "environ", "source"),
    [
        pytest.param("mysql://u:secret@h/db", None, {}, "--database-url", id="explicit"),
        pytest.param(None, None, {"ATLAS_DATABASE_URL": "mysql://u:secret@h/db"},
                     "ATLAS_DATABASE_URL", id="atlas-env"),
        pytest.param(None, AtlasConfig(storage=StorageConfig(database_url="mysql://u:secret@h/db")),
                     {}, "storage.database_url", id="file"),
    ],
)  # fmt: skip
def test_malformed_winner_is_a_config_error_naming_its_source(
    explicit: str | None, config: AtlasConfig | None, environ: dict[str, str], source: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_database_url(explicit, config, environ)
    message = str(caught.value)
    assert message.startswith("Database URL mysql://u:***@h/db is not valid: ")
    assert message.endswith(f"(set by {source}).")
    assert "secret" not in message + repr(caught.value)


def test_malformed_loser_is_not_checked() -> None:
    resolved = resolve_database_url(None, None, {"ATLAS_DATABASE_URL": "postgresql://h/db",
                                                 "DATABASE_URL": "mysql://h/db"})  # fmt: skip
    assert resolved.url == "postgresql://h/db"


def test_repr_masks_the_password() -> None:
    resolved = resolve_database_url("postgresql://u:secret@h/db", None, {})
    assert repr(resolved) == "ResolvedURL(url='postgresql://u:***@h/db', source='--database-url')"
