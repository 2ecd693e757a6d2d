"""Run by test_production_static.py in a subprocess with the production settings (DEBUG off,
manifest static storage) after `collectstatic`: the admin and the API docs render, and their
static files are served."""

import os
import re
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.test import Client  # noqa: E402


def main() -> None:
    client = Client(HTTP_HOST="localhost")
    for path in ("/admin/login/", "/api/v1/docs/"):
        response = client.get(path)
        if response.status_code != 200:
            print(f"FAILED: {path} answered {response.status_code}")
            sys.exit(1)
    page = client.get("/admin/login/").content.decode()
    stylesheet = re.search(r'href="(/static/admin/css/base\.[0-9a-f]+\.css)"', page)
    if not stylesheet:
        print("FAILED: the admin does not link its hashed stylesheet")
        sys.exit(1)
    served = client.get(stylesheet.group(1))
    if served.status_code != 200:
        print(f"FAILED: {stylesheet.group(1)} answered {served.status_code}")
        sys.exit(1)
    print("PRODUCTION OK")


if __name__ == "__main__":
    main()
