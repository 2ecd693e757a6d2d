from django.conf import settings
from rest_framework import serializers

from config.serializers import StrictInputSerializer, api_datetime, api_uuid
from documents.serializers import DocumentFilterInputSerializer

from .formats import FORMAT_CHOICES
from .models import Summary


class CitationSourceSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text="Offset of the passage in the document's text (characters).")
    end = serializers.IntegerField()
    page = serializers.IntegerField(allow_null=True, help_text="The page it is on, when the ingestion kept pages.")


class CitationSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text="Offset of the summary sentence in `content` (characters).")
    end = serializers.IntegerField()
    sources = CitationSourceSerializer(many=True)


class SummaryOutputSerializer(serializers.ModelSerializer):
    document = serializers.UUIDField(source="document_id", read_only=True)
    template = serializers.UUIDField(source="template_id", read_only=True, allow_null=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)
    stale = serializers.BooleanField(read_only=True, default=False)
    citations = CitationSerializer(many=True, read_only=True)

    class Meta:
        model = Summary
        fields = [
            "id",
            "document",
            "job",
            "template",
            "template_name",
            "content",
            "provider",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "latency_ms",
            "status",
            "stale",
            "strategy",
            "chunk_count",
            "truncated",
            "prompt_sha256",
            "parameters",
            "citations",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


def summary_output(summary: Summary) -> dict:
    """What SummaryOutputSerializer (the documented shape) gives, without building a DRF
    ModelSerializer's fields each time: it runs for every summary.created event and every
    row of a summary list. `stale` is the list's annotation (False for a new summary)."""
    return {
        "id": str(summary.pk),
        "document": api_uuid(summary.document_id),
        "job": api_uuid(summary.job_id),
        "template": api_uuid(summary.template_id),
        "template_name": summary.template_name,
        "content": summary.content,
        "provider": summary.provider,
        "model": summary.model,
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "latency_ms": summary.latency_ms,
        "status": summary.status,
        "stale": getattr(summary, "stale", False),
        "strategy": summary.strategy,
        "chunk_count": summary.chunk_count,
        "truncated": summary.truncated,
        "prompt_sha256": summary.prompt_sha256,
        "parameters": summary.parameters,
        "citations": summary.citations,
        "created_by": api_uuid(summary.created_by_id),
        "created_at": api_datetime(summary.created_at),
    }


class SummarizeOptionsSerializer(StrictInputSerializer):
    max_words = serializers.IntegerField(
        min_value=10, max_value=2000, required=False, help_text="Default: the template's `default_max_words`."
    )
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    format = serializers.ChoiceField(
        choices=FORMAT_CHOICES, required=False, help_text="Default: the template's `format`."
    )
    stream = serializers.BooleanField(
        required=False,
        help_text="LLM providers: send `summary.delta` events with the text so far while the answer arrives.",
    )
    citation_markers = serializers.BooleanField(
        required=False, help_text="LLM providers: keep the [n] paragraph markers in `content` (default: removed)."
    )


class SummarizeInputSerializer(StrictInputSerializer):
    template_id = serializers.UUIDField(required=False, allow_null=True)
    provider = serializers.CharField(max_length=32, required=False, allow_null=True)
    model = serializers.CharField(max_length=200, required=False, allow_null=True)
    options = SummarizeOptionsSerializer(required=False)


class _UUIDStringField(serializers.UUIDField):
    """A UUID written as a JSON string (DRF also takes integers)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class BatchDocumentIdsField(serializers.ListField):
    """Document ids, at most MAX_BATCH_DOCUMENTS (counted before each id is parsed)."""

    def __init__(self, **kwargs):
        super().__init__(child=_UUIDStringField(), allow_empty=False, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) > settings.MAX_BATCH_DOCUMENTS:
            raise serializers.ValidationError(
                f"A batch takes at most {settings.MAX_BATCH_DOCUMENTS} documents; {len(data)} were given.",
                code="batch_too_large",
            )
        return super().to_internal_value(data)


class SummarizeBatchInputSerializer(SummarizeInputSerializer):
    """POST /documents/summarize/: `document_ids` or `filter`, and what every summary uses."""

    document_ids = BatchDocumentIdsField(required=False)
    filter = DocumentFilterInputSerializer(required=False)

    def validate(self, attrs):
        if ("document_ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError(
                "Give either `document_ids` or `filter` (an empty filter takes every document).", code="invalid"
            )
        return attrs


class SummaryListQuerySerializer(serializers.Serializer):
    document = serializers.UUIDField(required=False)


class PublishInputSerializer(StrictInputSerializer):
    integration_id = serializers.UUIDField()
    target = serializers.JSONField(required=False, default=dict)


class UsageQuerySerializer(serializers.Serializer):
    """GET /api/v1/org/usage/: days (both included; by default this month so far), a grouping,
    and for admins one member."""

    MAX_DAYS = 366

    to = serializers.DateField(required=False)
    group_by = serializers.ChoiceField(choices=["day", "user", "model", "provider"], default="day")
    user = serializers.UUIDField(required=False, help_text="Admins: one member's usage.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False)  # a keyword in Python
        return fields

    def validate(self, attrs):
        from datetime import timedelta

        from django.utils import timezone

        today = timezone.localdate()
        end = attrs.get("to") or today
        start = attrs.get("from") or end.replace(day=1)
        if start > end:
            raise serializers.ValidationError({"from": "`from` must not be after `to`."})
        if (end - start) > timedelta(days=self.MAX_DAYS - 1):
            raise serializers.ValidationError({"from": f"At most {self.MAX_DAYS} days at a time."})
        return {**attrs, "from": start, "to": end}


class UsageRowSerializer(serializers.Serializer):
    day = serializers.DateField(required=False)
    user_id = serializers.UUIDField(required=False, allow_null=True)
    user_email = serializers.EmailField(required=False, allow_null=True)
    provider = serializers.CharField(required=False)
    model = serializers.CharField(required=False)
    calls = serializers.IntegerField()
    failed_calls = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=16, decimal_places=6)


class BudgetStatusSerializer(serializers.Serializer):
    month = serializers.CharField()
    scope = serializers.ChoiceField(choices=["organization", "user"])
    user_id = serializers.UUIDField(allow_null=True)
    token_budget = serializers.IntegerField(allow_null=True)
    tokens_spent = serializers.IntegerField()
    cost_budget = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    cost_spent = serializers.DecimalField(max_digits=16, decimal_places=6)


class UsageOutputSerializer(serializers.Serializer):
    to = serializers.DateField()
    group_by = serializers.CharField()
    results = UsageRowSerializer(many=True)
    totals = UsageRowSerializer()
    budgets = BudgetStatusSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField()
        return fields
