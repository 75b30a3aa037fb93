"""YAML loading: validation, ${ENV} expansion, and one-line errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlas.config import AtlasConfig, StorageConfig, config_from_mapping, load_config
from atlas.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "atlas.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_storage_block_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "storage:\n"
        "  database_url: postgresql://atlas@db/atlas\n"
        "  min_connections: 2\n"
        "  max_connections: 8\n"
        "  statement_timeout_seconds: 1.5\n",
    )
    assert load_config(path).storage == StorageConfig(
        database_url="postgresql://atlas@db/atlas",
        min_connections=2,
        max_connections=8,
        statement_timeout_seconds=1.5,
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty-file"),
        pytest.param("# nothing but a comment\n", id="comment-only"),
        pytest.param("storage:\n", id="null-storage"),
    ],
)
def test_file_without_storage_uses_defaults(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text))
    assert config.storage is None
    assert config.runtime_safety.review.default_export_statuses == ("approved",)


def test_runtime_sections_are_validated(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "agent:\n  type: litellm\n  model: m\n  base_url: http://127.0.0.1:4000\n"
        "orchestration:\n  max_retries: 1\n",
    )
    config = load_config(path)
    assert (config.agent.type, config.agent.model) == ("litellm", "m")  # type: ignore[union-attr]
    assert config.orchestration.max_retries == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "agent:\n  type: python\n  import_paht: m:f\n",
            "agent.import_path: Field required; agent.import_paht: unknown key; allowed here: "
            "type, import_path, kwargs.",
            id="adapter-typo",
        ),
        pytest.param(
            "agent:\n  import_path: m:f\n",
            "agent: a 'type' is needed of python, http_api, openai, litellm.",
            id="adapter-without-type",
        ),
        pytest.param(
            "agent:\n  type: claude\n",
            "agent: type 'claude' is not one of python, http_api, openai, litellm.",
            id="adapter-unknown-type",
        ),
        pytest.param(
            "rim:\n  judges:\n    - identifier: j\n      adapter: {type: python}\n",
            "rim.judges.0.adapter.import_path: Field required.",
            id="judge-adapter",
        ),
    ],
)
def test_runtime_section_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "storage:\n  databse_url: x\n",
            "storage.databse_url: unknown key; allowed here: database_url, min_connections, "
            "max_connections, statement_timeout_seconds, connect_timeout_seconds, "
            "apply_schema_on_connect.",
            id="typo-in-storage",
        ),
        pytest.param(
            "storag:\n  database_url: x\n",
            "storag: unknown key; allowed here: storage, runtime_safety, agent, teacher, rim, "
            "orchestration, learning, metadata.",
            id="typo-at-top-level",
        ),
        pytest.param(
            "runtime_safety:\n  review:\n    require_aproval: false\n",
            "runtime_safety.review.require_aproval: unknown key; "
            "allowed here: require_approval, default_export_statuses.",
            id="typo-two-levels-down",
        ),
        pytest.param(
            "storage:\n  max_connections: 0\n",
            "storage.max_connections: Input should be greater than or equal to 1 (got 0).",
            id="pool-too-small",
        ),
        pytest.param(
            "storage:\n  statement_timeout_seconds: soon\n",
            "storage.statement_timeout_seconds: Input should be a valid number, "
            "unable to parse string as a number (got 'soon').",
            id="timeout-not-a-number",
        ),
        pytest.param(
            "runtime_safety:\n  review:\n    default_export_statuses: [approved, good]\n",
            "runtime_safety.review.default_export_statuses: unknown review status 'good'; "
            "use pending, approved, quarantined or all.",
            id="unknown-review-status",
        ),
        pytest.param(
            "storage:\n  min_connections: 6\n  max_connections: 2\n",
            "storage: min_connections (6) must not exceed max_connections (2).",
            id="min-above-max",
        ),
    ],
)
def test_invalid_value_names_file_and_dotted_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {message}"


def test_several_errors_are_reported_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "storage:\n  max_connections: 0\n  colour: red\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message
    assert "storage.max_connections:" in message
    assert "storage.colour: unknown key" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("storage: [\n", "line 2: expected the node content", id="bad-yaml"),
        pytest.param("- storage\n", "the top level must be a mapping", id="top-level-list"),
    ],
)
def test_unreadable_file_content(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert str(caught.value) == f"Config file {missing} does not exist: check the path."


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        pytest.param(
            "postgresql://atlas:${PGPASS}@db/atlas",
            {"PGPASS": "s3cret"},
            "postgresql://atlas:s3cret@db/atlas",
            id="set",
        ),
        pytest.param("${ATLAS_TEST_DB:-postgresql://d/b}", {}, "postgresql://d/b", id="default"),
        pytest.param(
            "${ATLAS_TEST_DB:-postgresql://d/b}",
            {"ATLAS_TEST_DB": "x"},
            "x",
            id="set-beats-default",
        ),
        pytest.param("${ATLAS_TEST_DB:-}", {}, "", id="empty-default"),
        pytest.param("plain $HOME text", {}, "plain $HOME text", id="no-braces-untouched"),
    ],
)
def test_environment_references_expand(
    monkeypatch: pytest.MonkeyPatch, value: str, environ: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv("ATLAS_TEST_DB", raising=False)
    for name, setting in environ.items():
        monkeypatch.setenv(name, setting)
    config = config_from_mapping({"storage": {"database_url": value}})
    assert config.storage is not None
    assert config.storage.database_url == expected


def test_expansion_reaches_nested_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_TEST_MODEL", "gpt-x")
    config = config_from_mapping({"metadata": {"tags": ["${ATLAS_TEST_MODEL}", "b"]}})
    assert config.metadata.tags == ("gpt-x", "b")


def test_unset_variable_names_file_key_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATLAS_TEST_UNSET", raising=False)
    path = write(tmp_path, "storage:\n  database_url: postgresql://u:${ATLAS_TEST_UNSET}@h/d\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: storage.database_url refers to ${{ATLAS_TEST_UNSET}}, which is not set: "
        "export ATLAS_TEST_UNSET or write ${ATLAS_TEST_UNSET:-default}."
    )


def test_expanded_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_TEST_POOL", "many")
    with pytest.raises(ConfigError, match=r"storage\.max_connections: .*\(got 'many'\)"):
        config_from_mapping({"storage": {"max_connections": "${ATLAS_TEST_POOL}"}})


def test_config_is_frozen() -> None:
    config = AtlasConfig(storage=StorageConfig())
    with pytest.raises(ValueError, match="frozen"):
        config.storage = None  # type: ignore[misc]
