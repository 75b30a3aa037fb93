"""``python -m bench``: build a synthetic data set and measure every case against COPY.

    python -m bench --sessions 2000                 # embedded database
    python -m bench --sessions 10000 --database-url postgresql://postgres@127.0.0.1/postgres

The data set lives in its own database (``atlas_bench_<N>``) on the chosen
server and is reused by later runs with the same size and seed; ``--rebuild``
makes it anew. Each case runs ``--repeat`` times in a fresh Python process;
the best time counts, and peak memory is that process's maximum RSS.
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
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from bench.cases import CASES, Dataset, Measurement

GENERATOR_VERSION = 1


def _database_url(server_url: str, name: str) -> str:
    if "://" not in server_url:
        return psycopg.conninfo.make_conninfo(server_url, dbname=name)
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _server_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    from atlas.storage import ensure_embedded

    return _database_url(ensure_embedded(), "postgres")


def build_dataset(
    server_url: str, sessions: int, seed: int, rebuild: bool, console: Console
) -> Dataset:
    """Create (or reuse) the benchmark database with ``sessions`` synthetic sessions."""
    from atlas.storage.migrate import apply_migrations
    from atlas.storage.synthetic import seed_sessions

    name = f"atlas_bench_{sessions}_s{seed}_v{GENERATOR_VERSION}"
    url = _database_url(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and rebuild:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url, autocommit=True) as conn:
        has_table = conn.execute("SELECT to_regclass('sessions') IS NOT NULL").fetchone()[0]  # type: ignore[index]
        count = conn.execute("SELECT count(*) FROM sessions").fetchone()[0] if has_table else 0  # type: ignore[index]
        if count != sessions:
            apply_migrations(conn)
            conn.execute(
                "TRUNCATE sessions, plans, step_results, step_attempts, guidance_notes, "
                "trajectory_events RESTART IDENTITY"
            )
            report = seed_sessions(conn, sessions, seed=seed)
            console.print(
                f"built {name}: {report.sessions:,} sessions, {report.steps:,} steps, "
                f"{report.events:,} events in {report.seconds:.1f} s "
                f"({report.sessions / report.seconds:,.0f} sessions/s, "
                f"{report.bytes_written / report.seconds / 1e6:,.1f} MB/s written)"
            )
        else:
            console.print(f"reusing {name} ({sessions:,} sessions)")
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    return Dataset(url, sessions, int(size))


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
    m: Measurement = CASES[spec["case"]].run(dataset)
    peak_mb = _peak_rss_mb()
    print(json.dumps({"seconds": m.seconds, "sessions": m.sessions, "bytes": m.bytes_out,
                      "peak_mb": peak_mb}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=2000, help="data set size (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", help="server to use (default: the embedded one)")
    parser.add_argument("--repeat", type=int, default=3, help="passes per case (default 3)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data set")
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
    dataset = build_dataset(
        _server_url(args.database_url), args.sessions, args.seed, args.rebuild, console
    )
    wanted = [c for c in CASES if not args.case or any(w in c for w in args.case)]
    names = list(dict.fromkeys(n for c in wanted for n in (CASES[c].reference, c)))
    if any(name.startswith("trainers:") for name in names):
        dataset = with_export(dataset, console)
    results = {}
    for name in names:
        runs = [_run_case_in_subprocess(name, dataset) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        best["median_seconds"] = statistics.median(r["seconds"] for r in runs)
        best["peak_mb"] = max(r["peak_mb"] for r in runs)
        results[name] = best
    for name, r in results.items():
        # Throughput ratio: 1.0 = as fast as PostgreSQL's own COPY; 0.5 = half as fast.
        ref = results[CASES[name].reference]
        r["reference"] = CASES[name].reference
        # Sessions per second against the reference's, so cases of different
        # sizes compare fairly (equal to the time ratio when sizes match).
        mine = r["sessions"] / r["seconds"] if r["seconds"] else float("inf")
        r["ratio"] = mine / (ref["sessions"] / ref["seconds"])
    if args.json:
        print(json.dumps({"sessions": args.sessions, "database_bytes": dataset.bytes_on_disk,
                          "results": results}, indent=2))  # fmt: skip
        return
    table = Table(
        "case", "best s", "median s", "sessions/s", "MB/s", "ratio to its reference",
        "peak RSS MB",
        title=f"{args.sessions:,} sessions, database {dataset.bytes_on_disk / 1e6:,.0f} MB",
    )  # fmt: skip
    for name, r in results.items():
        table.add_row(
            name, f"{r['seconds']:.3f}", f"{r['median_seconds']:.3f}",
            f"{r['sessions'] / r['seconds']:,.0f}",
            f"{r['bytes'] / r['seconds'] / 1e6:,.1f}" if r["bytes"] else "-",
            f"{r['ratio']:.2f}", f"{r['peak_mb']:,.0f}",
        )  # fmt: skip
    Console(width=max(Console().width, 120)).print(table)
    console.print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
