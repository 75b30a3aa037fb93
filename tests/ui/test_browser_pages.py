"""The pages of ``arc-atlas ui`` driven in a real browser (Debian's chromium, through Playwright).

Each test serves the real app with uvicorn on a fresh PostgreSQL database,
seeded with synthetic sessions, and clicks and types as a reviewer would.
What a page shows and what a click changes is compared with SQL run
directly on the database, never with the app's own reading of it.
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect
from psycopg import sql

from atlas.storage import seed_sessions
from atlas.training_data import count_training_sessions, export_jsonl, review_sessions
from atlas.ui import UISettings

REVIEWER = "Ada Reviewer"
# Newest first, as the list and the exporter order sessions.
NEWEST_FIRST = "ORDER BY created_at DESC, id DESC"


# --- fixtures: the app for each test, and a page that fails the test on a console error ----------


@pytest.fixture
def app_url(db_url: str, ui_server: Callable[[UISettings], str]) -> str:
    """The UI (conftest's ``ui_server``) on the test's database, reviewing as :data:`REVIEWER`."""
    return ui_server(UISettings(database_url=db_url, reviewer=REVIEWER))


class Console:
    """What the page reported as errors: console errors (CSP violations too) and uncaught ones."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def allow(self, pattern: str) -> None:
        """Accept console errors matching ``pattern`` (the log line of an expected 403 or 409)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def tab(browser: Browser, console: Console) -> Iterator[Page]:
    """A page in a fresh browser context (its own cookies) on conftest's shared chromium.

    Unlike conftest's ``page``, dialogs are left to the test (a bulk review is
    confirmed by accepting one; with no listener Playwright dismisses them), and
    any console error or uncaught exception the test did not expect fails it.
    """
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(10_000)
    new = context.new_page()
    new.on("console", console.on_console)
    new.on("pageerror", console.on_page_error)
    yield new
    context.close()
    assert console.unexpected() == [], "the browser console reported errors"


# --- helpers -------------------------------------------------------------------------------------


def rows(url: str, query: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
    """Run ``query`` on the database directly; all its rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def ids(url: str, query: str, params: tuple[Any, ...] | list[Any] = ()) -> list[int]:
    return [int(r[0]) for r in rows(url, query, params)]


def review_states(url: str) -> dict[int, tuple[str, str | None]]:
    """Every session's (review_status, review_notes)."""
    return {
        r[0]: (r[1], r[2])
        for r in rows(url, "SELECT id, review_status, review_notes FROM sessions")
    }


def seed(url: str, count: int, *, seed_value: int) -> None:
    """``count`` synthetic sessions, their review statuses set by id: id % 3 = 0 approved,
    1 pending, 2 quarantined (so every status is present whatever the generator chose)."""
    with psycopg.connect(url, autocommit=True) as conn:
        seed_sessions(conn, count, seed=seed_value)
        conn.execute(
            "UPDATE sessions SET review_status = (ARRAY['approved', 'pending', 'quarantined'])"
            "[id % 3 + 1], review_notes = NULL"
        )


def busiest_pending_key(url: str) -> tuple[str, int]:
    """The learning key with the most pending sessions among those that also have approved
    and quarantined ones (what a bulk review must leave alone), and its pending count."""
    found = rows(
        url,
        "SELECT metadata->>'learning_key' AS k, count(*) FILTER (WHERE review_status = 'pending') "
        "FROM sessions GROUP BY k HAVING count(DISTINCT review_status) = 3 "
        "ORDER BY 2 DESC, k LIMIT 1",
    )
    assert found, "the seed gives no learning key with sessions in every review status"
    return str(found[0][0]), int(found[0][1])


def table_ids(tab: Page) -> list[int]:
    """The session ids in the list's rows, top to bottom."""
    values = tab.locator("#sessions-table tbody tr[data-session-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.sessionId)"
    )
    return [int(v) for v in values]


def exported_ids(path: Path) -> list[int]:
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["session_id"] for line in handle if line.strip()]


