"""configs/data: the Hydra data configs compose and instantiate into ready datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hydra
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from atlas.runtime.traces import AtlasSessionTrace
from trainers.runtime_dataset import (
    flatten_traces_for_training,
    load_runtime_traces,
    sessions_to_rl_records,
)
from trainers.trace_datasets import RuntimePostgresDataset, RuntimeTracesDataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def compose(config: str, *overrides: str) -> DictConfig:
    """The ``data`` node of ``data/<config>`` with ``overrides`` applied."""
    with hydra.initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = hydra.compose(config_name=f"data/{config}", overrides=list(overrides))
    data = cfg.data
    assert isinstance(data, DictConfig)
    return data


@pytest.fixture
def atlas_database(trainer_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point ATLAS_DATABASE_URL, which runtime_postgres.yaml reads, at the seeded database."""
    monkeypatch.setenv("ATLAS_DATABASE_URL", trainer_db)
    yield trainer_db


def test_traces_config_instantiates_a_dataset_of_rl_records(trainer_export):
    dataset = instantiate(compose("runtime_traces", f"data.path={trainer_export}"))
    assert isinstance(dataset, RuntimeTracesDataset)
    assert list(dataset) == sessions_to_rl_records(load_runtime_traces(trainer_export))


def test_group_override_composes_too(trainer_export):
    with hydra.initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = hydra.compose(overrides=["+data=runtime_traces", f"data.path={trainer_export}"])
    assert isinstance(instantiate(cfg.data), RuntimeTracesDataset)


@pytest.mark.parametrize(
    ("records", "convert"),
    [
        pytest.param("rl", sessions_to_rl_records, id="rl"),
        pytest.param("flat", flatten_traces_for_training, id="flat"),
        pytest.param("sessions", list, id="sessions"),
    ],
)
def test_records_choose_what_iteration_yields(trainer_export, records, convert):
    cfg = compose("runtime_traces", f"data.path={trainer_export}", f"data.records={records}")
    assert list(instantiate(cfg)) == convert(load_runtime_traces(trainer_export))


def test_postgres_config_reads_the_database_url_from_the_environment(
    atlas_database, trainer_sessions
):
    cfg = compose("runtime_postgres", "data.include_all_review_statuses=true")
    dataset = instantiate(cfg)
    assert isinstance(dataset, RuntimePostgresDataset)
    assert list(dataset) == sessions_to_rl_records(trainer_sessions)


def test_postgres_config_equals_the_jsonl_config(atlas_database, trainer_export):
    from_db = compose("runtime_postgres", "data.include_all_review_statuses=true")
    from_file = compose("runtime_traces", f"data.path={trainer_export}")
    assert list(instantiate(from_db)) == list(instantiate(from_file))


def test_postgres_config_passes_filters(atlas_database):
    cfg = compose(
        "runtime_postgres",
        "data.status_filters=[succeeded]",
        "data.review_status_filters=[approved,pending]",
        "data.records=sessions",
        "data.batch_size=4",
    )
    dataset = instantiate(cfg)
    sessions = list(dataset)
    assert sessions and all(isinstance(s, AtlasSessionTrace) for s in sessions)
    assert {(s.status, s.review_status in ("approved", "pending")) for s in sessions} == {
        ("succeeded", True)
    }
    assert dataset.count_sessions() == len(sessions)


def test_database_url_defaults_to_null_without_the_environment():
    assert compose("runtime_postgres").database_url is None


def test_datasets_can_be_iterated_again(trainer_export):
    dataset = instantiate(compose("runtime_traces", f"data.path={trainer_export}"))
    assert list(dataset.sessions()) == list(dataset.sessions())


def test_limit_and_offset_apply_to_count_sessions(atlas_database, trainer_sessions):
    cfg = compose(
        "runtime_postgres",
        "data.include_all_review_statuses=true",
        "data.offset=20",
        "data.limit=10",
    )
    dataset = instantiate(cfg)
    assert dataset.count_sessions() == len(trainer_sessions) - 20 == len(list(dataset.sessions()))


@pytest.mark.parametrize(
    ("config", "override", "message"),
    [
        pytest.param("runtime_postgres", "data.min_reward=high", "min_reward", id="bad-filter"),
        pytest.param("runtime_postgres", "data.records=steps", "records must be", id="records"),
        pytest.param("runtime_traces", "data.path=/nonexistent.jsonl", "does not exist", id="path"),
    ],
)
def test_bad_settings_fail_at_instantiation(config, override, message):
    with pytest.raises(InstantiationException, match=message):
        instantiate(compose(config, override))


def test_skipped_lines_are_counted(trainer_export, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_bytes(trainer_export.read_bytes() + b"{broken\n")
    dataset = instantiate(compose("runtime_traces", f"data.path={path}", "data.on_error=skip"))
    assert len(list(dataset.sessions())) == 24
    assert dataset.last_report.skipped == 1
