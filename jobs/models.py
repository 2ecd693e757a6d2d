"""Background jobs: the PostgreSQL row is the source of truth, not Celery's state.

A job waits in its table until the scheduler (jobs.scheduler) hands it to a
worker: `dispatched_at` is NULL until then. Batches group the jobs one request
started for many documents.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from organizations.models import TenantModel


class Batch(TenantModel):
    """Jobs of one kind started together for many documents (`POST /documents/summarize/`).

    Its counts and progress are read from its jobs; the row holds what was asked
    and whether the batch is still running.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=16, default="summarize")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    # What every job of the batch does (template, provider, model, options) and how the
    # documents were chosen (ids or a filter), as the request gave it.
    payload = models.JSONField(default=dict, blank=True)
    selection = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    # batch.progress events are throttled: when the last one went out, and whether a
    # change since then is still to be told (the scheduler's tick sends it).
    progress_sent_at = models.DateTimeField(null=True, blank=True)
    progress_pending = models.BooleanField(default=False)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "batches"
        indexes = [
            models.Index(fields=["org", "created_by", "-created_at"], name="batch_org_user_created"),
            models.Index(fields=["org", "-created_at"], name="batch_org_created"),
            models.Index(
                fields=["progress_sent_at"], name="batch_progress_pending", condition=Q(progress_pending=True)
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.id} ({self.status}, {self.total} jobs)"


class Job(TenantModel):
    class Kind(models.TextChoices):
        SUMMARIZE = "summarize", "Summarize"
        IMPORT = "import", "Import"
        PUBLISH = "publish", "Publish"
        INGEST = "ingest", "Ingest"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.IntegerChoices):
        """Within one organization, lower goes first: a person waiting before a batch."""

        INTERACTIVE = 0, "Interactive"
        BATCH = 10, "Batch"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    document = models.ForeignKey(
        "documents.Document", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    summary = models.ForeignKey("summaries.Summary", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    batch = models.ForeignKey(Batch, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.INTERACTIVE)
    # What to do (template, provider, model, options, ...), as the request gave it.
    payload = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)  # {"code": ..., "detail": ...}
    queue = models.CharField(max_length=32, default="default")
    attempts = models.PositiveSmallIntegerField(default=0)
    # Failed LLM calls retried so far, over all attempts: one budget per job (LLM_MAX_RETRIES).
    retries = models.PositiveSmallIntegerField(default=0)
    # The running attempt's claim: a token per attempt and a lease its worker renews, and
    # the process holding it (jobs.holders: whether it still beats).
    lease_token = models.CharField(max_length=36, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_holder = models.CharField(max_length=200, blank=True, default="")
    # When the scheduler handed the job to a worker (NULL: still waiting), and the
    # earliest moment it may be handed over (a retry's delay).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
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
                condition=Q(status__in=["queued", "running"]),
            ),
            # The scheduler's two questions: who is waiting, and who holds a slot.
            models.Index(
                fields=["queue", "org", "priority", "created_at"],
                name="job_waiting",
                condition=Q(status="queued", dispatched_at__isnull=True),
            ),
            models.Index(
                fields=["queue", "org"],
                name="job_in_flight",
                condition=Q(status="running") | Q(status="queued", dispatched_at__isnull=False),
            ),
            models.Index(fields=["batch", "status"], name="job_batch_status"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
