"""The ``ui`` case: the pages of ``arc-atlas ui`` timed over real HTTP on the bench data set.

Issue 11 sets three targets on 100,000 sessions, in server time: a list page
(50 rows, any filter) under 200 ms, a session with 200 events under 300 ms,
the insights page under 1 s. This case serves :func:`atlas.ui.create_app`
with a real ``uvicorn.Server`` on a free loopback port in a background thread
and requests each page with httpx, as a browser would: once to warm up, then
:data:`SAMPLES` times. Per page it reports the median and p95 of the app's
``Server-Timing: app;dur=<ms>`` and of the client's wall time, and the size
of the HTML. A page passes when its server-time p95 is under its target.

The synthetic sessions have 20–80 events, so the case makes one session with
exactly 200: a copy of an existing session (all its child rows) whose task
starts with :data:`COPY_MARK`, with that session's events repeated to 200.
It is deleted when the case ends (and any leftover at the next start).

Two same-run references put the figures in scale: ``COPY (...) TO STDOUT``
of the very rows the list's first page shows (what PostgreSQL alone needs
for that page), and the COPY of the columns the insights page aggregates, for
every session (what one full scan of ``sessions`` costs, which insights and
a task search without matches cannot avoid).
"""

from __future__ import annotations

import contextlib
import html.parser
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from psycopg import sql

from bench.cases import UI_REFERENCE, Dataset, Measurement

__all__ = [
    "COPY_MARK",
    "SAMPLES",
    "TARGETS_MS",
    "PageTiming",
    "copy_list_page",
    "print_detail",
    "run",
]

SAMPLES = 10
DEEP_PAGES = 20  # "Older" links followed before the deep page is measured
EVENTS = 200
TARGETS_MS: dict[str, float] = {"list": 200.0, "session": 300.0, "insights": 1000.0}
COPY_MARK = "[bench ui: a copy with 200 events, deleted after the run] "
# A word no synthetic task contains: the search has to read every task.
NO_MATCH = "zyzzyva"

# The rows and columns the list's first page shows (id, created, statuses,
# reward ± uncertainty, drift alert, learning key, task, step count),
# newest first, as PostgreSQL alone hands them out.
_FIRST_PAGE = (
    "SELECT s.id, s.created_at, s.status, s.review_status, s.reward_stats ->> 'score', "
    "s.reward_stats ->> 'uncertainty', s.drift_alert, s.learning_key, left(s.task, 300), "
    "(SELECT count(*) FROM step_results r WHERE r.session_id = s.id) "
    "FROM sessions s ORDER BY s.created_at DESC, s.id DESC LIMIT 50"
)

# What the insights page reads of every session, as PostgreSQL alone hands it
# out: the cost of one full scan of sessions, which insights and a task search
# without an index cannot avoid.
_SCAN_REFERENCE = "reference: COPY what insights reads of all sessions (a full scan)"
_SCAN = (
    "SELECT s.status, s.review_status, s.learning_key, s.drift_alert, "
    "s.reward_stats ->> 'score', s.created_at FROM sessions s"
)


@dataclass(frozen=True)
class PageTiming:
    """One page's figures: server and client milliseconds (median, p95) and HTML size."""

    kind: str  # "list", "session", "insights", "queue" or "reference"
    page: str
    path: str
    target_ms: float | None
    server_median_ms: float | None
    server_p95_ms: float | None
    client_median_ms: float
    client_p95_ms: float
    bytes: int

    @property
    def passed(self) -> bool | None:
        """Whether the server-time p95 is under the target; None without a target."""
        if self.target_ms is None or self.server_p95_ms is None:
            return None
        return self.server_p95_ms < self.target_ms


def _p95(values: list[float]) -> float:
    # Interpolated between the two slowest of ten samples.
    return statistics.quantiles(values, n=20, method="inclusive")[18]


# --- the server ---------------------------------------------------------------------------