# --- the main path -------------------------------------------------------------------------------


def test_filter_open_approve_and_the_exporter_includes_it(
    tab: Page, app_url: str, db_url: str, tmp_path: Path
) -> None:
    seed(db_url, 24, seed_value=11)
    key, pending = busiest_pending_key(db_url)
    assert pending >= 2  # the filter must keep more than one row to prove it filters

    tab.goto(app_url + "/")
    everything = ids(db_url, f"SELECT id FROM sessions {NEWEST_FIRST}")
    assert table_ids(tab) == everything
    assert tab.locator("#match-count strong").inner_text() == str(len(everything))

    # Type the filter into the form and submit it: the URL now holds it.
    tab.locator("#filters input[name=learning_key]").fill(key)
    tab.locator("#filters input[name=review_status]").fill("pending")
    tab.locator("#apply-filter").click()
    tab.wait_for_url(re.compile(r"review_status=pending"))
    assert f"learning_key={key}" in tab.url
    matching = ids(
        db_url,
        f"SELECT id FROM sessions WHERE metadata->>'learning_key' = %s "
        f"AND review_status = 'pending' {NEWEST_FIRST}",
        (key,),
    )
    assert table_ids(tab) == matching and len(matching) == pending
    assert tab.locator("#filters input[name=learning_key]").input_value() == key
    # The filter is shareable: the same URL in another browser (no cookies) shows the same rows.
    assert tab.context.browser is not None
    other = tab.context.browser.new_context()
    shared = other.new_page()
    shared.goto(tab.url)
    assert table_ids(shared) == matching
    other.close()

    chosen = matching[0]
    before = tmp_path / "before.jsonl"
    export_jsonl(str(before), db_url)  # the default gate: approved sessions only
    assert chosen not in exported_ids(before)
    shared = tab.context.new_page()  # the UI's export of it: nothing yet
    shared.goto(f"{app_url}/export?session_id={chosen}")
    expect(shared.locator("#export-count strong")).to_have_text("0")
    expect(shared.locator("#download-export")).to_have_count(0)
    shared.close()

    tab.locator(f"#sessions-table a[href='/sessions/{chosen}']").click()
    tab.wait_for_url(f"{app_url}/sessions/{chosen}")
    expect(tab.locator("h1")).to_have_text(f"Session {chosen}")
    expect(tab.locator("#review-status")).to_have_text("pending")
    task = rows(db_url, "SELECT task FROM sessions WHERE id = %s", (chosen,))[0][0]
    assert tab.locator("#task .task-text").inner_text() == task
    expect(tab.locator("#review-history p.muted")).to_have_text("Never reviewed.")

    note = "Checked the plan and every judge — good training data ✓"
    tab.locator("#review-note").fill(note)
    tab.locator("#approve").click()
    tab.wait_for_url(re.compile(rf"/sessions/{chosen}\?done=approved&n=1#review$"))
    expect(tab.locator("#notice")).to_have_text("1 session approved.")
    expect(tab.locator("#review-status")).to_have_text("approved")
    history = tab.locator("#review-history-table tbody tr")
    expect(history).to_have_count(1)
    cells = history.first.locator("td").all_inner_texts()
    assert cells[1:] == ["approved", REVIEWER, note]
    assert re.match(r"\d{4}-\d{2}-\d{2}T", cells[0])

    assert rows(db_url, "SELECT review_status, review_notes FROM sessions WHERE id = %s",
                (chosen,)) == [("approved", note)]  # fmt: skip
    after = tmp_path / "after.jsonl"
    export_jsonl(str(after), db_url)
    assert chosen in exported_ids(after)
    assert sorted(exported_ids(after)) == sorted([*exported_ids(before), chosen])

    # The UI's own download of that session goes through the same gate: it now has it.
    tab.goto(f"{app_url}/export?session_id={chosen}")
    expect(tab.locator("#export-count strong")).to_have_text("1")
    with tab.expect_download() as download_info:
        tab.locator("#download-export").click()
    downloaded = tmp_path / "ui.jsonl.gz"
    download_info.value.save_as(downloaded)
    assert exported_ids(downloaded) == [chosen]


