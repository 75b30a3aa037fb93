"""``arc-atlas ui``: a local web app to browse, inspect and review sessions.

Build the ASGI app with :func:`create_app` and serve it with any ASGI server
(the CLI uses uvicorn)::

    from atlas.ui import UISettings, create_app

    app = create_app(UISettings(database_url="postgresql://localhost/atlas"))
"""

from atlas.ui.app import UISettings, create_app

__all__ = ["UISettings", "create_app"]
