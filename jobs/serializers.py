from rest_framework import serializers

from config.serializers import api_datetime, api_uuid

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


def job_output(job: Job) -> dict:
    """What JobOutputSerializer (the documented shape) gives, without building a DRF
    ModelSerializer's fields for every job — it runs for each of a job's events and
    each job of a list."""
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "document": api_uuid(job.document_id),
        "summary": api_uuid(job.summary_id),
        "result": job.result,
        "error": {"code": job.error.get("code", "error"), "detail": job.error.get("detail", "")} if job.error else None,
        "attempts": job.attempts,
        "created_by": api_uuid(job.created_by_id),
        "created_at": api_datetime(job.created_at),
        "started_at": api_datetime(job.started_at),
        "finished_at": api_datetime(job.finished_at),
    }


class JobListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Job.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=Job.Kind.choices, required=False)
    all = serializers.BooleanField(required=False, default=False)
