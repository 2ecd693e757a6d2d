"""Summarization: requesting a summary (a job) and running it (the task body)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from config.errors import ValidationFailed
from documents.models import Document
from jobs import services as job_services
from jobs.dispatch import queue_for
from jobs.lease import LeaseKeeper
from jobs.models import Job
from organizations.models import Organization
from templates_app.models import Template
from templates_app.placeholders import RenderContext

from . import providers
from .models import Summary
from .providers.base import LLMError, SummarizeOptions
from .summarizer import Cancelled, SummaryResult, summarize_document

logger = logging.getLogger(__name__)

# The system "Executive summary" template (templates_app migration 0002) is the default.
DEFAULT_TEMPLATE_ID = "5b0c7d3e-1f3a-4c8e-9a51-000000000001"


def summary_request(
    *,
    org: Organization,
    user: User,
    document: Document,
    template_id=None,
    provider: str | None = None,
    model: str | None = None,
    options: dict[str, Any] | None = None,
) -> Job:
    """Validate a summarize request and create its queued job (dispatch after commit).

    `template_id` must be one of the org's templates or a system template:
    anything else (another org's, a deleted one) is 400 "not found".
    """
    # Lock the document: a concurrent delete waits for this job (and then cancels it), or wins and we 404.
    if not Document.objects.select_for_update().filter(pk=document.pk).exists():
        from rest_framework.exceptions import NotFound

        raise NotFound("No document with this id.")
    template = Template.objects.filter(pk=template_id or DEFAULT_TEMPLATE_ID).first()
    if template is None:
        raise ValidationFailed("No template with this id in your organization.", "not_found", "template_id")
    provider = provider or settings.LLM_PROVIDER
    if provider not in providers.available():
        raise ValidationFailed(
            f"Unknown or unconfigured provider {provider!r}; available: {', '.join(providers.available())}.",
            "invalid_provider",
            "provider",
        )
    payload = {"template_id": str(template.pk), "provider": provider, "model": model, "options": options or {}}
    return job_services.job_create(
        org=org,
        kind=Job.Kind.SUMMARIZE,
        created_by=user,
        payload=payload,
        queue=queue_for(Job.Kind.SUMMARIZE),
        document=document,
    )


def summary_delete(*, summary: Summary, user: User) -> None:
    from rest_framework.exceptions import PermissionDenied

    from accounts.models import Role

    if user.role != Role.ADMIN and summary.created_by_id != user.id:
        raise PermissionDenied("Only the summary's creator or an organization admin may delete it.")
    summary.delete()


def summarize_job_run(*, job_id) -> None:
    """Run one summarize job (the Celery task's body, inside the job's org scope).

    Safe to deliver twice: only one delivery can start the job, and one job can
    only ever have one summary (unique constraint), written in the same
    transaction that marks the job succeeded.
    """
    job_services.job_run(job_id, _summarize)


def _summarize(job: Job) -> None:
    token = job.lease_token
    if job.attempts > settings.JOB_MAX_ATTEMPTS:
        job_services.job_fail(
            job_id=job.pk,
            lease_token=token,
            code="too_many_attempts",
            detail=f"Gave up after {settings.JOB_MAX_ATTEMPTS} attempts.",
        )
        return
    document = Document.objects.filter(pk=job.document_id).first()
    template = Template.objects.filter(pk=job.payload.get("template_id")).first()
    if document is None or template is None:
        what = "document" if document is None else "template"
        job_services.job_fail(
            job_id=job.pk, lease_token=token, code=f"{what}_deleted", detail=f"The {what} was deleted."
        )
        return

    payload_options = job.payload.get("options") or {}
    options = SummarizeOptions(
        model=job.payload.get("model"),
        max_words=int(payload_options.get("max_words", 150)),
        temperature=float(payload_options.get("temperature", 0.2)),
        org_id=str(job.org_id),
    )
    context = RenderContext(
        document_title=document.title,
        document_content=document.content,
        document_source=document.source,
        organization_name=job.org.name,
        today=timezone.localdate(),
    )
    provider = providers.get_provider(job.payload.get("provider"))

    with LeaseKeeper(job.pk, token) as lease:

        def on_progress(percent: int) -> bool:
            return lease.alive and job_services.job_set_progress(job_id=job.pk, lease_token=token, progress=percent)

        try:
            result = summarize_document(
                provider=provider,
                template_body=template.body,
                context=context,
                options=options,
                on_progress=on_progress,
            )
        except Cancelled:
            logger.info("job %s stopped: cancelled", job.pk)
            return
        except LLMError as error:
            job_services.job_retry_or_fail(
                job, code=error.code, detail=error.detail, transient=error.transient, retry_after=error.retry_after
            )
            return
    _store(job, token, document, template, provider.name, options, result)


def _store(job, token, document, template, provider_name, options, result: SummaryResult) -> None:
    from .serializers import summary_output

    try:
        with transaction.atomic():
            summary = Summary.objects.create(
                org_id=job.org_id,
                document=document,
                job=job,
                template=template,
                template_name=template.name,
                content=result.text,
                provider=provider_name,
                model=result.model,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                latency_ms=result.latency_ms,
                status=Summary.Status.TRUNCATED if result.truncated else Summary.Status.COMPLETE,
                strategy=result.strategy,
                chunk_count=result.chunk_count,
                truncated=result.truncated,
                source_sha256=document.sha256,
                prompt_sha256=result.prompt_sha256,
                parameters={"max_words": options.max_words, "temperature": options.temperature, "model": options.model},
                created_by_id=job.created_by_id,
            )
            summary.stale = False
            finished = job_services.job_succeed(
                job_id=job.pk,
                lease_token=token,
                summary=summary,
                result={
                    "summary_id": str(summary.pk),
                    "strategy": result.strategy,
                    "chunks": result.chunk_count,
                    "calls": result.calls,
                },
                # job.succeeded and summary.created: stored and sent together after the commit
                also=[("summary.created", summary_output(summary), None)],
            )
            if finished is None:  # cancelled or taken away meanwhile: keep nothing
                raise _Abandon()
    except _Abandon:
        logger.info("job %s finished elsewhere or was cancelled; summary discarded", job.pk)
    except IntegrityError:
        logger.info("job %s already has its summary (duplicate delivery)", job.pk)


class _Abandon(Exception):
    pass


# -- publishing ----------------------------------------------------------------------------
def summary_publish_request(*, org: Organization, user: User, summary: Summary, integration_id, target) -> Job:
    """Validate a publish request (integration of this org, able to publish, valid target) → job."""
    from integrations.models import Integration
    from integrations.services import validate_publish_target

    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        raise ValidationFailed("No integration with this id in your organization.", "not_found", "integration_id")
    target = validate_publish_target(integration=integration, target=target)
    return job_services.job_create(
        org=org,
        kind=Job.Kind.PUBLISH,
        created_by=user,
        payload={"integration_id": str(integration.pk), "target": target, "summary_id": str(summary.pk)},
        queue=queue_for(Job.Kind.PUBLISH),
        document=summary.document,
    )


def publish_job_run(*, job_id) -> None:
    """Task body for publish jobs: send the summary through its integration."""
    job_services.job_run(job_id, _publish)


def _publish(job: Job) -> None:
    from integrations.http import ProviderError
    from integrations.models import Integration
    from integrations.services import integration_publish

    token = job.lease_token
    summary = Summary.objects.select_related("document").filter(pk=job.payload.get("summary_id")).first()
    integration = Integration.objects.filter(pk=job.payload.get("integration_id")).first()
    if summary is None or integration is None:
        what = "summary" if summary is None else "integration"
        job_services.job_fail(
            job_id=job.pk, lease_token=token, code=f"{what}_deleted", detail=f"The {what} was deleted."
        )
        return
    title = f"{summary.template_name or 'Summary'}: {summary.document.title}"
    with LeaseKeeper(job.pk, token):
        try:
            result = integration_publish(
                integration=integration, title=title, content=summary.content, target=job.payload.get("target") or {}
            )
        except ProviderError as error:
            job_services.job_retry_or_fail(
                job, code=error.code, detail=error.detail, transient=error.transient, retry_after=error.retry_after
            )
            return
    job_services.job_succeed(job_id=job.pk, lease_token=token, result={"published": result}, summary=summary)
