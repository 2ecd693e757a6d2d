"""Document API: list/search, create (JSON or upload), detail, update, delete."""

from __future__ import annotations

import hashlib

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from config.pagination import CursorPagination
from config.parsers import SafeMultiPartParser, StrictJSONParser
from config.schema import ConflictErrorResponseSerializer, PayloadTooLargeErrorResponseSerializer
from organizations.idempotency import fingerprint_of, idempotent
from organizations.tenancy import TenantViewSetMixin

from . import ingestion, selectors, services
from .models import Document
from .serializers import (
    ORDERINGS,
    DocumentAcceptedSerializer,
    DocumentCreateInputSerializer,
    DocumentDetailOutputSerializer,
    DocumentListOutputSerializer,
    DocumentListQuerySerializer,
    DocumentUpdateInputSerializer,
    DocumentUploadInputSerializer,
    document_list_row,
)
from .uploads import LimitedUploadHandler


class DocumentPagination(CursorPagination):
    """Cursor pagination whose ordering the view decides (validated `?ordering=`, or rank)."""

    def get_ordering(self, request, queryset, view):
        return view.list_ordering


_ERRORS = {409: ConflictErrorResponseSerializer, 413: PayloadTooLargeErrorResponseSerializer}


@extend_schema_view(
    list=extend_schema(parameters=[DocumentListQuerySerializer], responses=DocumentListOutputSerializer(many=True)),
    retrieve=extend_schema(responses=DocumentDetailOutputSerializer),
    destroy=extend_schema(responses={204: None}),
)
class DocumentViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    model = Document
    serializer_class = DocumentDetailOutputSerializer
    pagination_class = DocumentPagination
    parser_classes = [StrictJSONParser, SafeMultiPartParser]
    list_ordering: tuple[str, ...] = ("-created_at",)

    @classmethod
    def as_view(cls, actions=None, **initkwargs):
        view = super().as_view(actions, **initkwargs)
        if actions and actions.get("post") == "create":
            # The list route's POST commits as it goes: an upload's document and ingest job
            # are committed before a scheduling round hands the job out (503 if the broker
            # is down). Listing needs no transaction; the detail route stays atomic.
            view = transaction.non_atomic_requests(view)
        return view

    def list(self, request, *args, **kwargs):
        params = DocumentListQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        queryset = selectors.document_list_queryset(self.get_queryset(), search=query.get("search") or None)
        queryset = selectors.document_filter(
            queryset,
            source=query.get("source"),
            language=query.get("language"),
            status=query.get("status"),
            created_after=query.get("created_after"),
            created_before=query.get("created_before"),
        )
        if "ordering" in query:
            self.list_ordering = ORDERINGS[query["ordering"]]
        elif query.get("search") and selectors.uses_full_text_search():
            self.list_ordering = ("-rank",)
        page = self.paginate_queryset(selectors.document_list_values(queryset))
        return self.get_paginated_response([document_list_row(row) for row in page])

    @extend_schema(
        request={
            "application/json": DocumentCreateInputSerializer,
            "multipart/form-data": DocumentUploadInputSerializer,
        },
        responses={
            201: DocumentDetailOutputSerializer,
            202: DocumentAcceptedSerializer,
            **_ERRORS,
            415: OpenApiResponse(description="Unsupported file type"),
        },
    )
    def create(self, request, *args, **kwargs):
        if request.content_type.startswith("multipart/form-data"):
            # Must be in place before anything reads the body.
            request._request.upload_handlers = [LimitedUploadHandler(request._request)]
            return self._create_from_upload(request)
        data = DocumentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = {
            k: v
            for k, v in data.validated_data.items()
            if k in {"title", "content", "source", "source_ref", "metadata"}
        }

        def create() -> Response:
            with transaction.atomic():
                document = services.document_create(org=request.org, created_by=request.user, **fields)
            return Response(DocumentDetailOutputSerializer(document).data, status=status.HTTP_201_CREATED)

        return idempotent(request, scope="documents.create", fingerprint=fingerprint_of(fields), create=create)

    def _create_from_upload(self, request) -> Response:
        """202 {document, job, summarize_job}: the file is stored and its text is extracted in
        the background (the document is `processing` until then)."""
        from jobs.serializers import job_output
        from jobs.views import start_or_fail
        from summaries.serializers import SummarizeInputSerializer
        from summaries.services import summary_request

        data = DocumentUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload, title = data.validated_data["file"], data.validated_data.get("title") or None
        summarize = None
        if "summarize" in data.validated_data:
            options = SummarizeInputSerializer(data=data.validated_data["summarize"])
            if not options.is_valid():
                raise ValidationError({"summarize": options.errors})
            summarize = dict(options.validated_data)
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)

        def create() -> Response:
            with transaction.atomic():
                document, _outcome, job = ingestion.document_accept_file(
                    org=request.org,
                    created_by=request.user,
                    stream=upload,
                    filename=upload.name or "",
                    source=Document.Source.UPLOAD,
                    title=title,
                )
                summarize_job = (
                    summary_request(org=request.org, user=request.user, document=document, **summarize)
                    if summarize is not None
                    else None
                )
            start_or_fail(lambda: services.document_delete_unstarted(document=document))
            body = {
                "document": DocumentDetailOutputSerializer(document).data,
                "job": job_output(job),
                "summarize_job": job_output(summarize_job) if summarize_job else None,
            }
            return Response(body, status=status.HTTP_202_ACCEPTED)

        fingerprint = fingerprint_of(upload.name, title, digest.hexdigest(), summarize)
        return idempotent(request, scope="documents.create", fingerprint=fingerprint, create=create)

    @extend_schema(request=DocumentUpdateInputSerializer, responses={200: DocumentDetailOutputSerializer, **_ERRORS})
    def update(self, request, *args, **kwargs):
        return self._update(request, partial=False)

    @extend_schema(request=DocumentUpdateInputSerializer, responses={200: DocumentDetailOutputSerializer, **_ERRORS})
    def partial_update(self, request, *args, **kwargs):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool) -> Response:
        document = self.get_object()
        data = DocumentUpdateInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in {"title", "content", "metadata"}}
        document = services.document_update(document=document, **fields)
        return Response(DocumentDetailOutputSerializer(document).data)

    def perform_destroy(self, instance: Document) -> None:
        services.document_delete(document=instance)
