from rest_framework import serializers

from config.serializers import api_datetime, api_uuid

from .models import Batch, Job


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class JobOutputSerializer(serializers.ModelSerializer):
    """The job as the API and the realtime events show it (no Celery internals)."""

    document = serializers.UUIDField(source="document_id", read_only=True, allow_null=True)
    summary = serializers.UUIDField(source="summary_id", read_only=True, allow_null=True)
    batch = serializers.UUIDField(source="batch_id", read_only=True, allow_null=True)
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
            "batch",
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
        "batch": api_uuid(job.batch_id),
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
    batch = serializers.UUIDField(required=False)
    all = serializers.BooleanField(required=False, default=False)


class BatchCountsSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class BatchOutputSerializer(serializers.Serializer):
    """A batch as the API and its events show it (jobs.batches.batch_output); `jobs` (its
    jobs' ids, in document order) only in the detail and the 202 that creates it."""

    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Job.Kind.choices)
    status = serializers.ChoiceField(choices=Batch.Status.choices)
    total = serializers.IntegerField()
    counts = BatchCountsSerializer()
    progress = serializers.IntegerField(min_value=0, max_value=100, help_text="Finished jobs, in percent.")
    template_id = serializers.UUIDField()
    provider = serializers.CharField()
    model = serializers.CharField(allow_null=True)
    options = serializers.DictField()
    selection = serializers.DictField(help_text="`{document_ids}` or `{filter}`, as the request chose them.")
    created_by = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    jobs = serializers.ListField(child=serializers.UUIDField(), required=False)


class BatchListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Batch.Status.choices, required=False)
    all = serializers.BooleanField(required=False, default=False)
