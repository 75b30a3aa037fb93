"""Export manifests: what produced a training file, and proof that it is still that file.

``arc-atlas export`` writes ``<output>.manifest.json`` beside every file it
writes, whatever the ``--format`` (``--no-manifest`` turns it off). It records
the arc-atlas and schema versions, the format and its options, the filters
and the resolved review gate, the snapshot the export read in (its time and,
for an incremental export, the watermark range), the counts of sessions,
steps, events and records, the sha256 of the file, a sha256 per record with
their Merkle root, and the redaction report.

A record is a line of a JSONL file (a session, a GRPO group, a DPO pair),
hashed as written, or a row of a Parquet file, hashed as canonical JSON
(sorted keys) of the row as read back. Session records are listed by
session id; groups, pairs and rows by position, and the manifest then also
lists the sessions they were made from (``source_sessions``), so that the
database check can make them again.

:func:`verify_manifest` (``arc-atlas verify MANIFEST``) checks a file against
its manifest and names the first record that differs; given a database, it
also checks that the database would still write the same records.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from atlas.errors import ConfigError
from atlas.training_data.incremental import IdRanges, IncrementalRun
from atlas.training_data.output import open_decompressed, place_file, stage_file
from atlas.training_data.review_gate import ReviewGate

__all__ = [
    "MANIFEST_SUFFIX",
    "MANIFEST_VERSION",
    "ManifestRecords",
    "VerifyResult",
    "manifest_body",
    "manifest_path",
    "merkle_root",
    "parquet_records",
    "record_hash",
    "verify_manifest",
    "write_manifest",
]

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
# The formats a manifest may describe (a manifest without "format" is a JSONL session export).
FORMATS = ("jsonl", "parquet", "grpo", "dpo")


def manifest_path(output: str | os.PathLike[str]) -> Path:
    """Where the manifest of ``output`` lives: beside it, ``<output>.manifest.json``."""
    path = Path(output)
    return path.with_name(path.name + MANIFEST_SUFFIX)


def record_hash(line: bytes) -> bytes:
    """The sha256 of one written JSONL line (newline included), as a Merkle leaf."""
    return hashlib.sha256(b"\x00" + line).digest()


def merkle_root(leaves: Sequence[bytes]) -> str:
    """The root over ``leaves`` (hex): pairs hashed level by level, an odd last one carried up.

    Leaves and inner nodes are hashed with different prefixes, so no leaf can
    pose as a node. An empty export has the hash of nothing as its root.
    """
    level = list(leaves)
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


# How each record is hashed, by whether the file holds lines or Parquet rows.
_LINE_HASH = (
    "sha256 of 0x00 + the line, newline included; root: sha256(0x01 + left + right) per pair, "
    "an odd last node carried up"
)
_ROW_HASH = (
    "sha256 of 0x00 + the row read back as JSON with sorted keys and a newline; root: "
    "sha256(0x01 + left + right) per pair, an odd last node carried up"
)


@dataclass
class ManifestRecords:
    """The records of an export in file order: a key and a hash each.

    ``key`` says what identifies a record: ``session_id`` (a session export)
    or ``position`` (groups, pairs and table rows, counted from 1).
    """

    key: str = "session_id"
    keys: list[int] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)

    def add(self, key: int, line: bytes) -> None:
        self.keys.append(key)
        self.hashes.append(record_hash(line))

    def add_next(self, line: bytes) -> None:
        """Add a record identified by its position."""
        self.add(len(self.keys) + 1, line)


def _row_line(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def parquet_records(path: str | os.PathLike[str]) -> ManifestRecords:
    """The rows of a Parquet file as manifest records, read back batch by batch."""
    import pyarrow.parquet as pq

    records = ManifestRecords(key="position")
    with pq.ParquetFile(path) as table:
        for batch in table.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                records.add_next(_row_line(row))
    return records


def manifest_body(
    conn: Any,
    filters: dict[str, Any],
    gate: ReviewGate,
    run: IncrementalRun | None = None,
) -> dict[str, Any]:
    """What a manifest records of the export itself, read in the export's transaction."""
    from atlas import __version__
    from atlas.storage.migrate import schema_status

    row = conn.execute("SELECT now(), pg_current_snapshot()::text").fetchone()
    assert row is not None
    taken_at, snapshot = row
    return {
        "arc_atlas_version": __version__,
        "schema_version": schema_status(conn).current_version,
        "filters": {k: v for k, v in filters.items() if v is not None},
        "review_gate": list(gate.statuses) if gate.statuses is not None else "all",
        "snapshot": {"taken_at": taken_at, "snapshot": snapshot},
        "watermark": (
            {"from": run.state.snapshot, "to": run.snapshot, "runs_before": run.state.runs}
            if run is not None
            else None
        ),
    }


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(output: str, body: dict[str, Any], records: ManifestRecords) -> Path:
    """Write ``<output>.manifest.json`` atomically; ``body`` holds everything but the hashes."""
    path = manifest_path(output)
    payload = {
        "manifest_version": MANIFEST_VERSION,
        **body,
        "output": {"file": Path(output).name, "sha256": _file_sha256(Path(output))},
        "records": {
            "count": len(records.keys),
            "key": records.key,
            "merkle_root": merkle_root(records.hashes),
            "hash": _ROW_HASH if body.get("format") == "parquet" else _LINE_HASH,
            "items": [[key, h.hex()] for key, h in zip(records.keys, records.hashes, strict=True)],
        },
    }
    data = orjson.dumps(payload, default=str, option=orjson.OPT_INDENT_2)
    place_file(stage_file(path, data), path)
    return path


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_manifest` found: ``ok``, and one line per problem."""

    manifest: Path
    records: int
    problems: list[str]
    database_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest at ``path``; :class:`ConfigError` when it is not one."""
    target = Path(path)
    try:
        data = orjson.loads(target.read_bytes())
        if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
            raise ValueError("not an arc-atlas export manifest")
        if data.get("format", "jsonl") not in FORMATS:
            raise ValueError(f"unknown format {data['format']!r}")
        data["records"]["items"]
        data["output"]["file"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{target} is not a readable export manifest ({exc}).") from None
    return data


def _lines(path: Path) -> Iterable[bytes]:
    with open_decompressed(path) as handle:
        yield from handle


def _file_records(path: Path, data: dict[str, Any]) -> ManifestRecords:
    """The records of the file a manifest describes, keyed as the manifest keys them."""
    if data.get("format") == "parquet":
        return parquet_records(path)
    records = ManifestRecords(key=data["records"].get("key", "session_id"))
    for line in _lines(path):
        if records.key == "session_id":
            records.add(int(orjson.loads(line)["session_id"]), line)
        else:
            records.add_next(line)
    return records


def _compare(expected: list[list[Any]], found: ManifestRecords, where: str) -> list[str]:
    problems = []
    if len(found.keys) != len(expected):
        problems.append(
            f"{where} holds {len(found.keys):,} records; the manifest lists {len(expected):,}."
        )
    pairs = zip(expected, found.keys, found.hashes, strict=False)
    for index, ((key, digest), got_key, got) in enumerate(pairs):
        if int(key) != got_key or digest != got.hex():
            which = f" (session {key})" if found.key == "session_id" else ""
            problems.append(
                f"record {index + 1}{which} differs in {where}"
                + (f": found session {got_key} there." if int(key) != got_key else ".")
            )
            break
    return problems


def verify_manifest(
    path: str | os.PathLike[str], *, db_url: Any = None, config: Any = None
) -> VerifyResult:
    """Check the file a manifest describes; with ``db_url``, also the database's records now.

    The file must have the manifest's sha256 and records (each line's hash,
    in order, and their Merkle root). With ``db_url`` the manifest's sessions
    are exported again, in the same way, and each record must hash the same.
    """
    manifest_file = Path(path)
    data = load_manifest(manifest_file)
    items: list[list[Any]] = data["records"]["items"]
    output = manifest_file.with_name(str(data["output"]["file"]))
    problems: list[str] = []
    if not output.exists():
        return VerifyResult(manifest_file, len(items), [f"{output} is missing."])
    if _file_sha256(output) != data["output"]["sha256"]:
        problems.append(
            f"{output.name}: its sha256 differs from the manifest's (the file changed)."
        )
    try:
        found = _file_records(output, data)
    except Exception as exc:
        problems.append(f"{output.name} cannot be read as its manifest's records ({exc}).")
        return VerifyResult(manifest_file, len(items), problems)
    if merkle_root(found.hashes) != data["records"]["merkle_root"]:
        problems += _compare(items, found, output.name) or [
            f"{output.name}: the records' Merkle root differs from the manifest's."
        ]
    checked = False
    if db_url is not None:
        problems += _against_database(data, items, db_url, config)
        checked = True
    return VerifyResult(manifest_file, len(items), problems, checked)


def _against_database(
    data: dict[str, Any], items: list[list[Any]], db_url: Any, config: Any
) -> list[str]:
    if data.get("redaction") is not None:
        return [
            "This export was redacted: the database holds the values before redaction, so it "
            "cannot be compared record by record."
        ]
    if data.get("format", "jsonl") != "jsonl":
        return _derived_against_database(data, items, db_url, config)
    from atlas.training_data.export import export_jsonl

    ids = [int(sid) for sid, _ in items]
    if not ids:
        return []
    options = data.get("options") or {}
    with tempfile.TemporaryDirectory(prefix="atlas-verify-") as folder:
        again = Path(folder) / "again.jsonl"
        export_jsonl(
            str(again),
            db_url,
            config=config,
            session_ids=ids,
            include_all_review_statuses=True,
            events_in_metadata=bool(options.get("events_in_metadata")),
            trajectory_event_limit=options.get("trajectory_event_limit"),
        )
        by_id = {
            int(orjson.loads(line)["session_id"]): record_hash(line)
            for line in (_lines(again) if again.exists() else [])
        }
    problems = []
    missing = [sid for sid in ids if sid not in by_id]
    if missing:
        problems.append(
            f"the database no longer holds {len(missing):,} of the sessions (first: {missing[0]})."
        )
    changed = [
        sid for sid, digest in items if int(sid) in by_id and by_id[int(sid)].hex() != digest
    ]
    if changed:
        problems.append(
            f"the database would now write {len(changed):,} record(s) differently (first: "
            f"session {changed[0]})."
        )
    return problems


# What the database check passes on from a derived export's filters: how sessions were loaded.
_LOADING = ("include_trajectory_events", "include_learning_data", "trajectory_event_limit")


def _derived_against_database(
    data: dict[str, Any], items: list[list[Any]], db_url: Any, config: Any
) -> list[str]:
    """Make the groups, pairs or rows again from the manifest's source sessions, and compare."""
    from trainers import exports

    source = IdRanges(data.get("source_sessions") or [])
    ids = [i for first, last in source.to_json() for i in range(first, last + 1)]
    if not ids:
        return []
    exporters: dict[str, Callable[..., Any]] = {
        "parquet": exports.export_parquet,
        "grpo": exports.export_grpo,
        "dpo": exports.export_dpo,
    }
    export = exporters[data["format"]]
    loading = {k: v for k, v in (data.get("filters") or {}).items() if k in _LOADING}
    with tempfile.TemporaryDirectory(prefix="atlas-verify-") as folder:
        again = Path(folder) / ("again.parquet" if data["format"] == "parquet" else "again.jsonl")
        summary = export(
            str(again),
            db_url,
            config=config,
            session_ids=ids,
            include_all_review_statuses=True,
            manifest=False,
            **(data.get("options") or {}),
            **loading,
        )
        found = (
            _file_records(again, {"format": data["format"], "records": {"key": "position"}})
            if again.exists()
            else ManifestRecords(key="position")
        )
    problems = []
    if summary.sessions != len(ids):
        problems.append(
            f"the database no longer holds {len(ids) - summary.sessions:,} of the "
            f"{len(ids):,} sessions the records were made from."
        )
    expected = [digest for _, digest in items]
    now = [h.hex() for h in found.hashes]
    if now != expected:
        first = next(
            (i for i, (a, b) in enumerate(zip(expected, now, strict=False)) if a != b),
            min(len(expected), len(now)),
        )
        problems.append(
            f"the database would now make {len(now):,} record(s) where the file has "
            f"{len(expected):,}, differing from record {first + 1} on."
            if len(now) != len(expected)
            else f"the database would now write record {first + 1} (of {len(now):,}) differently."
        )
    return problems