# --- CSRF ----------------------------------------------------------------------------------------


def test_a_post_without_a_valid_csrf_token_is_refused(
    tab: Page, app_url: str, db_url: str, console: Console
) -> None:
    seed(db_url, 10, seed_value=3)
    target = ids(db_url, "SELECT id FROM sessions WHERE review_status = 'pending' LIMIT 1")[0]
    before = review_states(db_url)
    tab.goto(f"{app_url}/sessions/{target}")
    token = tab.locator("#review-one input[name=csrf_token]").input_value()
    assert token and tab.locator("meta[name=csrf-token]").get_attribute("content") == token

    # The page's own cookies go with these requests: only the token is missing or wrong.
    missing = tab.request.post(
        f"{app_url}/sessions/{target}/review", form={"status": "approved", "note": "no token"}
    )
    assert missing.status == 403 and "CSRF" in missing.text()
    wrong = tab.request.post(
        f"{app_url}/sessions/{target}/review",
        form={"status": "approved", "note": "wrong token", "csrf_token": "0" * len(token)},
    )
    assert wrong.status == 403 and "CSRF" in wrong.text()

    # A script on the page (same origin, cookies sent) fares no better without the token.
    console.allow(r"status of 403")
    status = tab.evaluate(
        """async (url) => {
            const body = new URLSearchParams({status: "approved", note: "from fetch"});
            const response = await fetch(url, {method: "POST", body});
            return response.status;
        }""",
        f"{app_url}/sessions/{target}/review",
    )
    assert status == 403

    # Nor does the form itself once its token is taken out.
    tab.locator("#review-one input[name=csrf_token]").evaluate("input => input.remove()")
    tab.locator("#review-note").fill("form without token")
    tab.locator("#approve").click()
    expect(tab.locator("#error")).to_contain_text("403")
    assert review_states(db_url) == before

    # The control: the same request with the page's token goes through.
    accepted = tab.request.post(
        f"{app_url}/sessions/{target}/review",
        form={"status": "approved", "note": "with token", "csrf_token": token},
        max_redirects=0,
    )
    assert accepted.status == 303
    assert review_states(db_url)[target] == ("approved", "with token")


# --- a read-only role ----------------------------------------------------------------------------


@pytest.fixture
def reader_url(db_url: str) -> Iterator[str]:
    """A role that may CONNECT and SELECT on ``db_url``'s tables, and nothing else."""
    seed(db_url, 10, seed_value=7)
    role = f"atlas_ui_reader_{uuid.uuid4().hex[:8]}"
    name = sql.Identifier(role)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(name))
    yield psycopg.conninfo.make_conninfo(db_url, user=role)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(name))
        conn.execute(sql.SQL("DROP ROLE {}").format(name))


