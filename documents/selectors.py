"""Document reads: the list query (filters, search, excerpt) in a constant number of queries."""

from __future__ import annotations

import functools

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, FloatField, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Substr

from .models import Document

EXCERPT_CHARS = 300
SEARCH_CONFIG = "english"

# Columns a list row needs; `content` itself is never loaded for lists.
LIST_FIELDS = [
    "id",
    "org_id",
    "title",
    "content_type",
    "source",
    "source_ref",
    "metadata",
    "char_count",
    "sha256",
    "file",
    "original_filename",
    "status",
    "error",
    "language",
    "created_by_id",
    "created_at",
    "updated_at",
]


def uses_full_text_search() -> bool:
    return connection.vendor == "postgresql"


def document_list_queryset(queryset: QuerySet[Document], *, search: str | None = None) -> QuerySet[Document]:
    """Annotate an (already org-scoped) queryset for the list endpoint.

    One SQL query per page whatever the page size: the excerpt is cut in SQL,
    `summary_count` is a correlated subquery.
    With `search`, PostgreSQL matches `websearch_to_tsquery` (any user input is
    valid syntax) against the trigger-maintained vector and exposes `rank`;
    SQLite falls back to a case-insensitive contains match with rank 0.
    """
    queryset = queryset.only(*LIST_FIELDS).annotate(
        excerpt=Substr("content", 1, EXCERPT_CHARS),
        summary_count=summary_count_expression(),
    )
    if search:
        queryset = _search(queryset, search)
    return queryset


def document_filter(
    queryset: QuerySet[Document],
    *,
    source: str | None = None,
    language: str | None = None,
    status: str | None = None,
    created_after=None,
    created_before=None,
) -> QuerySet[Document]:
    """The list's filters (also the selection of a batch)."""
    if source is not None:
        queryset = queryset.filter(source=source)
    if language is not None:
        queryset = queryset.filter(language=language)
    if status is not None:
        queryset = queryset.filter(status=status)
    if created_after is not None:
        queryset = queryset.filter(created_at__gte=created_after)
    if created_before is not None:
        queryset = queryset.filter(created_at__lt=created_before)
    return queryset


def document_ids_matching(queryset: QuerySet[Document], *, search: str | None = None, limit: int, **filters) -> list:
    """Ids of every document the list's filters and search select (no rank, no candidate
    cap), oldest first, at most `limit`."""
    queryset = document_filter(queryset, **filters)
    if search:
        if uses_full_text_search():
            from django.contrib.postgres.search import SearchQuery

            queryset = queryset.filter(search_vector=SearchQuery(search, search_type="websearch", config=SEARCH_CONFIG))
        else:
            queryset = queryset.filter(Q(title__icontains=search) | Q(content__icontains=search))
    return list(queryset.order_by("created_at", "id").values_list("id", flat=True)[:limit])


def document_list_values(queryset: QuerySet[Document]) -> QuerySet:
    """The list queryset as plain rows (dicts) for serializers.document_list_row."""
    extra = ["rank"] if "rank" in queryset.query.annotations else []
    return queryset.values(*(f for f in LIST_FIELDS if f != "org_id"), "excerpt", "summary_count", *extra)


@functools.cache
def summary_count_expression():
    """How many summaries a document has: a correlated COUNT over the
    (document, created_at) index, through the reverse relation (no import of
    the summaries app).

    Built once per process (building it cost about 0.4 ms per list request): an
    expression is a template that `annotate()` copies as it resolves it, so one
    instance serves every queryset."""
    summary_model = Document._meta.get_field("summaries").related_model
    counts = (
        summary_model.unscoped_objects.filter(document=OuterRef("pk"))
        .order_by()
        .values("document")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def _search(queryset: QuerySet[Document], text: str) -> QuerySet[Document]:
    if uses_full_text_search():
        from django.contrib.postgres.search import SearchQuery, SearchRank

        query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
        # Ranking reads every match's tsvector: for a common term that is the whole org.
        # Rank a bounded candidate set instead (any SEARCH_RANK_CANDIDATES matches, picked by
        # the GIN index), so a common-term search costs about what a selective one does.
        candidates = queryset.filter(search_vector=query).values("pk")[: settings.SEARCH_RANK_CANDIDATES]
        return queryset.filter(pk__in=Subquery(candidates)).annotate(
            rank=SearchRank(F("search_vector"), query, cover_density=True)
        )
    return queryset.filter(Q(title__icontains=text) | Q(content__icontains=text)).annotate(
        rank=Value(0.0, output_field=FloatField())
    )


def ready_documents_gate(candidates: list):
    """jobs.scheduler gate: a job of a document still `processing` waits for its text (a
    failed document's jobs are let through to fail with its reason)."""
    ids = {job.document_id for job in candidates if job.document_id}
    processing = set(
        Document.unscoped_objects.filter(pk__in=ids, status=Document.Status.PROCESSING).values_list("pk", flat=True)
    )
    return lambda job: job.document_id not in processing
