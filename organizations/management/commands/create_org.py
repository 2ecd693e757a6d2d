"""manage.py create_org "Acme" admin@acme.test [--password ...]

Creates an organization and its first admin (who can use the API and the
tenant-scoped Django admin). Without --password, the password is prompted for.
"""

import getpass

from django.core.management.base import BaseCommand, CommandError

from config.errors import PrecisError
from organizations import services


class Command(BaseCommand):
    help = "Create an organization and its first admin user."

    def add_arguments(self, parser):
        parser.add_argument("name", help="organization name")
        parser.add_argument("admin_email", help="email of the organization's first admin")
        parser.add_argument("--password", help="admin password (prompted for when omitted)")
        parser.add_argument("--admin-name", default="", help="display name of the admin")

    def handle(self, *args, **options):
        password = options["password"]
        if password is None:
            if not self._interactive():
                raise CommandError("No --password given and no terminal to prompt on.")
            password = getpass.getpass("Admin password: ")
            if password != getpass.getpass("Admin password (again): "):
                raise CommandError("The passwords do not match.")
        try:
            org, user = services.organization_create(
                name=options["name"],
                admin_email=options["admin_email"],
                admin_password=password,
                admin_name=options["admin_name"],
                verified=True,  # the operator vouches for the address
            )
        except PrecisError as exc:
            raise CommandError(f"{exc.attr or 'error'}: {exc.detail}") from None
        self.stdout.write(
            self.style.SUCCESS(f"Created organization {org.name!r} (slug {org.slug}) with admin {user.email}.")
        )

    @staticmethod
    def _interactive() -> bool:
        import sys

        return sys.stdin.isatty()
