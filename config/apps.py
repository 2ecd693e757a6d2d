from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PrecisAdminConfig(AdminConfig):
    """django.contrib.admin with Precis' site (config.admin): its name, the org's dashboard."""

    default_site = "config.admin.PrecisAdminSite"


class PrecisConfig(AppConfig):
    """Project-wide wiring that belongs to no single app."""

    name = "config"
    label = "precis_config"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from .postgres import use_fast_timestamptz_loader

        connection_created.connect(use_fast_timestamptz_loader, dispatch_uid="precis-timestamptz")
