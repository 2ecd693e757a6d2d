"""The production settings serve the admin and the API docs once `collectstatic` has run, as
`make stack` and the Docker image run it (with DEBUG off a missing manifest is a 500)."""

import os
import subprocess
import sys

from django.conf import settings

from config.tests.test_deployment_files import ROOT


def test_make_stack_collects_static_files_before_serving():
    recipe = (ROOT / "Makefile").read_text().split("\nstack:", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("collectstatic") < recipe.index("honcho start")


def test_admin_and_docs_render_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DEBUG": "false",
            "SECRET_KEY": "production-smoke-test-key-" + "x" * 40,
            "ALLOWED_HOSTS": "localhost",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "STATIC_ROOT": str(tmp_path / "static"),
        }
    )
    run = {"cwd": settings.BASE_DIR, "env": env, "capture_output": True, "text": True, "timeout": 300}
    collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], **run)
    assert collected.returncode == 0, collected.stderr[-2000:]
    result = subprocess.run([sys.executable, "-m", "config.tests.production_smoke"], **run)
    assert result.returncode == 0 and "PRODUCTION OK" in result.stdout, result.stdout[-2000:] + result.stderr[-3000:]
