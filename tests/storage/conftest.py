"""Storage fixtures beyond the shared server: a cluster that checks passwords."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from storage_servers import PasswordServer, password_cluster


@pytest.fixture(scope="session")
def password_server() -> Iterator[PasswordServer]:
    """A private cluster with scram-sha-256 authentication (the shared one trusts everyone)."""
    with password_cluster() as server:
        yield server
