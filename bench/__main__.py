"""``python -m bench``: build synthetic data sets and measure every case against COPY.

    python -m bench --sessions 2000                 # embedded database
    python -m bench --sessions 10000 --database-url postgresql://postgres@127.0.0.1/postgres

Two layouts are measured in the same run (``--layout`` picks one):

* ``arc-atlas``: sessions as arc-atlas writes them, in ``atlas_bench_<N>_...``;
* ``atlas-sdk``: the same specification written in atlas-sdk 0.1.16's exact
  shape into its own tables (``..._sdk<V>_raw``, never touched again), copied
  to ``..._sdk<V>`` and upgraded there with ``arc-atlas db upgrade`` on every
  run, as a migrating user would; the upgrade is timed too.

Data sets are reused by later runs with the same size and seed; ``--rebuild``
makes them anew. Each case runs ``--repeat`` times in a fresh Python process,
alternating layouts; the best time counts, and peak memory is that process's
maximum RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from bench.cases import (
    CASES,
    LAYOUTS,
    REFERENCE,
    UPGRADE,
    Dataset,
    Measurement,
    create_database,
    database_url,
    drop_database,
    upgrade,
)

GENERATOR_VERSION = 1
SDK_GENERATOR_VERSION = 1  # bump when atlas/storage/synthetic_sdk.py changes its rows


def _server_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    from atlas.storage import ensure_embedded

    return database_url(ensure_embedded(), "postgres")


def _seed_if_needed(
    server_url: str,
    name: str,
    sessions: int,
    seed: int,
    rebuild: bool,
    shape: str,
    console: Console,
) -> str:
    """Make database ``name`` hold ``sessions`` synthetic sessions of ``shape``; return its URL."""
    from atlas.storage.migrate import apply_migrations
    from atlas.storage.synthetic import seed_sessions
    from atlas.storage.synthetic_sdk import create_atlas_sdk_schema

    url = database_url(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and rebuild:
            drop_database(admin, name)
            exists = None
        if not exists:
            create_database(admin, name)
    with psycopg.connect(url, autocommit=True) as conn:
        has_table = conn.execute("SELECT to_regclass('sessions') IS NOT NULL").fetchone()[0]  # type: ignore[index]
        count = conn.execute("SELECT count(*) FROM sessions").fetchone()[0] if has_table else 0  # type: ignore[index]
        if count == sessions:
            console.print(f"reusing {name} ({sessions:,} sessions)")
            if shape != "atlas-sdk":
                apply_migrations(conn)  # a data set built by an older arc-atlas: bring it up
            return url
        if shape == "atlas-sdk":
            create_atlas_sdk_schema(conn)  # atlas-sdk's own tables: no migrations, no triggers
        else:
            apply_migrations(conn)
        conn.execute(
            "TRUNCATE sessions, plans, step_results, step_attempts, guidance_notes, "
            "trajectory_events RESTART IDENTITY"
        )
        report = seed_sessions(conn, sessions, seed=seed, shape=shape)
        console.print(
            f"built {name}: {report.sessions:,} sessions, {report.steps:,} steps, "
            f"{report.events:,} events in {report.seconds:.1f} s "
            f"({report.sessions / report.seconds:,.0f} sessions/s, "
            f"{report.bytes_written / report.seconds / 1e6:,.1f} MB/s written)"
        )
    return url


def _vacuumed(url: str, sessions: int) -> Dataset:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    return Dataset(url, sessions, int(size))


def build_dataset(
    server_url: str, sessions: int, seed: int, rebuild: bool, console: Console
) -> Dataset:
    """Create (or reuse) the own-layout benchmark database with ``sessions`` sessions."""
    name = f"atlas_bench_{sessions}_s{seed}_v{GENERATOR_VERSION}"
    url = _seed_if_needed(server_url, name, sessions, seed, rebuild, "arc-atlas", console)
    return _vacuumed(url, sessions)


def build_sdk_dataset(
    server_url: str, sessions: int, seed: int, rebuild: bool, console: Console
) -> tuple[Dataset, dict[str, float]]:
    """Copy the atlas-sdk-written database and upgrade the copy; return it and the upgrade's timing.

    The pristine ``..._raw`` database is what atlas-sdk left behind; it is
    never upgraded, so every run measures the whole upgrade with the
    migrations of the checkout at hand.
    """
    name = f"atlas_bench_{sessions}_s{seed}_sdk{SDK_GENERATOR_VERSION}"
    raw_url = _seed_if_needed(
        server_url, name + "_raw", sessions, seed, rebuild, "atlas-sdk", console
    )
    with psycopg.connect(raw_url, autocommit=True) as conn:
        raw_size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    with psycopg.connect(server_url, autocommit=True) as admin:
        drop_database(admin, name)
        create_database(admin, name, template=name + "_raw")
    url = database_url(server_url, name)
    console.print(f"upgrading {name} (a copy of {name}_raw) with arc-atlas db upgrade ...")
    timing = _run_case_in_subprocess(UPGRADE, Dataset(url, sessions, int(raw_size)))
    return _vacuumed(url, sessions), timing


def with_export(dataset: Dataset, console: Console) -> Dataset:
    """Export the whole data set once, for the cases that read a JSONL file."""
    import tempfile

    from atlas.training_data.export import export_jsonl

    path = os.path.join(tempfile.gettempdir(), f"atlas-bench-{dataset.sessions}.jsonl")
    summary = export_jsonl(path, dataset.url, include_all_review_statuses=True)
    console.print(f"exported {summary.sessions:,} sessions to {path} for the file cases")
    return replace(dataset, jsonl=path)


def _run_case_in_subprocess(case: str, dataset: Dataset) -> dict[str, float]:
    payload = json.dumps({"case": case, "url": dataset.url, "sessions": dataset.sessions,
                          "bytes": dataset.bytes_on_disk, "jsonl": dataset.jsonl})  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--one", payload], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"case {case!r} failed:\n{out.stderr}")
    if out.stderr.strip():
        print(out.stderr.strip(), file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _peak_rss_mb() -> float:
    """This process's peak resident memory.

    ru_maxrss is not used: Linux carries it across exec, so a child started
    by a large parent would report the parent's size. VmHWM belongs to the
    current process image only.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_one(payload: str) -> None:
    spec = json.loads(payload)
    dataset = Dataset(spec["url"], spec["sessions"], spec["bytes"], spec["jsonl"])
    run = upgrade if spec["case"] == UPGRADE else CASES[spec["case"]].run
    m: Measurement = run(dataset)
    peak_mb = _peak_rss_mb()
    out: dict[str, Any] = {
        "seconds": m.seconds,
        "sessions": m.sessions,
        "bytes": m.bytes_out,
        "peak_mb": peak_mb,
    }
    if m.detail is not None:
        out["detail"] = m.detail
    print(json.dumps(out))