@contextlib.contextmanager
def _served(database_url: str) -> Iterator[str]:
    """Serve ``arc-atlas ui`` on a free 127.0.0.1 port in a thread; yield its base URL."""
    import uvicorn

    from atlas.ui import UISettings, create_app

    app = create_app(UISettings(database_url=database_url, reviewer="bench"))
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and
    # without it a small keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            listener.close()
            raise SystemExit("arc-atlas ui did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def _server_ms(response: httpx.Response) -> float:
    header = response.headers.get("server-timing", "")
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "app":
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key == "dur":
                    return float(value)
    raise SystemExit(f"{response.request.url} has no Server-Timing app;dur header: {header!r}")


def _get(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path)
    if response.status_code != 200:
        first = response.text.strip().splitlines()[:1]
        raise SystemExit(f"GET {path} answered {response.status_code}: {first}")
    return response


def _time_page(
    client: httpx.Client, kind: str, page: str, path: str, target_ms: float | None
) -> PageTiming:
    _get(client, path)  # warm-up: plans, pool connections, template cache
    server: list[float] = []
    wall: list[float] = []
    size = 0
    for _ in range(SAMPLES):
        started = time.perf_counter()
        response = _get(client, path)
        wall.append((time.perf_counter() - started) * 1000)
        server.append(_server_ms(response))
        size = len(response.content)
    return PageTiming(
        kind, page, path, target_ms, statistics.median(server), _p95(server),
        statistics.median(wall), _p95(wall), size,
    )  # fmt: skip


class _OlderLink(html.parser.HTMLParser):
    """The ``href`` of the page's ``<a rel="next">`` (the "Older" link), entities decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and "next" in (found.get("rel") or "").split() and self.href is None:
            self.href = found.get("href")


def _older(client: httpx.Client, path: str) -> str:
    parser = _OlderLink()
    parser.feed(_get(client, path).text)
    if not parser.href:
        raise SystemExit(f'GET {path} has no Older link (<a rel="next" href=...>)')
    return parser.href


# --- the data the pages are asked about ------------------------------------------------------


@dataclass(frozen=True)
class _Probe:
    """Values picked from this data set for the filters and the 200-event session."""

    middle: str  # a created_at in the middle of the data set, ISO 8601
    learning_key: str
    rare_words: str  # matches a few tasks only
    rare_matches: int
    common_word: str


def _probe(conn: psycopg.Connection[Any]) -> _Probe:
    from atlas.storage.synthetic import LEARNING_KEYS

    row = conn.execute(
        "SELECT min(created_at) + (max(created_at) - min(created_at)) / 2 FROM sessions"
    ).fetchone()
    assert row is not None and row[0] is not None, "the data set has no sessions"
    middle = row[0].isoformat(timespec="seconds")
    # Three words in a row from real tasks, until a phrase matches few of them.
    tasks = conn.execute(
        "SELECT task FROM sessions ORDER BY id LIMIT 20 OFFSET (SELECT count(*) / 3 FROM sessions)"
    ).fetchall()
    best: tuple[int, str] | None = None
    for (task,) in tasks:
        words = task.partition(": ")[2].split()[1:-1]  # whole words only
        if len(words) < 3:
            continue
        phrase = " ".join(words[:3])
        found = conn.execute(
            "SELECT count(*) FROM sessions WHERE strpos(lower(task), lower(%s)) > 0", (phrase,)
        ).fetchone()
        matches = int(found[0]) if found else 0
        if best is None or matches < best[0]:
            best = (matches, phrase)
        if matches <= 50:
            break
    assert best is not None, "no task has three words to search for"
    return _Probe(middle, LEARNING_KEYS[1], best[1], best[0], "deploy")


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """The table's columns but its serial or identity ``id``, in table order."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s "
        "AND NOT (column_name = 'id' AND (is_identity = 'YES' OR column_default LIKE 'nextval%%')) "
        "ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def _drop_copies(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DELETE FROM sessions WHERE starts_with(task, %s)", (COPY_MARK,))


