"""A settings variant bench/rest_list.py measures only when the project's own settings do
not pool database connections (the headline figures always measure the project's settings).

Under ASGI, Django runs each request's sync code in a fresh thread (asgiref
ThreadSensitiveContext) and database connections are per thread, so CONN_MAX_AGE opens a
new PostgreSQL connection for every request and leaves the old ones to the garbage
collector. This variant uses Django 5.1+'s psycopg connection pool instead (CONN_MAX_AGE
must then be 0); it needs the psycopg-pool package.
"""

from config.settings.base import *  # noqa: F403

DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 2, "max_size": 8, "timeout": 10}  # noqa: F405
