"""Job API: your jobs (admins: `?all=true` for the org's), one job, cancel; and what every
view that starts a job shares (`JobStartingView`, `job_start_response`)."""

from collections.abc import Callable

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.models import Role
from config.schema import ConflictErrorResponseSerializer, ErrorResponseSerializer
from organizations.idempotency import idempotent
from organizations.tenancy import TenantViewSetMixin

from . import services
from .dispatch import job_dispatch_or_fail
from .models import Job
from .serializers import JobListQuerySerializer, JobOutputSerializer, job_output


class JobStartingView:
    """Mixin for views that start a job: not wrapped in the request transaction, because the
    job row must be committed before its task is sent, and a broker outage must still be
    answered with a 503 after marking that job failed (see config.exceptions)."""

    atomic_request = False

    @classmethod
    def as_view(cls, *args, **kwargs):
        return transaction.non_atomic_requests(super().as_view(*args, **kwargs))


def job_start_response(request, create_job: Callable[[], Job], *, scope: str, fingerprint: str) -> Response:
    """Create a job in its own transaction, dispatch it, answer 202 {job} (503 if the broker is
    down); an Idempotency-Key replays the first answer."""

    def create() -> Response:
        with transaction.atomic():
            job = create_job()
        job_dispatch_or_fail(job)
        # The job as created (queued): a worker may already have moved it on, which its events tell.
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)

    return idempotent(request, scope=scope, fingerprint=fingerprint, create=create)


@extend_schema_view(
    list=extend_schema(
        parameters=[JobListQuerySerializer],
        responses={200: JobOutputSerializer(many=True), 403: ErrorResponseSerializer},
    )
)
class JobViewSet(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    model = Job
    serializer_class = JobOutputSerializer

    def refine_queryset(self, queryset):
        """Members see their own jobs; admins see every job of the org (list: with ?all=true)."""
        user = self.request.user
        if user.role == Role.ADMIN and (self.action != "list" or self._params().get("all")):
            return queryset
        return queryset.filter(created_by=user)

    def _params(self) -> dict:
        if not hasattr(self, "_list_params"):
            params = JobListQuerySerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            self._list_params = params.validated_data
        return self._list_params

    def list(self, request, *args, **kwargs):
        params = self._params()
        if params.get("all") and request.user.role != Role.ADMIN:
            raise PermissionDenied("Only organization admins may list every job (?all=true).")
        queryset = self.get_queryset()
        if "status" in params:
            queryset = queryset.filter(status=params["status"])
        if "kind" in params:
            queryset = queryset.filter(kind=params["kind"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([job_output(job) for job in page])

    @extend_schema(request=None, responses={202: JobOutputSerializer, 409: ConflictErrorResponseSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        job = services.job_cancel(job=self.get_object())
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)