def test_a_read_only_role_sees_why_review_is_disabled_and_cannot_force_it(
    tab: Page,
    db_url: str,
    reader_url: str,
    console: Console,
    ui_server: Callable[[UISettings], str],
) -> None:
    role = psycopg.conninfo.conninfo_to_dict(reader_url)["user"]
    target = ids(db_url, "SELECT id FROM sessions WHERE review_status = 'pending' LIMIT 1")[0]
    before = review_states(db_url)
    grant = f"GRANT UPDATE ON sessions TO {role}"
    url = ui_server(UISettings(database_url=reader_url, reviewer=REVIEWER))
    tab.goto(f"{url}/sessions/{target}")
    expect(tab.locator("#read-only-banner")).to_contain_text(grant)
    for button in ("#approve", "#quarantine", "#reset"):
        expect(tab.locator(button)).to_be_disabled()
    expect(tab.locator("#review-disabled-reason")).to_contain_text(grant)
    assert grant in (tab.locator("#approve").get_attribute("title") or "")

    # The list and the queue disable theirs too.
    tab.goto(url + "/")
    expect(tab.locator("#read-only-banner")).to_contain_text(grant)
    expect(tab.locator("#approve-selected")).to_be_disabled()
    tab.goto(url + "/queue")
    expect(tab.locator("#queue-approve")).to_be_disabled()
    shown = tab.locator("#queue-session").inner_text()
    tab.keyboard.press("a")  # the shortcut does not press a disabled button
    tab.wait_for_timeout(300)
    assert tab.url == url + "/queue" and tab.locator("#queue-session").inner_text() == shown

    # Forced: a valid token taken from the page's form, the button enabled by hand.
    tab.goto(f"{url}/sessions/{target}")
    token = tab.locator("#review-one input[name=csrf_token]").input_value()
    forced = tab.request.post(
        f"{url}/sessions/{target}/review",
        form={"status": "approved", "note": "forced", "csrf_token": token},
    )
    assert forced.status == 403
    assert "CSRF" not in forced.text() and "UPDATE" in forced.text()
    console.allow(r"status of 403")
    tab.locator("#approve").evaluate("button => button.removeAttribute('disabled')")
    tab.locator("#approve").click()
    expect(tab.locator("#error")).to_contain_text("403")
    expect(tab.locator("#error")).to_contain_text("Permission denied")
    assert review_states(db_url) == before


# --- the event timeline --------------------------------------------------------------------------


