"""Background jobs: the PostgreSQL row is the source of truth, not Celery's state."""

from django.conf import settings
from django.db import models

from organizations.models import TenantModel


class Job(TenantModel):
    class Kind(models.TextChoices):
        SUMMARIZE = "summarize", "Summarize"
        IMPORT = "import", "Import"
        PUBLISH = "publish", "Publish"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    document = models.ForeignKey(
        "documents.Document", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    summary = models.ForeignKey("summaries.Summary", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # What to do (template, provider, model, options, ...), as the request gave it.
    payload = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)  # {"code": ..., "detail": ...}
    queue = models.CharField(max_length=32, default="default")
    celery_task_id = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # The running attempt's claim: a token per attempt and a lease its worker renews.
    lease_token = models.CharField(max_length=36, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        indexes = [
            models.Index(fields=["org", "created_by", "-created_at"], name="job_org_user_created"),
            models.Index(fields=["org", "-created_at"], name="job_org_created"),
            models.Index(
                fields=["status", "lease_expires_at"],
                name="job_active_lease",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
