"""Job API: your jobs (admins: `?all=true` for the org's), one job, cancel; and what every
view that starts a job shares (`JobStartingView`, `job_start_response`)."""

import logging
from collections.abc import Callable

from django.db import DatabaseError, transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.models import Role
from config.schema import ConflictErrorResponseSerializer, ErrorResponseSerializer
from organizations.idempotency import idempotency_remember, idempotent
from organizations.tenancy import TenantViewSetMixin
from realtime import events

from . import batches, services
from .models import Batch, Job
from .scheduler import BrokerUnavailable, schedule
from .serializers import (
    BatchListQuerySerializer,
    BatchOutputSerializer,
    JobListQuerySerializer,
    JobOutputSerializer,
    job_output,
)

logger = logging.getLogger(__name__)


class JobStartingView:
    """Mixin for views that start jobs: not wrapped in the request transaction, because the
    job rows must be committed before a scheduling round hands them out, and a broker
    outage must still be answered with a 503 after marking those jobs failed."""

    atomic_request = False

    @classmethod
    def as_view(cls, *args, **kwargs):
        return transaction.non_atomic_requests(super().as_view(*args, **kwargs))


def job_start_response(request, create_job: Callable[[], Job], *, scope: str, fingerprint: str) -> Response:
    """Create a job in its own transaction, run a scheduling round, answer 202 {job}; an
    Idempotency-Key replays the first answer.

    Once that transaction has committed the job exists and will run, so the answer is 202
    whatever fails afterwards, except a broker outage that marked the job failed (503). The
    transaction therefore holds all the answer relies on: the job.queued event (stored in it)
    and the Idempotency-Key record's answer, so a database gone right after the commit loses
    neither, and a retry replays this 202 instead of creating a second job.
    """
    accepted: list[Response] = []

    def create() -> Response:
        with transaction.atomic(), events.stored_in_transaction():
            job = create_job()
            # The job as created (queued): a worker may already have moved it on, which its events tell.
            response = Response(job_output(job), status=status.HTTP_202_ACCEPTED)
            idempotency_remember(request, scope=scope, response=response)
        start_or_fail(
            lambda: services.job_fail(
                job_id=job.pk, code="broker_unavailable", detail=str(BrokerUnavailable.default_detail)
            )
        )
        accepted.append(response)
        return response

    try:
        return idempotent(request, scope=scope, fingerprint=fingerprint, create=create)
    except DatabaseError:
        if not accepted:
            raise
        # Only the Idempotency-Key record's own update came after: its answer is already stored.
        logger.warning("database unavailable after job %s was accepted; answering 202", accepted[0].data["id"])
        return accepted[0]


def start_or_fail(fail: Callable[[], object]) -> None:
    """A scheduling round for freshly committed jobs. The round may leave them waiting for a
    free slot (202 all the same); if the broker is unreachable, `fail()` marks them failed
    (`broker_unavailable`) and the request answers 503, so no job is left queued that its
    client believes was refused.

    The jobs are committed: a round that fails on the database (a blip after the commit) is
    logged and they wait for the next round (beat's tick; one marked handed over but never
    sent, for the reaper's redispatch). If `fail()` cannot reach the database either, they
    stay queued and run once the broker is back, so the request answers as if accepted.
    """
    try:
        schedule()
    except BrokerUnavailable:
        try:
            fail()
        except DatabaseError:
            logger.warning("broker and database unavailable: the new jobs wait for a later round", exc_info=True)
            return
        raise
    except DatabaseError:
        logger.warning("scheduling round failed on the database: the new jobs wait for the next", exc_info=True)


class OwnOrAllMixin:
    """Members see what they created; admins see the whole org's (lists: with ?all=true).
    A viewset's `refine_queryset` calls `own_or_all` (TenantViewSetMixin comes first)."""

    query_serializer_class: type

    def own_or_all(self, queryset):
        user = self.request.user
        if user.role == Role.ADMIN and (self.action != "list" or self._params().get("all")):
            return queryset
        return queryset.filter(created_by=user)

    def _params(self) -> dict:
        if not hasattr(self, "_list_params"):
            params = self.query_serializer_class(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            self._list_params = params.validated_data
        return self._list_params

    def _check_all(self, request) -> None:
        if self._params().get("all") and request.user.role != Role.ADMIN:
            raise PermissionDenied("Only organization admins may list the whole organization's (?all=true).")


@extend_schema_view(
    list=extend_schema(
        parameters=[JobListQuerySerializer],
        responses={200: JobOutputSerializer(many=True), 403: ErrorResponseSerializer},
    )
)
class JobViewSet(
    TenantViewSetMixin, OwnOrAllMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    model = Job
    serializer_class = JobOutputSerializer
    query_serializer_class = JobListQuerySerializer

    def refine_queryset(self, queryset):
        return self.own_or_all(queryset)

    def list(self, request, *args, **kwargs):
        self._check_all(request)
        params = self._params()
        queryset = self.get_queryset()
        if "status" in params:
            queryset = queryset.filter(status=params["status"])
        if "kind" in params:
            queryset = queryset.filter(kind=params["kind"])
        if "batch" in params:
            queryset = queryset.filter(batch_id=params["batch"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([job_output(job) for job in page])

    @extend_schema(request=None, responses={202: JobOutputSerializer, 409: ConflictErrorResponseSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        job = services.job_cancel(job=self.get_object())
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        parameters=[BatchListQuerySerializer],
        responses={200: BatchOutputSerializer(many=True), 403: ErrorResponseSerializer},
    ),
    retrieve=extend_schema(responses=BatchOutputSerializer),
)
class BatchViewSet(
    TenantViewSetMixin, OwnOrAllMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Batches: your batches (admins: ?all=true for the org's), one batch with its jobs, cancel."""

    model = Batch
    serializer_class = BatchOutputSerializer
    query_serializer_class = BatchListQuerySerializer

    def refine_queryset(self, queryset):
        return self.own_or_all(queryset)

    def list(self, request, *args, **kwargs):
        self._check_all(request)
        queryset = self.get_queryset()
        if "status" in self._params():
            queryset = queryset.filter(status=self._params()["status"])
        page = self.paginate_queryset(queryset)
        counts = batches.batch_counts([batch.pk for batch in page])
        return self.get_paginated_response([batches.batch_output(batch, counts[batch.pk]) for batch in page])

    def retrieve(self, request, *args, **kwargs):
        return Response(batch_detail(self.get_object()))

    @extend_schema(request=None, responses={202: BatchOutputSerializer, 409: ConflictErrorResponseSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        batch = batches.batch_cancel(batch=self.get_object())
        return Response(batch_detail(batch), status=status.HTTP_202_ACCEPTED)


def batch_detail(batch: Batch) -> dict:
    """The batch with its counts and its jobs' ids."""
    job_ids = list(Job.unscoped_objects.filter(batch=batch).order_by("created_at", "id").values_list("id", flat=True))
    return batches.batch_output(batch, batches.batch_counts([batch.pk])[batch.pk], job_ids)
