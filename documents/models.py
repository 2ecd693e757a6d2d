"""Documents: the text an organization keeps and summarizes."""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from organizations.models import TenantModel


def document_upload_path(document: "Document", filename: str) -> str:
    # Per-org folders; the random part keeps two uploads of the same name apart.
    return f"documents/{document.org_id}/{document.id}/{filename}"


class Document(TenantModel):
    class Source(models.TextChoices):
        MANUAL = "manual", "Manual"
        UPLOAD = "upload", "Upload"
        URL = "url", "URL"

    title = models.CharField(max_length=500)
    content = models.TextField()
    content_type = models.CharField(max_length=100, default="text/plain")
    # manual | upload | url | <integration provider>; not a closed choice list on purpose
    source = models.CharField(max_length=32, default=Source.MANUAL)
    source_ref = models.CharField(max_length=1024, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    char_count = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=False)
    file = models.FileField(upload_to=document_upload_path, max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # PostgreSQL only (migration 0002): a trigger keeps it current on every insert and
    # update of title/content (title weight A, content weight B) and a GIN index serves
    # it. Always NULL on SQLite, where search falls back to a contains match.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta(TenantModel.Meta):
        indexes = [
            models.Index(fields=["org", "-created_at"], name="document_org_created"),
            models.Index(fields=["org", "title"], name="document_org_title"),
            models.Index(fields=["org", "source", "-created_at"], name="document_org_source_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "source", "source_ref"],
                condition=~models.Q(source_ref=""),
                name="document_unique_source_ref",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def file_name(self) -> str | None:
        return self.file.name.rsplit("/", 1)[-1] if self.file else None