def _measure(
    names: list[str], datasets: dict[str, Dataset], repeat: int
) -> dict[str, dict[str, dict[str, Any]]]:
    """Best of ``repeat`` per case and layout; passes alternate layouts to share the noise."""
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    for name in names:
        for _ in range(repeat):
            for layout, dataset in datasets.items():
                if layout in CASES[name].layouts:
                    runs.setdefault((layout, name), []).append(
                        _run_case_in_subprocess(name, dataset)
                    )
    results: dict[str, dict[str, dict[str, Any]]] = {layout: {} for layout in datasets}
    for (layout, name), passes in runs.items():
        best: dict[str, Any] = dict(min(passes, key=lambda r: r["seconds"]))
        best["median_seconds"] = statistics.median(r["seconds"] for r in passes)
        best["peak_mb"] = max(r["peak_mb"] for r in passes)
        results[layout][name] = best
    for layout_results in results.values():
        for name, r in layout_results.items():
            _add_ratio(r, layout_results[CASES[name].reference], CASES[name].reference)
    return results


def _add_ratio(result: dict[str, Any], reference: dict[str, Any], reference_name: str) -> None:
    # Throughput ratio: 1.0 = as fast as PostgreSQL's own COPY; 0.5 = half as fast.
    # Sessions per second against the reference's, so cases of different
    # sizes compare fairly (equal to the time ratio when sizes match).
    result["reference"] = reference_name
    mine = result["sessions"] / result["seconds"] if result["seconds"] else float("inf")
    result["ratio"] = mine / (reference["sessions"] / reference["seconds"])