def _make_200_event_session(conn: psycopg.Connection[Any], middle: str) -> tuple[int, int, int]:
    """Copy a finished session from the middle of the data set with its events repeated to 200.

    Returns (the copy's id, the source's id, the source's event count). The
    copy keeps the source's ``created_at``, so it sits deep in the list, not
    on the first pages measured; its task starts with :data:`COPY_MARK`.
    """
    from atlas.storage.schema import SESSION_TABLES

    row = conn.execute(
        "SELECT s.id, (SELECT count(*) FROM trajectory_events e WHERE e.session_id = s.id) "
        "FROM sessions s WHERE s.created_at <= %s AND s.status = 'succeeded' "
        "AND EXISTS (SELECT 1 FROM step_results r WHERE r.session_id = s.id) "
        "AND EXISTS (SELECT 1 FROM trajectory_events e WHERE e.session_id = s.id) "
        "ORDER BY s.created_at DESC, s.id DESC LIMIT 1",
        (middle,),
    ).fetchone()
    assert row is not None, "no finished session with steps and events to copy"
    source, source_events = int(row[0]), int(row[1])
    with conn.transaction():
        cols = _columns(conn, "sessions")
        chosen = [
            sql.SQL("%s || task") if c == "task" else sql.Identifier(c) for c in cols
        ]  # fmt: skip
        inserted = conn.execute(
            sql.SQL(
                "INSERT INTO sessions ({}) SELECT {} FROM sessions WHERE id = %s RETURNING id"
            ).format(sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(chosen)),
            (COPY_MARK, source),
        ).fetchone()
        assert inserted is not None
        copy = int(inserted[0])
        for table in SESSION_TABLES[1:]:
            cols = [c for c in _columns(conn, table) if c != "session_id"]
            names = sql.SQL(", ").join(map(sql.Identifier, cols))
            if table == "trajectory_events":
                # The source's events in id order, repeated until there are 200.
                conn.execute(
                    sql.SQL(
                        "INSERT INTO trajectory_events (session_id, {names}) "
                        "SELECT %s, {names} FROM ("
                        " SELECT e.*, row_number() OVER (ORDER BY e.id) - 1 AS n,"
                        " count(*) OVER () AS total FROM trajectory_events e"
                        " WHERE e.session_id = %s) src"
                        " JOIN generate_series(0, %s - 1) AS g(i) ON src.n = g.i %% src.total "
                        "ORDER BY g.i"
                    ).format(names=names),
                    (copy, source, EVENTS),
                )
            else:
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {table} (session_id, {names}) "
                        "SELECT %s, {names} FROM {table} WHERE session_id = %s"
                    ).format(table=sql.Identifier(table), names=names),
                    (copy, source),
                )
        count = conn.execute(
            "SELECT count(*) FROM trajectory_events WHERE session_id = %s", (copy,)
        ).fetchone()
        assert count is not None and count[0] == EVENTS, f"the copy has {count} events"
    conn.execute("ANALYZE sessions, trajectory_events")
    return copy, source, source_events


# --- the references --------------------------------------------------------------------------


def _copy_ms(conn: psycopg.Connection[Any], query: str) -> tuple[float, int]:
    started = time.perf_counter()
    total = 0
    with conn.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT") as copy:
        for block in copy:
            total += len(block)
    return (time.perf_counter() - started) * 1000, total


def _reference(conn: psycopg.Connection[Any], page: str, query: str, samples: int) -> PageTiming:
    _copy_ms(conn, query)
    timed = [_copy_ms(conn, query) for _ in range(samples)]
    wall = [t for t, _ in timed]
    p95 = _p95(wall) if samples > 1 else wall[0]
    return PageTiming(
        "reference", page, "", None, None, None, statistics.median(wall), p95, timed[-1][1]
    )


def copy_list_page(dataset: Dataset) -> Measurement:
    """The reference of the ``ui`` case: COPY of the list's first page's rows, median of 10."""
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        timing = _reference(conn, UI_REFERENCE, _FIRST_PAGE, SAMPLES)
    return Measurement(timing.client_median_ms / 1000, 50, timing.bytes)


# --- the case ----------------------------------------------------------------------------------


