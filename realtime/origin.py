"""Origin check for WebSockets, at the handshake.

Browsers always send `Origin`: it must be one of ALLOWED_HOSTS or of the hosts
in CORS_ALLOWED_ORIGINS (a front-end on its own domain), else the handshake is
refused (403). Clients that are not browsers send no Origin and are let through:
they authenticate with their token like any API client.
"""

from urllib.parse import urlsplit

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application):
        allowed = list(settings.ALLOWED_HOSTS) or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
        allowed += [urlsplit(origin).netloc for origin in settings.CORS_ALLOWED_ORIGINS]
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)