def test_the_event_timeline_filters_by_type_and_actor(tab: Page, app_url: str, db_url: str) -> None:
    seed(db_url, 6, seed_value=21)
    target = ids(db_url, "SELECT session_id FROM trajectory_events GROUP BY session_id "
                         "ORDER BY count(*) DESC LIMIT 1")[0]  # fmt: skip
    counts = dict(
        rows(
            db_url,
            "SELECT event->>'event_type', count(*) FROM trajectory_events WHERE session_id = %s "
            "GROUP BY 1",
            (target,),
        )
    )
    total = sum(counts.values())
    assert len(counts) >= 3
    tab.goto(f"{app_url}/sessions/{target}")
    items = tab.locator("#timeline li[data-event-type]")
    expect(items).to_have_count(total)
    expect(tab.locator("#timeline li[data-event-type]:visible")).to_have_count(total)
    options = tab.locator("#event-type-filter option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["", *sorted(counts)]

    for event_type, count in sorted(counts.items()):
        tab.locator("#event-type-filter").select_option(event_type)
        visible = tab.locator("#timeline li[data-event-type]:visible")
        expect(visible).to_have_count(count)
        shown = visible.evaluate_all("rows => rows.map(r => r.dataset.eventType)")
        assert set(shown) == {event_type}

    # Type and actor together; then "all" shows every event again.
    event_type, actor, count = rows(
        db_url,
        "SELECT event->>'event_type', event->>'actor', count(*) FROM trajectory_events "
        "WHERE session_id = %s GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 1",
        (target,),
    )[0]
    tab.locator("#event-type-filter").select_option(event_type)
    tab.locator("#event-actor-filter").select_option(actor)
    expect(tab.locator("#timeline li[data-event-type]:visible")).to_have_count(count)
    tab.locator("#event-type-filter").select_option("")
    tab.locator("#event-actor-filter").select_option("")
    expect(tab.locator("#timeline li[data-event-type]:visible")).to_have_count(total)


# --- export --------------------------------------------------------------------------------------


def test_the_export_page_shows_the_command_and_downloads_exactly_the_gated_filter(
    tab: Page, app_url: str, db_url: str, tmp_path: Path
) -> None:
    seed(db_url, 30, seed_value=8)
    key = rows(
        db_url,
        "SELECT metadata->>'learning_key' FROM sessions WHERE review_status = 'approved' "
        "AND (reward_stats->>'score')::float >= 0.5 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    )[0][0]
    expected = ids(
        db_url,
        "SELECT id FROM sessions WHERE metadata->>'learning_key' = %s "
        "AND (reward_stats->>'score')::float >= 0.5 AND review_status = 'approved' "
        f"{NEWEST_FIRST}",
        (key,),
    )
    ungated = ids(
        db_url,
        "SELECT id FROM sessions WHERE metadata->>'learning_key' = %s "
        "AND (reward_stats->>'score')::float >= 0.5",
        (key,),
    )
    assert expected and len(ungated) > len(expected)  # the gate really leaves some out
    assert count_training_sessions(db_url, learning_key=[key], min_reward=0.5) == len(expected)

    tab.goto(f"{app_url}/?learning_key={key}&min_reward=0.5")
    tab.locator("#export-link").click()
    tab.wait_for_url(re.compile(r"/export\?"))
    expect(tab.locator("#export-command")).to_have_text(
        f"arc-atlas export --output sessions.jsonl.gz --learning-key {key} --min-reward 0.5"
    )
    expect(tab.locator("#export-count strong")).to_have_text(str(len(expected)))
    with tab.expect_download() as download_info:
        tab.locator("#download-export").click()
    download = download_info.value
    assert download.suggested_filename == "sessions.jsonl.gz"
    target = tmp_path / "sessions.jsonl.gz"
    download.save_as(target)
    with target.open("rb") as handle:
        assert handle.read(2) == b"\x1f\x8b"  # gzip
    assert exported_ids(target) == expected

    # Naming review statuses lifts the gate, in the command and in the download alike.
    tab.goto(f"{app_url}/export?learning_key={key}&min_reward=0.5&review_status=pending,approved")
    expect(tab.locator("#export-command")).to_contain_text(
        "--include-status pending --include-status approved"
    )
    both = ids(
        db_url,
        "SELECT id FROM sessions WHERE metadata->>'learning_key' = %s "
        "AND (reward_stats->>'score')::float >= 0.5 AND review_status IN ('pending', 'approved')",
        (key,),
    )
    expect(tab.locator("#export-count strong")).to_have_text(str(len(both)))


# --- bulk review by filter -----------------------------------------------------------------------


def test_bulk_approve_by_filter_shows_the_count_asks_and_changes_only_pending(
    tab: Page, app_url: str, db_url: str
) -> None:
    seed(db_url, 30, seed_value=4)
    key, pending = busiest_pending_key(db_url)
    targets = ids(
        db_url,
        "SELECT id FROM sessions WHERE metadata->>'learning_key' = %s "
        "AND review_status = 'pending' ORDER BY id",
        (key,),
    )
    others = rows(
        db_url,
        "SELECT review_status, count(*) FROM sessions WHERE metadata->>'learning_key' = %s "
        "GROUP BY 1",
        (key,),
    )
    assert len(targets) == pending >= 2
    assert {status for status, _ in others} >= {"approved", "quarantined"}  # must stay as they are
    before = review_states(db_url)

    tab.goto(f"{app_url}/?learning_key={key}")
    tab.locator("#bulk-approve").click()
    tab.wait_for_url(re.compile(r"/review/bulk\?"))
    expect(tab.locator("#bulk-count strong")).to_have_text(str(pending))
    expect(tab.locator("#bulk-filter")).to_have_text(f"--learning-key {key}")
    expect(tab.locator("#bulk-confirm")).to_have_text(f"Approve {pending} sessions")

    # Dismissing the browser's confirmation changes nothing.
    asked: list[str] = []

    def answer(accept: bool) -> Callable[[Dialog], None]:
        def handle(dialog: Dialog) -> None:
            asked.append(f"{dialog.type}: {dialog.message}")
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        return handle

    tab.once("dialog", answer(False))
    tab.locator("#bulk-note").fill("bulk by key")
    tab.locator("#bulk-confirm").click()
    expect(tab.locator("#bulk-count strong")).to_have_text(str(pending))
    assert asked == [f"confirm: Approve {pending} pending sessions?"]
    assert "/review/bulk?" in tab.url and review_states(db_url) == before

    tab.once("dialog", answer(True))
    tab.locator("#bulk-confirm").click()
    tab.wait_for_url(re.compile(rf"/\?learning_key={re.escape(key)}&done=approved&n={pending}$"))
    expect(tab.locator("#notice")).to_have_text(f"{pending} sessions approved.")
    assert len(asked) == 2

    after = review_states(db_url)
    assert {i: after[i] for i in targets} == {i: ("approved", "bulk by key") for i in targets}
    assert {i: s for i, s in after.items() if i not in targets} == {
        i: s for i, s in before.items() if i not in targets
    }
    # The list now offers nothing more to approve for this key.
    tab.locator("#bulk-approve").click()
    expect(tab.locator("#bulk-count strong")).to_have_text("0")
    expect(tab.locator("#bulk-confirm")).to_have_count(0)


def test_bulk_approve_refuses_when_the_count_changed_after_the_preview(
    tab: Page, app_url: str, db_url: str, console: Console
) -> None:
    seed(db_url, 20, seed_value=9)
    key, pending = busiest_pending_key(db_url)
    tab.goto(f"{app_url}/review/bulk?learning_key={key}&to=approved")
    expect(tab.locator("#bulk-count strong")).to_have_text(str(pending))

    # Someone adds a matching pending session while the reviewer reads the preview.
    rows(
        db_url,
        "INSERT INTO sessions (task, status, metadata, review_status) "
        "VALUES ('arrived after the preview', 'succeeded', jsonb_build_object('learning_key', "
        "%s::text), 'pending') RETURNING id",
        (key,),
    )
    before = review_states(db_url)
    console.allow(r"status of 409")
    tab.once("dialog", lambda dialog: dialog.accept())
    tab.locator("#bulk-confirm").click()
    expect(tab.locator("#bulk-problem")).to_be_visible()
    problem = tab.locator("#bulk-problem").inner_text()
    assert str(pending) in problem and str(pending + 1) in problem
    # The page shows the new count to confirm instead, and nothing was changed.
    expect(tab.locator("#bulk-count strong")).to_have_text(str(pending + 1))
    assert review_states(db_url) == before


# --- the review queue by keyboard ----------------------------------------------------------------


def test_the_review_queue_works_from_the_keyboard(tab: Page, app_url: str, db_url: str) -> None:
    seed(db_url, 15, seed_value=2)
    oldest = ids(
        db_url,
        "SELECT id FROM sessions WHERE review_status = 'pending' ORDER BY created_at, id",
    )
    assert len(oldest) >= 4
    first, second, third, fourth = oldest[:4]
    before = review_states(db_url)

    tab.goto(app_url + "/queue")
    expect(tab.locator("#queue-session")).to_have_text(str(first))
    expect(tab.locator("#queue-size strong")).to_have_text(str(len(oldest)))

    # n focuses the note; letters typed there are text, not shortcuts.
    tab.keyboard.press("n")
    expect(tab.locator("#queue-note")).to_be_focused()
    note = "a quick sanity pass: no quirks, approve"
    tab.keyboard.type(note)
    tab.wait_for_timeout(200)
    assert tab.url == app_url + "/queue" and review_states(db_url) == before
    expect(tab.locator("#queue-note")).to_have_value(note)
    tab.keyboard.press("Escape")
    expect(tab.locator("#queue-note")).not_to_be_focused()

    tab.keyboard.press("a")
    tab.wait_for_url(re.compile(r"/queue\?after=.*done=approved&n=1$"))
    expect(tab.locator("#notice")).to_have_text("1 session approved.")
    expect(tab.locator("#queue-session")).to_have_text(str(second))
    assert review_states(db_url)[first] == ("approved", note)
    history = rows(db_url, "SELECT metadata->'review_history' FROM sessions WHERE id = %s",
                   (first,))[0][0]  # fmt: skip
    assert [(h["status"], h["reviewer"], h["note"]) for h in history] == [
        ("approved", REVIEWER, note)
    ]

    tab.keyboard.press("s")
    expect(tab.locator("#queue-session")).to_have_text(str(third))
    assert review_states(db_url)[second] == before[second]  # skipped: still pending

    tab.keyboard.press("q")
    tab.wait_for_url(re.compile(r"done=quarantined&n=1$"))
    expect(tab.locator("#queue-session")).to_have_text(str(fourth))
    after = review_states(db_url)
    assert after[third][0] == "quarantined"
    changed = {i for i in after if after[i] != before[i]}
    assert changed == {first, third}


# --- stored text is shown as text: the XSS plants ------------------------------------------------

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
SVG = '"><svg onload=window.__pwned=1>'
PLANT = f"{SCRIPT} {IMG} {SVG}"
# A script that ran, an element or handler the markup made, or a dialog, means a plant got through.
_INJECTED = (
    "() => ({pwned: window.__pwned, "
    "handlers: document.querySelectorAll('[onerror], [onload]').length, "
    "inline: [...document.scripts].filter(s => !s.src).length, "
    "images: document.querySelectorAll('img').length})"
)


def plant(url: str) -> int:
    """Plant the payloads in the oldest session's every text field a page shows; its id.

    The task, step 1's trace, a judge's rationale, the plan's step description,
    a trajectory event (type, actor and payload), the learning key and its
    playbook in ``learning_registry``, and two review notes (written through
    the library, as a review in the UI would be). The session stays pending,
    so the review queue shows it first.
    """
    seed(url, 8, seed_value=13)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT id FROM sessions ORDER BY created_at, id LIMIT 1").fetchone()
        assert row is not None
        target = int(row[0])
        conn.execute(
            "UPDATE sessions SET task = %s, metadata = jsonb_set(metadata, '{learning_key}', "
            "to_jsonb(%s::text)) WHERE id = %s",
            (f"Planted task {PLANT}", PLANT, target),
        )
        conn.execute(
            "UPDATE step_results SET trace = %s, evaluation = jsonb_set(evaluation, "
            "'{reward,judges,0,rationale}', to_jsonb(%s::text)) "
            "WHERE session_id = %s AND step_id = 1",
            (f"HUMAN: {PLANT}", PLANT, target),
        )
        conn.execute(
            "UPDATE plans SET plan = jsonb_set(plan, '{steps,0,description}', to_jsonb(%s::text)) "
            "WHERE session_id = %s",
            (PLANT, target),
        )
        conn.execute(
            "UPDATE trajectory_events SET event = event || jsonb_build_object('event_type', "
            "%s::text, 'actor', %s::text, 'payload', jsonb_build_object('text', %s::text)) "
            "WHERE id = (SELECT min(id) FROM trajectory_events WHERE session_id = %s)",
            (SVG, IMG, PLANT, target),
        )
        conn.execute(
            "INSERT INTO learning_registry (learning_key, student_learning, teacher_learning) "
            "VALUES (%s, %s, %s)",
            (PLANT, PLANT, PLANT),
        )
        review_sessions(conn, "quarantined", session_ids=[target], note=PLANT, reviewer=SVG)
        review_sessions(conn, "pending", session_ids=[target], note=IMG, reviewer=REVIEWER)
    return target


def assert_inert(tab: Page, dialogs: list[str]) -> None:
    """Nothing planted ran or became markup on this tab."""
    found = tab.evaluate(_INJECTED)
    assert found == {"pwned": None, "handlers": 0, "inline": 0, "images": 0}, tab.url
    assert dialogs == [], tab.url


def test_planted_markup_is_shown_as_text_and_never_runs(
    tab: Page, app_url: str, db_url: str, console: Console
) -> None:
    target = plant(db_url)
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", record)

    # The list, filtered by the planted key and text: the filter's inputs hold them as values.
    tab.goto(app_url + "/")
    row = tab.locator(f"#sessions-table tr[data-session-id='{target}']")
    expect(row.locator("td.task")).to_have_text(f"Planted task {PLANT}")
    expect(row.locator("td").nth(8)).to_have_text(PLANT)
    assert_inert(tab, dialogs)
    tab.locator("#filters input[name=learning_key]").fill(PLANT)
    tab.locator("#filters input[name=task_contains]").fill(SVG)
    tab.locator("#apply-filter").click()
    tab.wait_for_url(re.compile(r"task_contains="))
    assert table_ids(tab) == [target]
    expect(tab.locator("#filters input[name=learning_key]")).to_have_value(PLANT)
    expect(tab.locator("#filters input[name=task_contains]")).to_have_value(SVG)
    assert_inert(tab, dialogs)

    # The session page: task, plan, trace, judge, event, learning key, review history.
    tab.goto(f"{app_url}/sessions/{target}")
    expect(tab.locator("#task .task-text")).to_have_text(f"Planted task {PLANT}")
    expect(tab.locator("#summary code")).to_have_text(PLANT)
    step = tab.locator("#step-1")
    expect(step.locator("h4:text-is('Trace') + pre")).to_have_text(f"HUMAN: {PLANT}")
    expect(step.locator("td.rationale").first).to_have_text(PLANT)
    expect(tab.locator("#plan svg")).to_contain_text(PLANT)
    options = tab.locator("#event-type-filter option").evaluate_all("os => os.map(o => o.value)")
    assert SVG in options
    tab.locator("#event-type-filter").select_option(SVG)
    planted_event = tab.locator("#timeline li[data-event-type]:visible")
    expect(planted_event).to_have_count(1)
    assert planted_event.get_attribute("data-actor") == IMG
    planted_event.locator("summary").click()
    expect(planted_event.locator("pre")).to_contain_text(json.dumps(PLANT)[1:-1])
    history = tab.locator("#review-history-table tbody tr")
    expect(history).to_have_count(2)
    assert history.nth(0).locator("td").all_inner_texts()[1:] == ["quarantined", SVG, PLANT]
    assert history.nth(1).locator("td").all_inner_texts()[1:] == ["pending", REVIEWER, IMG]
    expect(tab.locator("#review-history")).to_contain_text(f"Latest note: {IMG}")
    assert_inert(tab, dialogs)

    # The queue shows the same session first.
    tab.goto(app_url + "/queue")
    expect(tab.locator("#queue-session")).to_have_text(str(target))
    expect(tab.locator("#task .task-text")).to_have_text(f"Planted task {PLANT}")
    assert_inert(tab, dialogs)

    # Insights: the key in the table, its histogram's caption and its playbook.
    tab.goto(app_url + "/insights")
    keys = tab.locator("#learning-keys tbody tr", has_text=SCRIPT)
    expect(keys).to_have_count(1)
    expect(keys.locator("td").first).to_have_text(PLANT)
    keys.locator("summary").click()
    expect(keys.locator("pre").first).to_have_text(PLANT)
    expect(tab.locator("#histograms figcaption", has_text=SCRIPT)).to_have_text(PLANT)
    assert_inert(tab, dialogs)
    # Its link is the list filtered by that key, with the key intact.
    keys.locator("td a").first.click()
    tab.wait_for_url(re.compile(r"/\?learning_key="))
    assert table_ids(tab) == [target]
    assert_inert(tab, dialogs)

    # The bulk preview and the export command show the same text.
    tab.goto(f"{app_url}/review/bulk?learning_key={quote(PLANT)}&to=quarantined")
    expect(tab.locator("#bulk-count strong")).to_have_text("1")
    expect(tab.locator("td.task")).to_have_text(f"Planted task {PLANT}")
    assert_inert(tab, dialogs)
    tab.goto(f"{app_url}/export?learning_key={quote(PLANT)}&review_status=pending")
    expect(tab.locator("#export-command")).to_contain_text(PLANT.replace("'", "'\"'\"'"))
    assert_inert(tab, dialogs)

    # Markup in the URL itself is shown as text on the error line, too (a 400 page).
    console.allow(r"status of 400")
    tab.goto(f"{app_url}/?min_reward={quote(PLANT)}")
    expect(tab.locator("#filter-error")).to_contain_text("min_reward")
    assert_inert(tab, dialogs)
