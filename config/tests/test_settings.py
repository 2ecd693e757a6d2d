"""Start-up configuration: fail loudly on a missing SECRET_KEY; embedded vs stack modes."""

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = (
    "import json, config.settings.base as s; print(json.dumps({"
    "'db': s.DATABASES['default']['ENGINE'], 'cache': s.CACHES['default']['BACKEND'], "
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'broker': s.CELERY_BROKER_URL, 'embedded': s.EMBEDDED}))"
)


def run_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secret_key_required_when_debug_off():
    result = run_settings({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_embedded_mode_by_default(tmp_path):
    result = run_settings({"DEBUG": "true"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "db": "django.db.backends.sqlite3",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "layer": "channels.layers.InMemoryChannelLayer",
        "broker": "memory://",
        "embedded": True,
    }


def test_stack_mode_with_database_and_redis_urls():
    result = run_settings(
        {
            "SECRET_KEY": "k" * 50,
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/precis",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
        }
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "db": "django.db.backends.postgresql",
        "cache": "django.core.cache.backends.redis.RedisCache",
        "layer": "realtime.layers.PrecisRedisChannelLayer",
        "broker": "redis://127.0.0.1:6379/3",
        "embedded": False,
    }
