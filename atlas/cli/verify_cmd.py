"""``arc-atlas verify MANIFEST``: does a training file still match the manifest its export wrote?"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from atlas.cli.export_cmd import reader_config
from atlas.training_data import verify_manifest

__all__ = ["register"]

EXIT_DIFFERS = 1


def _verify(args: argparse.Namespace) -> int:
    check_database = getattr(args, "database_url", None) is not None or (
        getattr(args, "config", None) is not None
    )
    result = verify_manifest(
        args.manifest,
        db_url=args.database_url if check_database else None,
        config=reader_config(args.config) if check_database else None,
    )
    if result.ok:
        where = " and the database still writes the same records" if check_database else ""
        print(f"OK: {args.manifest}: the file matches its {result.records:,} records{where}.")
        return 0
    for problem in result.problems:
        print(f"Differs: {problem}", file=sys.stderr)
    return EXIT_DIFFERS


def register(
    commands: Any, add_connection_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the ``verify`` command."""
    parser = commands.add_parser(
        "verify",
        help="check an export against its manifest (and, with a database, that it still "
        "writes the same records)",
        description="Check that an export (JSONL, Parquet, GRPO or DPO) matches the "
        "OUTPUT.manifest.json its export wrote: the file's sha256 and every record's hash. With "
        "--database-url or --config, also export the manifest's sessions again and compare "
        "each record. Exit code 0 when "
        "everything matches, 1 when something differs.",
    )
    add_connection_options(parser)
    parser.add_argument("manifest", metavar="MANIFEST", help="the OUTPUT.manifest.json file")
    parser.set_defaults(handler=_verify)
