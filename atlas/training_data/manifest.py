"""Export manifests: what produced a training file, and proof that it is still that file.

``arc-atlas export`` writes ``<output>.manifest.json`` beside every JSONL file
(``--no-manifest`` turns it off). It records the arc-atlas and schema
versions, the filters and the resolved review gate, the snapshot the export
read in (its time and, for an incremental export, the watermark range), the
counts of sessions, steps and events, the sha256 of the file, a sha256 per
record with their Merkle root, and the redaction report.

:func:`verify_manifest` (``arc-atlas verify MANIFEST``) checks a file against
its manifest and names the first record that differs; given a database, it
also checks that the database would still write the same records.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from atlas.errors import ConfigError
from atlas.training_data.output import open_decompressed, place_file, stage_file

__all__ = [
    "MANIFEST_SUFFIX",
    "MANIFEST_VERSION",
    "ManifestRecords",
    "VerifyResult",
    "manifest_path",
    "merkle_root",
    "record_hash",
    "verify_manifest",
    "write_manifest",
]

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"


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


@dataclass
class ManifestRecords:
    """The records of an export in file order: session ids and line hashes."""

    session_ids: list[int] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)

    def add(self, session_id: int, line: bytes) -> None:
        self.session_ids.append(session_id)
        self.hashes.append(record_hash(line))


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
            "count": len(records.session_ids),
            "merkle_root": merkle_root(records.hashes),
            "hash": "sha256 of 0x00 + the line, newline included; root: sha256(0x01 + left + "
            "right) per pair, an odd last node carried up",
            "items": [
                [sid, h.hex()] for sid, h in zip(records.session_ids, records.hashes, strict=True)
            ],
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
        data["records"]["items"]
        data["output"]["file"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{target} is not a readable export manifest ({exc}).") from None
    return data


def _lines(path: Path) -> Iterable[bytes]:
    with open_decompressed(path) as handle:
        yield from handle


def _compare(expected: list[list[Any]], found: list[tuple[int, bytes]], where: str) -> list[str]:
    problems = []
    if len(found) != len(expected):
        problems.append(
            f"{where} holds {len(found):,} records; the manifest lists {len(expected):,}."
        )
    for index, ((sid, digest), (got_sid, got)) in enumerate(zip(expected, found, strict=False)):
        if int(sid) != got_sid or digest != got.hex():
            problems.append(
                f"record {index + 1} (session {sid}) differs in {where}"
                + (f": found session {got_sid} there." if int(sid) != got_sid else ".")
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
    found = [(int(orjson.loads(line)["session_id"]), record_hash(line)) for line in _lines(output)]
    if merkle_root([h for _, h in found]) != data["records"]["merkle_root"]:
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
    from atlas.training_data.export import export_jsonl

    if data.get("redaction") is not None:
        return [
            "This export was redacted: the database holds the values before redaction, so it "
            "cannot be compared record by record."
        ]
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
