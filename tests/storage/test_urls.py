"""mask_url: no password survives, whatever shape the URL has."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from atlas.storage.urls import connection_url, invalid_url_message, mask_url, redact, url_problem


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        pytest.param(
            "postgresql://atlas:secret@db:5433/atlas",
            "postgresql://atlas:***@db:5433/atlas",
            id="user-and-password",
        ),
        pytest.param(
            "postgresql://atlas@db/atlas", "postgresql://atlas@db/atlas", id="no-password"
        ),
        pytest.param("postgresql:///atlas", "postgresql:///atlas", id="no-authority"),
        pytest.param(
            "postgresql://u:p%40ss@db/atlas", "postgresql://u:***@db/atlas", id="percent-encoded"
        ),
        pytest.param("postgresql://u:p@ss@db/atlas", "postgresql://u:***@db/atlas", id="raw-at"),
        pytest.param(
            "postgresql://u:se#cret@db/atlas", "postgresql://u:***@db/atlas", id="raw-hash"
        ),
        pytest.param(
            "postgresql://u:se?cret@db/atlas", "postgresql://u:***@db/atlas", id="raw-question"
        ),
        pytest.param(
            "postgresql://u:pa/ss@db/atlas", "postgresql://u:***@db/atlas", id="raw-slash"
        ),
        pytest.param(
            "postgresql://u:secret@h1:5432,h2:5433/atlas?sslmode=require",
            "postgresql://u:***@h1:5432,h2:5433/atlas?sslmode=require",
            id="multi-host",
        ),
        pytest.param(
            "postgresql://db/atlas?user=u&password=secret&sslmode=require",
            "postgresql://db/atlas?user=u&password=***&sslmode=require",
            id="query-password",
        ),
        pytest.param(
            "postgresql://u@/atlas?host=/tmp/socket%20dir&port=5432",
            "postgresql://u@/atlas?host=/tmp/socket%20dir&port=5432",
            id="socket-untouched",
        ),
        pytest.param(
            "host=db user=u password=secret dbname=atlas",
            "host=db user=u password=*** dbname=atlas",
            id="keyword",
        ),
        pytest.param(
            "host=db password = 'two words' dbname=atlas",
            "host=db password = *** dbname=atlas",
            id="keyword-quoted",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://u:se#cret@db/atlas?password=se#cret", id="both-places"),
        pytest.param("postgres://u:se#cret@[::1]:5432/atlas", id="ipv6"),
        pytest.param("host=db PASSWORD=se#cret", id="keyword-upper-case"),
    ],
)
def test_secret_never_survives(url: str) -> None:
    assert "cret" not in mask_url(url)


def test_unparseable_url_is_masked_not_dropped() -> None:
    assert mask_url("postgresql://u:secret@[::1/atlas") == "postgresql://u:***@[::1/atlas"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://atlas:atlas@localhost:5433/atlas", id="plain"),
        pytest.param("postgresql:///atlas", id="no-authority"),
        pytest.param("postgresql://u@/atlas?host=/tmp/socket%20dir&port=5432", id="socket"),
        pytest.param("postgresql://[::1]:5432/atlas", id="ipv6"),
        pytest.param("postgresql://h1:5432,h2:5433/atlas?target_session_attrs=any", id="multi"),
        pytest.param("postgres://u:p%40s%2Fs@h/atlas", id="escaped"),
        pytest.param("postgresql://u:se#cr?et@/atlas?host=/tmp/s&port=5432", id="raw-hash-q"),
        pytest.param("postgresql://u:pw@h/atlas?application_name=me@laptop", id="at-in-query"),
        pytest.param("host=db user=u password='a b' dbname=atlas", id="keyword"),
    ],
)
def test_valid_urls_have_no_problem(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("postgresql+psycopg://u:pw@h/db", "drop '+psycopg'", id="sqlalchemy"),
        pytest.param("mysql://u:pw@h/db", "scheme 'mysql' is not PostgreSQL's", id="mysql"),
        pytest.param("postgresql:/u:pw@h", "two slashes", id="one-slash"),
        pytest.param("u:pw@h/db", "no scheme", id="no-scheme"),
        pytest.param("postgresql://u:p%zz@h/db", "as %25", id="bad-escape"),
        pytest.param("postgresql://u:p@ss@h/db", "as %40", id="raw-at"),
        pytest.param("postgresql://u:pa/ss@h/db", "as %2F", id="raw-slash"),
        pytest.param("postgresql://u:pw@h/db?nonsense=1", 'invalid URI query parameter: "nonsense"',
                     id="libpq"),
        pytest.param("host=h password='pw", "libpq says: unterminated quoted string", id="keyword"),
    ],
)  # fmt: skip
def test_url_problem_says_what_to_fix(url: str, says: str) -> None:
    problem = url_problem(url)
    assert problem is not None and says in problem


def test_invalid_url_message_masks_and_names_the_source() -> None:
    assert invalid_url_message("mysql://u:secret@h/db", "ATLAS_DATABASE_URL") == (
        "Database URL mysql://u:***@h/db is not valid: the scheme 'mysql' is not PostgreSQL's: "
        "arc-atlas needs postgresql://user:password@host:port/database (set by ATLAS_DATABASE_URL)."
    )


@pytest.mark.parametrize(
    ("url", "text"),
    [
        pytest.param("postgresql://u:secret-pw@h/db", 'bad "postgresql://u:secret-pw@h/db"',
                     id="url"),
        pytest.param("postgresql://u:se%2Fcret@h/db", 'port "se/cret"', id="decoded"),
        pytest.param("postgresql://u:secret/rest@h/db", 'invalid port number: "secret"',
                     id="piece"),
        pytest.param("host=h password='two words'", 'value "two words"', id="keyword-quoted"),
    ],
)  # fmt: skip
def test_redact_removes_the_password_from_driver_text(url: str, text: str) -> None:
    redacted = redact(text, url)
    assert "secret" not in redacted and "two words" not in redacted
    assert "***" in redacted


@pytest.mark.parametrize(
    ("host", "port", "user", "url"),
    [
        ("127.0.0.1", 5432, "ann", "postgresql://ann@127.0.0.1:5432/atlas"),
        ("::1", 5433, "ann", "postgresql://ann@[::1]:5433/atlas"),
        ("/var/run/postgresql", 5432, "ann", "postgresql://ann@/atlas?host=/var/run/postgresql"),
        ("db.example", 5432, "a b@c", "postgresql://a%20b%40c@db.example:5432/atlas"),
    ],
)
def test_connection_url_names_the_server_without_a_password(
    host: str, port: int, user: str, url: str
) -> None:
    info = SimpleNamespace(host=host, port=port, user=user, dbname="atlas", password="S3cret")
    assert connection_url(info) == url
