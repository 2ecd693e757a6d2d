"""Documents: the text an organization keeps and summarizes."""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from organizations.models import TenantModel


def document_upload_path(document: "Document", filename: str) -> str:
    """Per-org folders, one per document; the stored name is generated (the original name,
    any length or script, lives in `original_filename`): `original` plus a short ASCII
    extension taken from the original name when it has one."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    suffix = f".{extension}" if extension.isascii() and extension.isalnum() and len(extension) <= 10 else ""
    return f"documents/{document.org_id}/{document.id}/original{suffix}"


class Document(TenantModel):
    class Source(models.TextChoices):
        MANUAL = "manual", "Manual"
        UPLOAD = "upload", "Upload"
        URL = "url", "URL"

    class Status(models.TextChoices):
        """A file's text is extracted in the background (jobs of kind `ingest`)."""

        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

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
    # The file's name as it came (upload, import); at most 255 bytes of UTF-8.
    original_filename = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    error = models.JSONField(null=True, blank=True)  # {"code", "detail"} when failed
    # ISO 639-1 code detected from the text (empty: unknown, or too little text).
    language = models.CharField(max_length=8, blank=True, default="")
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
            models.Index(fields=["org", "language", "-created_at"], name="document_org_language_created"),
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
        return (self.original_filename or self.file.name.rsplit("/", 1)[-1]) if self.file else None
