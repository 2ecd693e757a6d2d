"""ASGI entry point: HTTP (Django) and WebSocket (Channels) on one server.

Served by daphne: `daphne config.asgi:application`.
"""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

# Django must be set up before anything imports models (the routing does).
django.setup(set_prefix=False)

from config.asgi_http import OneHopASGIHandler  # noqa: E402

django_asgi_app = OneHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.body_limits import BodySizeLimitMiddleware  # noqa: E402
from realtime.origin import BrowserOriginValidator  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimitMiddleware(django_asgi_app),
        "websocket": BrowserOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)

# Everything imported so far lives as long as the process: move it out of the garbage
# collector's generations so that full collections stop scanning it (shorter pauses
# under WebSocket fan-out; see docs/benchmarks.md).
gc.freeze()
