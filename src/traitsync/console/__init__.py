"""The web console: a single-page app built from ``console/`` at the repository root into
``static/``, and the JSON endpoints its pages read (all under ``/api/v1/``, behind the
management token like the rest of the management API).

The page itself is public (a browser cannot send a bearer token when it navigates); every
piece of data it shows comes from an authenticated endpoint, so the token it asks for once
(and keeps in ``sessionStorage``) is what guards the data.
"""

from traitsync.console.routes import ConsoleSources, console_routers
from traitsync.console.static import STATIC_DIR, static_router

__all__ = ["STATIC_DIR", "ConsoleSources", "console_routers", "static_router"]
