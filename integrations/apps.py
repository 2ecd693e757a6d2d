from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .crypto import check_keys

        check_keys()  # a missing/invalid FIELD_ENCRYPTION_KEYS stops start-up with a clear message
