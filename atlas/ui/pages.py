"""The pages of ``arc-atlas ui``: sessions, one session, the review queue, insights, export.

Every read and write goes through the public library API (``atlas.training_data``)
on the app's pool: the list is :func:`~atlas.training_data.browse_sessions`,
a session :func:`~atlas.training_data.get_session_by_id`, a review
:func:`~atlas.training_data.review_sessions` (which records the reviewer in
the review history, as the CLI does), the insights
:func:`~atlas.training_data.session_insights` and a download
:func:`~atlas.training_data.export_jsonl`. There is no SQL here and no second
review gate. Every state change is a POST checked by
:func:`~atlas.ui.security.csrf_form`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from atlas.config import REVIEW_STATUSES
from atlas.errors import InvalidFilter, SelectionChanged
from atlas.storage import Database
from atlas.training_data import (
    PageCursor,
    browse_sessions,
    count_training_sessions,
    export_jsonl,
    get_session_by_id,
    review_sessions,
    session_insights,
)
from atlas.ui import charts
from atlas.ui.params import UIFilter
from atlas.ui.security import csrf_form
from atlas.ui.session_view import session_context
from atlas.ui.templating import render, reviewer_name

__all__ = ["PAGE_SIZE", "routes"]

PAGE_SIZE = 50
# Where the review queue starts: before the oldest possible session.
_QUEUE_START = PageCursor("-infinity", 0)
# What a finished review says, by code (never text from the URL).
_DONE = {"approved": "approved", "quarantined": "quarantined", "pending": "set back to pending"}


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _cursor(request: Request, name: str) -> PageCursor | None:
    text = request.query_params.get(name)
    return PageCursor.decode(text, name) if text else None


def _notice(request: Request) -> str | None:
    """The one-line result of the last change, rebuilt from codes in the URL."""
    done, count = request.query_params.get("done"), request.query_params.get("n", "")
    if done not in _DONE or not count.isdigit():
        return None
    n = int(count)
    return f"{n} session{'s' if n != 1 else ''} {_DONE[done]}."


def _local(url: str | None, fallback: str = "/") -> str:
    """``url`` when it is a path on this app, else ``fallback`` (no open redirects)."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return fallback


def _with_notice(url: str, status: str, count: int) -> str:
    base, _, fragment = url.partition("#")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}done={status}&n={count}" + (f"#{fragment}" if fragment else "")


def _new_status(form: FormData) -> str:
    status = str(form.get("status", ""))
    if status not in REVIEW_STATUSES:
        raise InvalidFilter(
            f"status must be one of {', '.join(REVIEW_STATUSES)}.", parameter="status"
        )
    return status


def _note(form: FormData) -> str | None:
    note = str(form.get("note", "")).strip()
    if "\x00" in note:
        raise InvalidFilter("The note contains a NUL character.", parameter="note")
    return note or None


# --- the session list -----------------------------------------------------------------------


def sessions_page(request: Request) -> Response:
    """Newest sessions first, 50 a page, filtered by the URL; select and review them."""
    try:
        flt = UIFilter.parse(request.query_params)
    except InvalidFilter as exc:
        context = {"flt": UIFilter(), "error": str(exc), "page": None, "raw": request.query_params}
        return render(request, "sessions.html", context, status_code=400)
    with _db(request).connection() as conn:
        page = browse_sessions(
            conn,
            filters=flt.filters,
            review_statuses=flt.review_statuses,
            before=_cursor(request, "older"),
            after=_cursor(request, "newer"),
            limit=PAGE_SIZE,
            with_total=True,
        )
    context = {
        "flt": flt,
        "page": page,
        "error": None,
        "raw": request.query_params,
        "notice": _notice(request),
        "statuses": REVIEW_STATUSES,
        "bulk_possible": _pending_possible(flt),
    }
    return render(request, "sessions.html", context)


async def review_selected(request: Request) -> Response:
    """Approve, quarantine or reset the sessions ticked on the list, with a note."""
    form = await csrf_form(request)
    status, note = _new_status(form), _note(form)
    ids = [_id(v) for v in form.getlist("session_id")]
    back = _local(str(form.get("return_to", "")))
    if not ids:
        raise InvalidFilter("Tick at least one session to review.", parameter="session_id")
    reviewer = reviewer_name(request)

    def change() -> int:
        with _db(request).connection() as conn:
            return review_sessions(
                conn, status, session_ids=ids, note=note, reviewer=reviewer
            ).changed

    changed = await run_in_threadpool(change)
    return RedirectResponse(_with_notice(back, status, changed), status_code=303)


