from django.apps import AppConfig


class SummariesConfig(AppConfig):
    name = "summaries"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs.scheduler import register_gate

        from .providers.ratelimit import scheduler_gate

        register_gate("llm", scheduler_gate)