def _list_pages(probe: _Probe) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("first page, no filter", {}),
        ("status=succeeded", {"status": "succeeded"}),
        ("review_status=pending", {"review_status": "pending"}),
        (f"learning_key={probe.learning_key}", {"learning_key": probe.learning_key}),
        ("min_reward=0.8", {"min_reward": "0.8"}),
        ("max_reward=0.3", {"max_reward": "0.3"}),
        (f"created_after={probe.middle}", {"created_after": probe.middle}),
        (f"created_before={probe.middle}", {"created_before": probe.middle}),
        (
            f"task_contains={probe.rare_words!r} ({probe.rare_matches} matches)",
            {"task_contains": probe.rare_words},
        ),
        (f"task_contains={NO_MATCH!r} (no match)", {"task_contains": NO_MATCH}),
        (
            f"all filters combined (task_contains={probe.common_word!r})",
            {
                "status": "succeeded",
                "review_status": "pending",
                "learning_key": probe.learning_key,
                "min_reward": "0.8",
                "max_reward": "0.95",
                "created_after": probe.middle,
                "task_contains": probe.common_word,
            },
        ),
    ]


def run(dataset: Dataset) -> Measurement:
    """Time every page; the Measurement is the list's first page (median server time)."""
    timings: list[PageTiming] = []
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        _drop_copies(conn)  # a run killed before its cleanup
        probe = _probe(conn)
        copy, source, source_events = _make_200_event_session(conn, probe.middle)
        try:
            timings.append(_reference(conn, UI_REFERENCE, _FIRST_PAGE, SAMPLES))
            timings.append(_reference(conn, _SCAN_REFERENCE, _SCAN, 1))
            with _served(dataset.url) as base, httpx.Client(base_url=base, timeout=120) as client:
                for page, params in _list_pages(probe):
                    path = "/?" + urlencode(params) if params else "/"
                    timings.append(_time_page(client, "list", page, path, TARGETS_MS["list"]))
                path = "/"
                for _ in range(DEEP_PAGES):
                    path = _older(client, path)
                timings.append(
                    _time_page(client, "list", f"page {DEEP_PAGES + 1} (Older x{DEEP_PAGES})",
                               path, TARGETS_MS["list"])
                )  # fmt: skip
                for page, path, target in [
                    (f"session with {EVENTS} events (a copy of {source})",
                     f"/sessions/{copy}", TARGETS_MS["session"]),
                    (f"session {source} ({source_events} events)",
                     f"/sessions/{source}", TARGETS_MS["session"]),
                ]:  # fmt: skip
                    timings.append(_time_page(client, "session", page, path, target))
                for page, params in [
                    ("no filter", {}),
                    (f"learning_key={probe.learning_key}", {"learning_key": probe.learning_key}),
                ]:
                    path = "/insights?" + urlencode(params) if params else "/insights"
                    timings.append(
                        _time_page(client, "insights", page, path, TARGETS_MS["insights"])
                    )
                timings.append(_time_page(client, "queue", "review queue", "/queue", None))
        finally:
            _drop_copies(conn)
    first = next(t for t in timings if t.kind == "list")
    assert first.server_median_ms is not None
    return Measurement(
        first.server_median_ms / 1000, 50, first.bytes, detail=[asdict(t) for t in timings]
    )


def print_detail(results: dict[str, dict[str, dict[str, Any]]], sessions: int) -> None:
    """The per-page table of every layout that ran the ``ui`` case, with PASS/FAIL."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "layout", "kind", "page", "target ms", "server median", "server p95", "client median",
        "client p95", "KB", "result",
        title=f"arc-atlas ui on {sessions:,} sessions: milliseconds, {SAMPLES} requests after "
        "one warm-up; PASS = server p95 under the target",
    )  # fmt: skip
    failed = []
    for layout, layout_results in results.items():
        for case in layout_results.values():
            for item in case.get("detail") or []:
                t = PageTiming(**item)
                verdict = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "-"}[t.passed]
                if t.passed is False:
                    failed.append(f"{layout}: {t.kind} {t.page}")
                table.add_row(
                    layout, t.kind, t.page,
                    "-" if t.target_ms is None else f"{t.target_ms:,.0f}",
                    "-" if t.server_median_ms is None else f"{t.server_median_ms:,.1f}",
                    "-" if t.server_p95_ms is None else f"{t.server_p95_ms:,.1f}",
                    f"{t.client_median_ms:,.1f}", f"{t.client_p95_ms:,.1f}",
                    f"{t.bytes / 1000:,.1f}", verdict,
                )  # fmt: skip
        table.add_section()
    console = Console(width=max(Console().width, 180))
    console.print(table)
    if failed:
        console.print("[red]targets missed:[/] " + "; ".join(failed))
