"""`python -m config.services_check`: one clear line when PostgreSQL or Redis is unreachable.

Run by `make test` before the suite, with the same defaults as
config/settings/test.py (DATABASE_URL / REDIS_URL override them).
"""

import os
import sys
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/precis"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def main() -> int:
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    problems = []
    try:
        import psycopg

        parts = urlsplit(database_url)
        psycopg.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except Exception as exc:  # any failure is reported in one line
        problems.append(f"PostgreSQL unreachable at {_redact(database_url)} ({exc.__class__.__name__})")
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3).ping()
    except Exception as exc:
        problems.append(f"Redis unreachable at {_redact(redis_url)} ({exc.__class__.__name__})")
    if problems:
        print(
            "error: " + "; ".join(problems) + " — start them or set DATABASE_URL / REDIS_URL.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
