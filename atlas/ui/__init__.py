"""``arc-atlas ui``: a local web app to browse, inspect and review sessions.

Build the ASGI app with :func:`create_app` and serve it with any ASGI server
(the CLI uses uvicorn)::

    from atlas.ui import UISettings, create_app

    app = create_app(UISettings(database_url="postgresql://localhost/atlas"))

:func:`check_bind` is the rule a server of the app must keep: a non-loopback
address only with a token.
"""

from atlas.ui.app import UISettings, create_app
from atlas.ui.security import check_bind

__all__ = ["UISettings", "check_bind", "create_app"]
