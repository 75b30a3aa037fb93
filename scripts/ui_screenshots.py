"""Take the screenshots of docs/ui.md: every page of ``arc-atlas ui`` on a seeded database.

    .venv/bin/python scripts/ui_screenshots.py [--server-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a throwaway database on the server (default: the embedded one), seeds
synthetic sessions, reviews a few through the library (so the review history
has entries), serves the app on a free port, drives Debian's chromium with
Playwright and writes ``docs/img/ui-*.png``. Needs the dev extra and
``/usr/bin/chromium``.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import uvicorn
from playwright.sync_api import Page, sync_playwright
from psycopg import sql

from atlas.storage import Database, ensure_embedded, seed_sessions
from atlas.training_data import SessionFilters, review_sessions
from atlas.ui import UISettings, create_app

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        seed_sessions(conn, 600, seed=42)
        # A spread of review statuses, as a team mid-review would have.
        conn.execute(
            "UPDATE sessions SET review_status = CASE WHEN id % 5 = 0 THEN 'quarantined' "
            "WHEN id % 3 = 0 THEN 'approved' ELSE 'pending' END"
        )
        conn.execute(
            "INSERT INTO learning_registry (learning_key, student_learning, teacher_learning) "
            "VALUES ('security-review', 'Check every dependency against the advisory feed "
            "before approving a release.', 'Ask for the advisory id when the student skips it.') "
            "ON CONFLICT DO NOTHING"
        )
    with Database.open(url) as db, db.connection() as conn:
        review_sessions(
            conn, "approved", session_ids=[600], note="Clear plan, judges agree.", reviewer="ana"
        )
        review_sessions(
            conn,
            "quarantined",
            filters=SessionFilters.build(max_reward=0.2),
            note="Reward below 0.2: check the judge prompts first.",
            reviewer="ana",
        )


def _shoot(page: Page, base: str, path: str, name: str, *, height: int = 1000) -> None:
    """A screenshot of ``path``, ``height`` pixels from the top of the page."""
    page.goto(base + path)
    page.wait_for_load_state("networkidle")
    clip = {"x": 0, "y": 0, "width": 1440, "height": height}
    page.screenshot(path=str(OUT / f"ui-{name}.png"), full_page=True, clip=clip)
    print(f"docs/img/ui-{name}.png  <- {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", help="a PostgreSQL server (default: the embedded one)")
    args = parser.parse_args()
    server = args.server_url or ensure_embedded()
    name = f"atlas_ui_shots_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    try:
        Database.open(url, migrate=True).close()
        _seed(url)
        port = _free_port()
        app = create_app(UISettings(database_url=url, reviewer="ana", port=port))
        server_ = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server_.run, daemon=True)
        thread.start()
        while not server_.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            _shoot(page, base, "/", "sessions")
            filtered = "/?review_status=pending&min_reward=0.8&learning_key=security-review"
            _shoot(page, base, filtered, "sessions-filtered")
            _shoot(page, base, "/sessions/600", "session", height=2400)
            _shoot(page, base, "/queue", "queue")
            bulk = "/review/bulk?learning_key=release-notes&min_reward=0.9&to=approved"
            _shoot(page, base, bulk, "bulk-review")
            _shoot(page, base, "/insights", "insights", height=2300)
            _shoot(page, base, "/export?min_reward=0.8&review_status=approved", "export")
            browser.close()
        server_.should_exit = True
        thread.join()
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
