"""Settings for `bench.websocket --with-fixes layer` only: the app's settings with the
channel-layer change this benchmark recommends, to measure it before anyone edits
config/settings/base.py.

- `socket_timeout` above channels-redis' 5 s blocking BZPOPMIN (redis-py 8 defaults to 5 s, so
  the read timed out first and killed a consumer about every 5 s of quiet;
  django/channels_redis#422) — config/settings/base.py has this since 45180e9;
- a blocking connection pool (bench/_ws_layer.py): redis-py 8's pool raises "Too many
  connections" past 100 commands in flight per process instead of waiting.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import CHANNEL_LAYERS, EMBEDDED, REDIS_URL

if not EMBEDDED:
    CHANNEL_LAYERS["default"]["BACKEND"] = "bench._ws_layer.BlockingPoolRedisChannelLayer"
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [
        {"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5, "max_connections": 100}
    ]
