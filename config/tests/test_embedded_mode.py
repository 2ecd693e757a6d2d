"""The embedded mode (`make run`: SQLite, no Redis) runs the main flows end to end."""

import os
import subprocess
import sys

from django.conf import settings


def test_embedded_mode_flows(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "SECRET_KEY"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
            "MEDIA_ROOT": str(tmp_path / "media"),
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "config.tests.embedded_smoke"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "EMBEDDED OK" in result.stdout
