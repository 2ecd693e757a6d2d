from rest_framework import serializers

from .models import Job


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class JobOutputSerializer(serializers.ModelSerializer):
    """The job as the API and the realtime events show it (no Celery internals)."""

    document = serializers.UUIDField(source="document_id", read_only=True, allow_null=True)
    summary = serializers.UUIDField(source="summary_id", read_only=True, allow_null=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "document",
            "summary",
            "result",
            "error",
            "attempts",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_error(self, job: Job) -> dict | None:
        if not job.error:
            return None
        return {"code": job.error.get("code", "error"), "detail": job.error.get("detail", "")}


class JobListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Job.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=Job.Kind.choices, required=False)
    all = serializers.BooleanField(required=False, default=False)
