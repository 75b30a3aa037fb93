"""mask_url: no password survives, whatever shape the URL has."""

from __future__ import annotations

import pytest

from atlas.storage.urls import mask_url


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


def test_unparseable_url_is_not_echoed() -> None:
    assert mask_url("postgresql://u:secret@[::1/atlas") == "<unparseable database URL>"
