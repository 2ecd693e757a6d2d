"""manage.py ensure_demo — used by `make run`.

On first start, creates the "Demo" organization and its admin with a random
password kept in var/demo-login.txt (git-ignored); on every start, prints how
to log in. Does nothing to an existing database beyond printing.
"""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from organizations import services

DEMO_EMAIL = "admin@demo.precis.test"


class Command(BaseCommand):
    help = "Create the demo organization and admin on first start, then print the login."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="where the server listens")

    def handle(self, *args, **options):
        login_file = settings.VAR_DIR / "demo-login.txt"
        if not User.objects.filter(email=DEMO_EMAIL).exists():
            password = secrets.token_urlsafe(12)
            services.organization_create(
                name="Demo",
                admin_email=DEMO_EMAIL,
                admin_password=password,
                admin_name="Demo Admin",
                verified=True,
            )
            login_file.parent.mkdir(parents=True, exist_ok=True)
            login_file.write_text(password + "\n")
            login_file.chmod(0o600)
        password = (
            login_file.read_text().strip()
            if login_file.exists()
            else "(set when the demo was created; see var/demo-login.txt)"
        )
        url = options["url"]
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Precis is starting (embedded mode: SQLite, in-process tasks, local summarizer).",
                    f"  Log in:  {DEMO_EMAIL} / {password}",
                    f"  Admin:   {url}/admin/",
                    f"  API:     {url}/api/v1/  (docs: {url}/api/v1/docs/)",
                    f"  Token:   curl -s -X POST {url}/api/v1/auth/login/ -H 'Content-Type: application/json' "
                    f'-d \'{{"email": "{DEMO_EMAIL}", "password": "{password}"}}\'',
                    "",
                ]
            )
        )
