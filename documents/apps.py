from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs.runtime import jobs_starting
        from jobs.scheduler import register_gate

        from .selectors import ready_documents_gate

        for queue in ("llm", "summaries"):  # summaries wait for their document's text
            register_gate(queue, ready_documents_gate)
        jobs_starting.connect(_warm_sandbox, dispatch_uid="documents.warm_sandbox")


def _warm_sandbox(sender, queues, **kwargs) -> None:
    """Where ingest jobs run, the first file does not wait for a reader to start."""
    if "ingest" in queues:
        from . import sandbox

        sandbox.warm()
