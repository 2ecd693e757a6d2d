"""WebSocket routes, mounted by config/asgi.py under the origin validator."""

websocket_urlpatterns: list = []
