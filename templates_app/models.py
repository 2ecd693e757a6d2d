"""Prompt templates: system templates (no org, shared read-only) and each org's own."""

from django.conf import settings
from django.db import models
from django_scopes import get_scope
from django_scopes.manager import DisabledQuerySet

from organizations.models import TenantModel
from summaries.formats import FORMAT_CHOICES


class TemplateManager(models.Manager):
    """Fail-closed like the other tenant managers, but also shows system templates.

    Inside `scope(org=X)`: the org's templates and the system ones (org NULL).
    Outside any scope a query raises, as with every tenant model.
    """

    def get_queryset(self):
        current = get_scope()
        if not current.get("_enabled", True):
            return super().get_queryset()
        if "org" not in current:  # any use (not .none()) raises ScopeError, as django-scopes does
            return DisabledQuerySet(self.model, using=self._db, missing_scopes={"org"})
        return super().get_queryset().filter(models.Q(org=current["org"]) | models.Q(org__isnull=True))


class Template(TenantModel):
    org = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    name = models.CharField(max_length=200, help_text="Unique in the organization; members pick templates by it.")
    description = models.TextField(blank=True, default="", help_text="What the template is for, shown to members.")
    body = models.TextField(
        help_text="The prompt. Placeholders: {{ document.title }}, {{ document.content }}, {{ document.language }}."
    )
    # The intent every provider honours (summaries.formats): the layout, the default length,
    # and what the built-in extractive summarizer should favour (it cannot read the body).
    format = models.CharField(
        max_length=16,
        choices=FORMAT_CHOICES,
        default="prose",
        help_text="How the summary is laid out: a paragraph, a bulleted list, or one or two sentences.",
    )
    default_max_words = models.PositiveIntegerField(
        default=150, help_text="The summary's length in words when a request does not say (10–2000)."
    )
    favour = models.JSONField(
        default=list,
        blank=True,
        help_text="What the built-in summarizer prefers: any of decisions, actions, dates, owners, numbers.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = TemplateManager()
    unscoped_objects = models.Manager()

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="template_unique_name_per_org"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(org__isnull=True), name="template_unique_system_name"
            ),
        ]
        indexes = [models.Index(fields=["org", "-created_at"], name="template_org_created")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_system(self) -> bool:
        return self.org_id is None