def _id(text: Any) -> int:
    try:
        return int(str(text))
    except ValueError:
        raise InvalidFilter(
            f"{str(text)[:40]!r} is not a session id.", parameter="session_id"
        ) from None


# --- bulk review by filter ------------------------------------------------------------------


def _pending_possible(flt: UIFilter) -> bool:
    """Whether pending sessions can match the filter at all (a bulk review changes only those)."""
    return flt.review_statuses is None or "pending" in flt.review_statuses


def _bulk_count(db: Database, flt: UIFilter) -> int:
    if not _pending_possible(flt):
        return 0
    arguments = flt.training_filters(review_gate=False)
    arguments.pop("include_all_review_statuses", None)
    arguments["review_status_filters"] = ["pending"]
    return count_training_sessions(db, **arguments)


def bulk_preview(request: Request) -> Response:
    """How many pending sessions a bulk review would change, and a form to confirm it."""
    flt = UIFilter.parse(request.query_params)
    status = request.query_params.get("to", "approved")
    if status not in ("approved", "quarantined"):
        raise InvalidFilter("to must be approved or quarantined.", parameter="to")
    return _bulk_page(request, flt, status, None)


def _bulk_page(request: Request, flt: UIFilter, status: str, problem: str | None) -> Response:
    db = _db(request)
    count = _bulk_count(db, flt)
    with db.connection() as conn:
        sample = browse_sessions(conn, filters=flt.filters, review_statuses="pending", limit=10)
    context = {"flt": flt, "to": status, "count": count, "sample": sample, "problem": problem}
    return render(request, "bulk.html", context, status_code=409 if problem else 200)


async def bulk_review(request: Request) -> Response:
    """Change every pending session matching the filter, if the count is still the one shown."""
    form = await csrf_form(request)
    flt = UIFilter.parse(request.query_params)
    status, note = _new_status(form), _note(form)
    expected = _id(form.get("expected", ""))
    reviewer = reviewer_name(request)
    filters, possible = flt.filters, _pending_possible(flt)

    def change() -> int:
        if not possible:
            return 0
        with _db(request).connection() as conn:
            return review_sessions(
                conn,
                status,
                filters=filters,
                from_statuses="pending",
                note=note,
                reviewer=reviewer,
                expected=expected,
            ).changed

    try:
        changed = await run_in_threadpool(change)
    except SelectionChanged as exc:
        return await run_in_threadpool(_bulk_page, request, flt, status, str(exc))
    return RedirectResponse(_with_notice("/" + flt.query(), status, changed), status_code=303)


# --- one session ----------------------------------------------------------------------------


def session_page(request: Request) -> Response:
    """Everything stored about one session, with review buttons and a JSONL download."""
    session_id = _path_id(request)
    trace = get_session_by_id(_db(request), session_id)
    context = {**session_context(trace), "notice": _notice(request)}
    return render(request, "session.html", context)


def _path_id(request: Request) -> int:
    value = request.path_params["session_id"]
    if not 1 <= value <= 2**31 - 1:
        raise InvalidFilter(f"{value} is not a session id.", parameter="session_id")
    return int(value)


async def review_one(request: Request) -> Response:
    """Approve, quarantine or reset one session, with a note."""
    session_id = _path_id(request)
    form = await csrf_form(request)
    status, note = _new_status(form), _note(form)
    reviewer = reviewer_name(request)

    def change() -> int:
        with _db(request).connection() as conn:
            result = review_sessions(
                conn, status, session_ids=[session_id], note=note, reviewer=reviewer
            )
        if result.missing:
            get_session_by_id(_db(request), session_id)  # raises SessionNotFound: a 404
        return result.changed

    changed = await run_in_threadpool(change)
    back = _with_notice(f"/sessions/{session_id}", status, changed) + "#review"
    return RedirectResponse(back, status_code=303)


# --- the review queue -----------------------------------------------------------------------


def queue_page(request: Request) -> Response:
    """The oldest pending session after the queue's position, shown in full."""
    flt = UIFilter.parse(request.query_params)
    position = _cursor(request, "after") or _QUEUE_START
    with _db(request).connection() as conn:
        page = browse_sessions(
            conn, filters=flt.filters, review_statuses="pending", after=position, limit=1
        )
    total = _bulk_count(_db(request), flt)
    context: dict[str, Any] = {
        "flt": flt,
        "total": total,
        "notice": _notice(request),
        "restarted": position != _QUEUE_START,
        "current": None,
    }
    if page.rows:
        row = page.rows[0]
        trace = get_session_by_id(_db(request), row.session_id)
        context.update(session_context(trace))
        context["current"] = row
        context["skip_url"] = "/queue" + flt.query(after=row.cursor.encode())
    return render(request, "queue.html", context)


