import json
import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.serializers import StrictInputSerializer, api_datetime, api_uuid

from .models import Document
from .services import MAX_METADATA_BYTES

_SOURCE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class MetadataField(serializers.JSONField):
    """A JSON object of bounded size (it is stored and returned as is)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.", code="invalid")
        if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > MAX_METADATA_BYTES:
            raise serializers.ValidationError(f"Must be at most {MAX_METADATA_BYTES} bytes of JSON.", code="too_large")
        return value


class DocumentErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class DocumentListOutputSerializer(serializers.ModelSerializer):
    excerpt = serializers.CharField(read_only=True)
    error = DocumentErrorSerializer(read_only=True, allow_null=True)
    summary_count = serializers.IntegerField(read_only=True)
    file_name = serializers.CharField(read_only=True, allow_null=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "excerpt",
            "content_type",
            "source",
            "source_ref",
            "metadata",
            "char_count",
            "sha256",
            "file_name",
            "status",
            "error",
            "language",
            "created_by",
            "created_at",
            "updated_at",
            "summary_count",
        ]
        read_only_fields = fields


def document_list_row(row: dict) -> dict:
    """One list row from `selectors.document_list_values(...)` — what DocumentListOutputSerializer
    (the documented shape) gives for a model instance, without building a model instance and a
    serializer per row (the list's hot loop; docs/benchmarks.md)."""
    file = row["file"]
    return {
        "id": str(row["id"]),
        "title": row["title"],
        "excerpt": row["excerpt"],
        "content_type": row["content_type"],
        "source": row["source"],
        "source_ref": row["source_ref"],
        "metadata": row["metadata"],
        "char_count": row["char_count"],
        "sha256": row["sha256"],
        "file_name": (row["original_filename"] or file.rsplit("/", 1)[-1]) if file else None,
        "status": row["status"],
        "error": row["error"],
        "language": row["language"],
        "created_by": api_uuid(row["created_by_id"]),
        "created_at": api_datetime(row["created_at"]),
        "updated_at": api_datetime(row["updated_at"]),
        "summary_count": row["summary_count"],
    }


class DocumentSummarySerializer(serializers.Serializer):
    """A summary as the document detail shows it (the full one: /api/v1/summaries/{id}/)."""

    id = serializers.UUIDField()
    template = serializers.UUIDField(source="template_id", allow_null=True)
    template_name = serializers.CharField()
    content = serializers.CharField()
    provider = serializers.CharField()
    model = serializers.CharField()
    status = serializers.CharField()
    stale = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_stale(self, summary) -> bool:
        return summary.source_sha256 != self.context["document"].sha256


class DocumentDetailOutputSerializer(serializers.ModelSerializer):
    file_name = serializers.CharField(read_only=True, allow_null=True)
    error = DocumentErrorSerializer(read_only=True, allow_null=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)
    summary_count = serializers.SerializerMethodField()
    latest_summary = serializers.SerializerMethodField()
    summaries = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "content",
            "content_type",
            "source",
            "source_ref",
            "metadata",
            "char_count",
            "sha256",
            "file_name",
            "status",
            "error",
            "language",
            "created_by",
            "created_at",
            "updated_at",
            "summary_count",
            "latest_summary",
            "summaries",
        ]
        read_only_fields = fields

    def _summaries(self, document: Document) -> list[dict]:
        if not hasattr(document, "_summary_rows"):
            rows = document.summaries.order_by("-created_at") if document.pk else []
            document._summary_rows = [DocumentSummarySerializer(s, context={"document": document}).data for s in rows]
        return document._summary_rows

    @extend_schema_field(DocumentSummarySerializer(many=True))
    def get_summaries(self, document: Document) -> list[dict]:
        return self._summaries(document)

    def get_summary_count(self, document: Document) -> int:
        return len(self._summaries(document))

    @extend_schema_field(DocumentSummarySerializer(allow_null=True))
    def get_latest_summary(self, document: Document) -> dict | None:
        summaries = self._summaries(document)
        return summaries[0] if summaries else None


class _DocumentEchoMixin(StrictInputSerializer):
    """Accepts (and ignores) the output fields a client may send back; `org` and
    anything else unknown is still refused."""

    echo_fields = (
        "id",
        "excerpt",
        "content_type",
        "char_count",
        "sha256",
        "file_name",
        "status",
        "error",
        "language",
        "created_by",
        "created_at",
        "updated_at",
        "summary_count",
        "latest_summary",
        "summaries",
    )

    def get_fields(self):
        fields = super().get_fields()
        for name in self.echo_fields:
            fields.setdefault(name, serializers.JSONField(read_only=True))
        return fields


class DocumentCreateInputSerializer(_DocumentEchoMixin):
    title = serializers.CharField(max_length=500)
    content = serializers.CharField(trim_whitespace=False)
    source = serializers.RegexField(_SOURCE, required=False, default=Document.Source.MANUAL, max_length=32)
    source_ref = serializers.CharField(max_length=1024, required=False, default="", allow_blank=True)
    metadata = MetadataField(required=False, default=dict)


class DocumentUploadInputSerializer(StrictInputSerializer):
    """A multipart upload: the file, an optional title, and optionally what to summarize it
    with once its text is ready (`summarize`: a JSON object, as the summarize endpoint takes)."""

    file = serializers.FileField(allow_empty_file=False, max_length=None)
    title = serializers.CharField(max_length=500, required=False, allow_blank=True)
    summarize = serializers.JSONField(required=False, binary=True)


class DocumentAcceptedSerializer(serializers.Serializer):
    """202 to an upload: the document (status `processing`), its ingest job, and the summarize
    job when the upload asked for one."""

    document = DocumentDetailOutputSerializer()
    job = serializers.DictField(help_text="The ingest job, as GET /api/v1/jobs/{id}/ shows it.")
    summarize_job = serializers.DictField(allow_null=True, help_text="The summarize job, or null.")


class DocumentUpdateInputSerializer(_DocumentEchoMixin):
    title = serializers.CharField(max_length=500)
    content = serializers.CharField(trim_whitespace=False)
    metadata = MetadataField(required=False)
    source = serializers.CharField(read_only=True)
    source_ref = serializers.CharField(read_only=True)


ORDERINGS = {
    "created_at": ("created_at",),
    "-created_at": ("-created_at",),
    "title": ("title",),
    "-title": ("-title",),
}


class DocumentFilterFields(serializers.Serializer):
    """Which documents: the list's filters, also a batch's selection."""

    search = serializers.CharField(required=False, allow_blank=True, max_length=500)
    source = serializers.RegexField(_SOURCE, required=False, max_length=32)
    language = serializers.RegexField(r"^[a-z]{2,3}$", required=False, max_length=3)
    status = serializers.ChoiceField(choices=Document.Status.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class DocumentListQuerySerializer(DocumentFilterFields):
    """Query parameters of the list; unknown ones (cursor, page_size) are left alone."""

    ordering = serializers.ChoiceField(choices=sorted(ORDERINGS), required=False)


class DocumentFilterInputSerializer(StrictInputSerializer, DocumentFilterFields):
    """The filters in a JSON body (a batch's `filter`); an empty one selects every document."""