def _print_table(
    sessions: int,
    datasets: dict[str, Dataset],
    results: dict[str, dict[str, dict[str, Any]]],
) -> None:
    sizes = ", ".join(f"{layout} {d.bytes_on_disk / 1e6:,.0f} MB" for layout, d in datasets.items())
    table = Table(
        "layout", "case", "best s", "median s", "sessions/s", "MB/s", "ratio to its reference",
        "peak RSS MB", title=f"{sessions:,} sessions; databases: {sizes}",
    )  # fmt: skip
    for layout, layout_results in results.items():
        for name, r in layout_results.items():
            table.add_row(
                layout, name, f"{r['seconds']:.3f}", f"{r['median_seconds']:.3f}",
                f"{r['sessions'] / r['seconds']:,.0f}",
                f"{r['bytes'] / r['seconds'] / 1e6:,.1f}" if r["bytes"] else "-",
                f"{r['ratio']:.2f}", f"{r['peak_mb']:,.0f}",
            )  # fmt: skip
        table.add_section()
    Console(width=max(Console().width, 140)).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=2000, help="data set size (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", help="server to use (default: the embedded one)")
    parser.add_argument("--repeat", type=int, default=3, help="passes per case (default 3)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data sets")
    parser.add_argument(
        "--layout",
        choices=(*LAYOUTS, "both"),
        default="both",
        help="data layout(s) to measure: arc-atlas's own, atlas-sdk's (upgraded), or both",
    )
    parser.add_argument(
        "--case", action="append", help="run only cases whose name contains this (and references)"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _run_one(args.one)
        return
    console = Console(stderr=True)
    started = time.perf_counter()
    server = _server_url(args.database_url)
    layouts = LAYOUTS if args.layout == "both" else (args.layout,)
    datasets: dict[str, Dataset] = {}
    upgrade_timing: dict[str, Any] | None = None
    if "arc-atlas" in layouts:
        datasets["arc-atlas"] = build_dataset(
            server, args.sessions, args.seed, args.rebuild, console
        )
    if "atlas-sdk" in layouts:
        datasets["atlas-sdk"], upgrade_timing = build_sdk_dataset(
            server, args.sessions, args.seed, args.rebuild, console
        )
    wanted = [c for c in CASES if not args.case or any(w in c for w in args.case)]
    # A case, its reference and the reference's own (the redact case's is the export case).
    names = list(dict.fromkeys(
        n for c in wanted for n in (CASES[CASES[c].reference].reference, CASES[c].reference, c)
    ))  # fmt: skip
    if "arc-atlas" in datasets and any(name.startswith("trainers:") for name in names):
        datasets["arc-atlas"] = with_export(datasets["arc-atlas"], console)
    results = _measure(names, datasets, args.repeat)
    if upgrade_timing is not None:
        sdk = results["atlas-sdk"]
        upgrade_timing |= {"median_seconds": upgrade_timing["seconds"]}
        if REFERENCE in sdk:
            _add_ratio(upgrade_timing, sdk[REFERENCE], REFERENCE)
        else:
            upgrade_timing["ratio"] = float("nan")
        sdk[UPGRADE] = upgrade_timing
    if args.json:
        print(json.dumps({"sessions": args.sessions, "layouts": {
            layout: {"database_bytes": datasets[layout].bytes_on_disk, "results": results[layout]}
            for layout in datasets}}, indent=2))  # fmt: skip
        return
    _print_table(args.sessions, datasets, results)
    if any("detail" in r for layout in results.values() for r in layout.values()):
        from bench.ui import print_detail

        print_detail(results, args.sessions)
    console.print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
