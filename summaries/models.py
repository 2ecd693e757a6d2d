"""Summaries: the output of a summarize job, with full provenance."""

from django.conf import settings
from django.db import models

from organizations.models import TenantModel


class Summary(TenantModel):
    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        TRUNCATED = "truncated", "Truncated"

    class Strategy(models.TextChoices):
        SINGLE = "single", "Single call"
        MAP_REDUCE = "map_reduce", "Map-reduce over chunks"

    document = models.ForeignKey("documents.Document", on_delete=models.CASCADE, related_name="summaries")
    # One summary per job: a redelivered task can never write a second one.
    job = models.OneToOneField("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    template = models.ForeignKey(
        "templates_app.Template", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    template_name = models.CharField(max_length=200, blank=True, default="")
    content = models.TextField()
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=200, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.SINGLE)
    chunk_count = models.PositiveIntegerField(default=1)
    truncated = models.BooleanField(default=False)
    # The document's sha256 when summarized: a later content change makes the summary stale.
    source_sha256 = models.CharField(max_length=64)
    prompt_sha256 = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict, blank=True)
    # Where each sentence of `content` comes from (summaries.citations): a list of
    # {"start", "end", "sources": [{"start", "end", "page"}]}, offsets into `content` and
    # into the document's text as it was summarized (see `source_sha256`).
    citations = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta(TenantModel.Meta):
        verbose_name_plural = "summaries"
        indexes = [
            models.Index(fields=["org", "-created_at"], name="summary_org_created"),
            models.Index(fields=["document", "-created_at"], name="summary_document_created"),
        ]

    def __str__(self) -> str:
        return f"{self.template_name or 'summary'} of {self.document_id}"


class LLMCall(TenantModel):
    """One call to a provider (summaries.usage): who, what, how many tokens, what it cost."""

    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=200, blank=True, default="")
    stage = models.CharField(max_length=16, default="single")  # single, map or reduce
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=64, default="ok")  # "ok" or the error's code
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta(TenantModel.Meta):
        indexes = [models.Index(fields=["org", "-created_at"], name="llmcall_org_created")]

    def __str__(self) -> str:
        return f"{self.provider} call ({self.outcome})"


class UsageDay(TenantModel):
    """The calls of one day, one user, one provider and model, added up as they are recorded."""

    day = models.DateField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user_key = models.CharField(max_length=36, default="")  # the user's id, "" for none (unique with NULLs anywhere)
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=200, blank=True, default="")
    calls = models.PositiveIntegerField(default=0)
    failed_calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["org", "day", "user_key", "provider", "model"], name="usageday_unique")
        ]
        indexes = [models.Index(fields=["org", "day"], name="usageday_org_day")]

    def __str__(self) -> str:
        return f"usage {self.day} {self.provider}"


class BudgetCounter(TenantModel):
    """What an organization (user=None) or one of its users spent this month against its
    budget, reservations of calls in flight included: the one row every spend of the
    month updates, so two workers cannot both spend the last tokens (summaries.usage)."""

    month = models.DateField()  # its first day
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    user_key = models.CharField(max_length=36, default="")  # the user's id, "" for the organization's row
    tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    # The highest threshold (80, 100) already announced this month, per kind.
    alerted_tokens = models.PositiveSmallIntegerField(default=0)
    alerted_cost = models.PositiveSmallIntegerField(default=0)

    class Meta(TenantModel.Meta):
        constraints = [models.UniqueConstraint(fields=["org", "month", "user_key"], name="budgetcounter_unique")]

    def __str__(self) -> str:
        return f"budget counter {self.month}"