async def queue_decide(request: Request) -> Response:
    """Record the reviewer's decision on the queue's session, then show the next one."""
    form = await csrf_form(request)
    flt = UIFilter.parse(request.query_params)
    status, note = _new_status(form), _note(form)
    session_id = _id(form.get("session_id", ""))
    position = PageCursor.decode(str(form.get("position", "")), "position")
    reviewer = reviewer_name(request)

    def change() -> int:
        with _db(request).connection() as conn:
            return review_sessions(
                conn, status, session_ids=[session_id], note=note, reviewer=reviewer
            ).changed

    changed = await run_in_threadpool(change)
    following = "/queue" + flt.query(after=position.encode())
    return RedirectResponse(_with_notice(following, status, changed), status_code=303)


# --- insights -------------------------------------------------------------------------------


def insights_page(request: Request) -> Response:
    """Reward distributions, reward over time, statuses, the queue and the learning keys."""
    flt = UIFilter.parse(request.query_params)
    with _db(request).connection() as conn:
        found = session_insights(conn, filters=flt.filters, review_statuses=flt.review_statuses)
    histograms = [
        (key, charts.histogram(counts, found.bins, f"Reward distribution of {key or 'no key'}"))
        for key, counts in sorted(found.histograms.items(), key=lambda kv: -sum(kv[1]))
    ]
    context = {
        "flt": flt,
        "found": found,
        "histograms": histograms,
        "timeline": charts.reward_timeline(found.over_time, "Mean reward over time"),
        "status_chart": charts.bars(found.status_counts, "Sessions by runtime status"),
        "review_chart": charts.bars(found.review_counts, "Sessions by review status"),
    }
    return render(request, "insights.html", context)


# --- export ---------------------------------------------------------------------------------


def export_page(request: Request) -> Response:
    """The export command for the current filter, its count, and a download."""
    flt = UIFilter.parse(request.query_params)
    count = count_training_sessions(_db(request), **flt.training_filters(review_gate=True))
    context = {
        "flt": flt,
        "count": count,
        "command": flt.export_command(),
        "gated": flt.review_statuses is None,
    }
    return render(request, "export.html", context)


def _download(db: Database, name: str, arguments: dict[str, Any]) -> Response:
    """Run the exporter into a temporary folder and stream the file; the folder goes after."""
    folder = Path(tempfile.mkdtemp(prefix="atlas-ui-export-"))
    cleanup: Callable[[], None] = lambda: shutil.rmtree(folder, ignore_errors=True)  # noqa: E731
    try:
        target = folder / name
        summary = export_jsonl(str(target), db, **arguments)
        if summary.sessions == 0:
            raise InvalidFilter("No sessions matched: nothing to download.", parameter=None)
    except BaseException:
        cleanup()
        raise
    return FileResponse(
        target,
        media_type="application/gzip" if name.endswith(".gz") else "application/x-ndjson",
        filename=name,
        background=BackgroundTask(cleanup),
    )


def export_download(request: Request) -> Response:
    """The current filter as ``sessions.jsonl.gz``, written by the exporter (review-gated)."""
    flt = UIFilter.parse(request.query_params)
    return _download(_db(request), "sessions.jsonl.gz", flt.training_filters(review_gate=True))


def session_download(request: Request) -> Response:
    """One session as JSONL, whatever its review status (it is named by id)."""
    session_id = _path_id(request)
    arguments = {"session_ids": [session_id], "include_all_review_statuses": True}
    try:
        return _download(_db(request), f"session-{session_id}.jsonl", arguments)
    except InvalidFilter:
        get_session_by_id(_db(request), session_id)  # a 404 when it does not exist
        raise


routes: list[BaseRoute] = [
    Route("/", sessions_page, name="sessions"),
    Route("/review", review_selected, methods=["POST"], name="review_selected"),
    Route("/review/bulk", bulk_preview, name="bulk_preview"),
    Route("/review/bulk", bulk_review, methods=["POST"], name="bulk_review"),
    Route("/sessions/{session_id:int}", session_page, name="session"),
    Route("/sessions/{session_id:int}.jsonl", session_download, name="session_download"),
    Route("/sessions/{session_id:int}/review", review_one, methods=["POST"], name="review_one"),
    Route("/queue", queue_page, name="queue"),
    Route("/queue", queue_decide, methods=["POST"], name="queue_decide"),
    Route("/insights", insights_page, name="insights"),
    Route("/export", export_page, name="export"),
    Route("/export/sessions.jsonl.gz", export_download, name="export_download"),
]
