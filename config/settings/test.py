"""Test settings: the real PostgreSQL and Redis on localhost unless overridden.

`make test` exports nothing: these defaults point at the services this machine
runs; set DATABASE_URL / REDIS_URL to test against others.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/precis")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("DEBUG", "false")
# The sandboxed extraction child also runs the sandbox tests' hostile functions (documents.sandbox_child).
os.environ.setdefault("PRECIS_SANDBOX_TESTS", "1")
# A fixed test key; never used outside tests.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "cHJlY2lzLXRlc3Qta2V5LW5ld2VzdC0wMTIzNDU2Nzg=")


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Mail goes over real SMTP to the loopback server of config/tests/mailbox.py (workers the
# tests start inherit the variable, so their mail arrives there too).
os.environ.setdefault("EMAIL_URL", f"smtp://127.0.0.1:{_free_loopback_port()}")
EMAIL_URL_FOR_TESTS = os.environ["EMAIL_URL"]

from .base import *  # noqa: E402 - after the environment it reads

# Fast hashing: the tests create many users; production keeps Django's default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = VAR_DIR / "test-media"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
STATIC_ROOT = VAR_DIR / "test-static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# No collectstatic in tests: plain storage instead of whitenoise's manifest.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True  # the test servers (daphne) serve the apps' static files
