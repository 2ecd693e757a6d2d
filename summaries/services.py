"""Summarization: requesting a summary (a job) and running it (the task body)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from config.errors import Conflict, ValidationFailed
from documents.extraction.language import name as language_name
from documents.models import Document
from documents.selectors import document_ids_matching
from jobs import services as job_services
from jobs.batches import batch_create
from jobs.lease import LeaseKeeper
from jobs.models import Batch, Job
from jobs.scheduler import queue_for
from organizations.models import Organization
from templates_app.models import Template
from templates_app.placeholders import RenderContext

from . import formats, providers, summarizer, usage
from .calls import JobCalls, RetriesSpent, RetryLater
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
    """Validate a summarize request and create its queued job (a scheduling round after
    commit hands it out).

    `template_id` must be one of the org's templates or a system template:
    anything else (another org's, a deleted one) is 400 "not found".
    """
    # Lock the document: a concurrent delete waits for this job (and then cancels it), or wins and we 404.
    locked = Document.objects.select_for_update().filter(pk=document.pk).values_list("status", "error").first()
    status, error = locked or (None, None)
    if status is None:
        from rest_framework.exceptions import NotFound

        raise NotFound("No document with this id.")
    if status == Document.Status.FAILED:
        reason = (error or {}).get("detail") or "its text could not be extracted"
        raise Conflict(f"The document cannot be summarized: {reason}", "document_failed")
    payload = _summarize_payload(template_id=template_id, provider=provider, model=model, options=options)
    _check_budget(org, user, payload, Document.objects.filter(pk=document.pk))
    return job_services.job_create(
        org=org,
        kind=Job.Kind.SUMMARIZE,
        created_by=user,
        payload=payload,
        queue=_queue(payload),
        document=document,
    )


def summary_batch_request(
    *,
    org: Organization,
    user: User | None,
    document_ids: list | None = None,
    filter: dict[str, Any] | None = None,
    template_id=None,
    provider: str | None = None,
    model: str | None = None,
    options: dict[str, Any] | None = None,
    max_documents: int | None = None,
) -> Batch:
    """A batch summarizing many documents: the given ids (all of this org's), or those the
    list's `filter` selects (search, source, created_after/before) when the batch is made.

    At most `max_documents` (MAX_BATCH_DOCUMENTS for the API): more is 400
    `batch_too_large`, none is 400 `no_documents`; ids that are not this org's
    documents are 400 `not_found`, naming them.
    """
    payload = _summarize_payload(template_id=template_id, provider=provider, model=model, options=options)
    limit = max_documents or settings.MAX_BATCH_DOCUMENTS
    documents = Document.objects.all()
    if document_ids is not None:
        wanted = list(dict.fromkeys(document_ids))
        if len(wanted) > limit:
            raise ValidationFailed(
                f"A batch takes at most {limit} documents; {len(wanted)} were given.", "batch_too_large", "document_ids"
            )
        # Locked: a concurrent delete waits for these jobs (and cancels them), or wins and we 400.
        found = set(documents.select_for_update().filter(pk__in=wanted).values_list("pk", flat=True))
        missing = [str(pk) for pk in wanted if pk not in found]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ValidationFailed(f"No document with id {shown} in your organization.", "not_found", "document_ids")
        selected, selection = wanted, {"document_ids": [str(pk) for pk in wanted]}
    else:
        criteria = {k: v for k, v in (filter or {}).items() if v not in (None, "")}
        if "status" not in criteria:  # a failed document has no text to summarize
            documents = documents.exclude(status=Document.Status.FAILED)
        selected = document_ids_matching(documents, limit=limit + 1, **criteria)
        if len(selected) > limit:
            raise ValidationFailed(
                f"The filter selects more than {limit} documents, the most one batch takes; narrow it.",
                "batch_too_large",
                "filter",
            )
        selection = {"filter": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in criteria.items()}}
    if not selected:
        raise ValidationFailed("No document matches: the batch would be empty.", "no_documents")
    _check_budget(org, user, payload, Document.objects.filter(pk__in=selected))
    return batch_create(
        org=org,
        created_by=user,
        kind=Job.Kind.SUMMARIZE,
        payload=payload,
        selection=selection,
        queue=_queue(payload),
        document_ids=selected,
    )


def _check_budget(org: Organization, user: User | None, payload: dict[str, Any], documents) -> None:
    """402 `budget_exceeded` when the documents' estimate does not fit this month's budgets."""
    if not usage.charged(payload["provider"]) or not usage.budgets_for(org.pk, user.pk if user else None):
        return
    from django.db.models import Sum

    template = Template.objects.get(pk=payload["template_id"])
    words = int(payload["options"].get("max_words") or template.default_max_words or 150)
    answer = formats.max_tokens(payload["options"].get("format") or template.format or "prose", words, cite=True)
    chars = documents.aggregate(total=Sum("char_count"))["total"] or 0
    tokens = usage.request_estimate(chars, answer * max(1, documents.count()))
    usage.check_request(org_id=org.pk, user_id=user.pk if user else None, provider=payload["provider"], tokens=tokens)


def _summarize_payload(*, template_id, provider, model, options) -> dict[str, Any]:
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
    return {"template_id": str(template.pk), "provider": provider, "model": model, "options": options or {}}


def _queue(payload: dict[str, Any]) -> str:
    return queue_for(Job.Kind.SUMMARIZE, io_bound=providers.io_bound(payload["provider"]))


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


def render_context(document: Document, org) -> RenderContext:
    """What a template's placeholders are filled with for this document."""
    return RenderContext(
        document_title=document.title,
        document_content=document.content,
        document_source=document.source,
        document_language=language_name(document.language),
        organization_name=org.name,
        today=timezone.localdate(),
    )


def template_preview(
    *, org: Organization, document: Document, template: Template, provider_name: str
) -> summarizer.Preview:
    """What summarizing `document` with this (perhaps unsaved) template would send to the
    provider: the rendered prompt and its token estimate; nothing is called or stored."""
    options = SummarizeOptions(
        max_words=template.default_max_words or 150,
        format=template.format or "prose",
        favour=tuple(template.favour or ()),
    )
    return summarizer.preview(
        provider=providers.get_provider(provider_name),
        template_body=template.body,
        context=render_context(document, org),
        options=options,
    )


def summarize_options(job: Job, template: Template, provider) -> SummarizeOptions:
    """The job's options over the template's intent: format, length, what to favour."""
    from .streaming import delta_publisher

    asked = job.payload.get("options") or {}
    stream = bool(asked.get("stream")) and not provider.extractive
    return SummarizeOptions(
        model=job.payload.get("model"),
        max_words=int(asked.get("max_words") or template.default_max_words or 150),
        temperature=float(asked.get("temperature", 0.2)),
        org_id=str(job.org_id),
        format=asked.get("format") or template.format or "prose",
        favour=tuple(template.favour or ()),
        cite=not provider.extractive,
        citation_markers=bool(asked.get("citation_markers")),
        stream=stream,
        on_delta=delta_publisher(job) if stream else None,
    )


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
    if document.status == Document.Status.FAILED:
        error = document.error or {}
        job_services.job_fail(
            job_id=job.pk,
            lease_token=token,
            code=error.get("code") or "document_failed",
            detail=f"The document could not be read: {error.get('detail') or 'no text'}",
        )
        return
    if document.status == Document.Status.PROCESSING:  # handed out in a race with a new file: wait again
        job_services.job_retry_later(
            job_id=job.pk, lease_token=token, code="document_processing", detail="Waiting for the text.", delay_s=2
        )
        return

    provider = providers.get_provider(job.payload.get("provider"))
    options = summarize_options(job, template, provider)
    context = render_context(document, job.org)
    # The database connection goes back to the pool for the calls: a worker has many
    # jobs waiting on the LLM and a pool of DB_POOL_MAX_SIZE connections.
    if not connection.in_atomic_block:
        connection.close()

    with LeaseKeeper(job.pk, token) as lease:

        def on_progress(percent: int) -> bool:
            return lease.alive and job_services.job_set_progress(job_id=job.pk, lease_token=token, progress=percent)

        calls = JobCalls(
            provider,
            retries_used=job.retries,
            deadline=job_services.job_deadline(job),
            alive=lambda: lease.alive,
            meter=usage.Meter(org_id=job.org_id, user_id=job.created_by_id, job_id=job.pk, provider=provider.name),
        )
        try:
            result = summarize_document(
                provider=provider,
                template_body=template.body,
                context=context,
                options=options,
                on_progress=on_progress,
                call=calls.call,
                parallel=settings.LLM_MAP_CONCURRENCY if provider.io_bound else 1,
                page_offsets=(document.metadata or {}).get("page_offsets"),
            )
        except Cancelled:
            logger.info("job %s stopped: cancelled", job.pk)
            return
        except RetryLater as later:
            job_services.job_retry_or_fail(
                job,
                code=later.error.code,
                detail=later.error.detail,
                transient=True,
                retry_after=later.delay_s,
                retries=calls.retries_used,
            )
            return
        except RetriesSpent as spent:
            job_services.job_fail(job_id=job.pk, lease_token=token, code=spent.error.code, detail=spent.detail)
            return
        except usage.BudgetExceeded as over:  # the call that would pass the budget: nothing is kept
            job_services.job_fail(job_id=job.pk, lease_token=token, code="budget_exceeded", detail=str(over.detail))
            return
        except LLMError as error:
            job_services.job_fail(job_id=job.pk, lease_token=token, code=error.code, detail=error.detail)
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
                parameters=_parameters(options),
                citations=result.citations,
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


def _parameters(options: SummarizeOptions) -> dict[str, Any]:
    return {
        "max_words": options.max_words,
        "temperature": options.temperature,
        "model": options.model,
        "format": options.format,
        "stream": options.stream,
        "citation_markers": options.citation_markers,
    }


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
    from organizations import audit

    with transaction.atomic():
        if job_services.job_succeed(job_id=job.pk, lease_token=token, result={"published": result}, summary=summary):
            audit.record(
                "integration.published",
                org=job.org_id,
                actor=job.created_by,
                target=integration,
                changes={"summary": str(summary.pk), "target": job.payload.get("target") or {}},
            )
