"""Summary API, and POST /documents/{id}/summarize/ which starts a summarize job."""

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.response import Response

from config.schema import ConflictErrorResponseSerializer, ServiceUnavailableErrorResponseSerializer
from documents.models import Document
from jobs.batches import batch_fail
from jobs.serializers import BatchOutputSerializer, JobOutputSerializer
from jobs.views import JobStartingView, batch_detail, job_start_response, start_or_fail
from organizations.idempotency import fingerprint_of, idempotent
from organizations.tenancy import TenantViewSetMixin

from . import selectors, services
from .models import Summary
from .serializers import (
    PublishInputSerializer,
    SummarizeBatchInputSerializer,
    SummarizeInputSerializer,
    SummaryListQuerySerializer,
    SummaryOutputSerializer,
    UsageOutputSerializer,
    UsageQuerySerializer,
    summary_output,
)

BROKER_DOWN = "The job queue (Redis broker) is unavailable; the batch was not started. Try again shortly."


class DocumentSummarizeView(JobStartingView, TenantViewSetMixin, generics.GenericAPIView):
    """POST /api/v1/documents/{id}/summarize/ → 202 {job}."""

    model = Document
    serializer_class = SummarizeInputSerializer

    @extend_schema(
        request=SummarizeInputSerializer,
        responses={
            202: JobOutputSerializer,
            409: ConflictErrorResponseSerializer,
            503: ServiceUnavailableErrorResponseSerializer,
        },
    )
    def post(self, request, *args, **kwargs):
        document = self.get_object()
        data = SummarizeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        return job_start_response(
            request,
            lambda: services.summary_request(org=request.org, user=request.user, document=document, **fields),
            scope=f"documents.summarize:{document.pk}",
            fingerprint=fingerprint_of(fields),
        )


class DocumentBatchSummarizeView(JobStartingView, TenantViewSetMixin, generics.GenericAPIView):
    """POST /api/v1/documents/summarize/ → 202 {batch}: one summarize job per selected document."""

    model = Document
    serializer_class = SummarizeBatchInputSerializer

    @extend_schema(
        operation_id="documents_summarize_batch",
        request=SummarizeBatchInputSerializer,
        responses={
            202: BatchOutputSerializer,
            409: ConflictErrorResponseSerializer,
            503: ServiceUnavailableErrorResponseSerializer,
        },
    )
    def post(self, request, *args, **kwargs):
        data = SummarizeBatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)

        def create() -> Response:
            with transaction.atomic():
                batch = services.summary_batch_request(org=request.org, user=request.user, **fields)
            start_or_fail(lambda: batch_fail(batch=batch, code="broker_unavailable", detail=BROKER_DOWN))
            return Response(batch_detail(batch), status=status.HTTP_202_ACCEPTED)

        return idempotent(request, scope="documents.summarize-batch", fingerprint=fingerprint_of(fields), create=create)


class SummaryPublishView(JobStartingView, TenantViewSetMixin, generics.GenericAPIView):
    """POST /api/v1/summaries/{id}/publish/ {integration_id, target} → 202 {job}."""

    model = Summary
    serializer_class = PublishInputSerializer

    @extend_schema(
        request=PublishInputSerializer,
        responses={202: JobOutputSerializer, 503: ServiceUnavailableErrorResponseSerializer},
    )
    def post(self, request, *args, **kwargs):
        summary = self.get_object()
        data = PublishInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        return job_start_response(
            request,
            lambda: services.summary_publish_request(org=request.org, user=request.user, summary=summary, **fields),
            scope=f"summaries.publish:{summary.pk}",
            fingerprint=fingerprint_of(fields),
        )


@extend_schema_view(
    list=extend_schema(parameters=[SummaryListQuerySerializer]), destroy=extend_schema(responses={204: None})
)
class SummaryViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    model = Summary
    serializer_class = SummaryOutputSerializer

    def refine_queryset(self, queryset):
        return selectors.with_stale(queryset)

    def list(self, request, *args, **kwargs):
        params = SummaryListQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        queryset = self.get_queryset()
        if "document" in params.validated_data:
            queryset = queryset.filter(document_id=params.validated_data["document"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([summary_output(summary) for summary in page])

    def perform_destroy(self, instance: Summary) -> None:
        services.summary_delete(summary=instance, user=self.request.user)


class UsageView(generics.GenericAPIView):
    """GET /api/v1/org/usage/?from=&to=&group_by=day|user|model|provider — LLM calls and
    tokens and their cost, with this month's budgets. Admins see the organization (or one
    member's with `user=`); members see their own."""

    serializer_class = UsageOutputSerializer

    @extend_schema(parameters=[UsageQuerySerializer], responses={200: UsageOutputSerializer})
    def get(self, request):
        from accounts.models import Role

        from . import usage

        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        admin = request.user.role == Role.ADMIN
        user_id = params.get("user") if admin else request.user.pk
        body = usage.report(
            org_id=request.org.pk, start=params["from"], end=params["to"], group_by=params["group_by"], user_id=user_id
        )
        # The organization's budget, and the member's own (or the one an admin asked about).
        body["budgets"] = usage.month_status(org_id=request.org.pk, user_id=user_id)
        return Response(body)
