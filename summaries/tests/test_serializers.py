"""summary_output() builds the documented SummaryOutputSerializer shape without DRF."""

import json

from django_scopes import scopes_disabled

from documents.models import Document
from summaries import selectors
from summaries.models import Summary
from summaries.serializers import SummaryOutputSerializer, summary_output


def same(summary: Summary) -> None:
    expected = json.loads(json.dumps(SummaryOutputSerializer(summary).data))
    assert json.loads(json.dumps(summary_output(summary))) == expected


def test_summary_output_matches_the_documented_serializer(tenant):
    document = Document.unscoped_objects.create(org=tenant.org, title="T", content="text", sha256="a" * 64)
    summary = Summary.unscoped_objects.create(
        org=tenant.org,
        document=document,
        content="A summary.",
        provider="local",
        model="m",
        template_name="TL;DR",
        prompt_tokens=12,
        completion_tokens=3,
        latency_ms=4,
        strategy="single",
        chunk_count=1,
        source_sha256=document.sha256,
        prompt_sha256="0" * 64,
        parameters={"max_words": 50, "temperature": 0.2, "model": None},
        created_by=tenant.member,
    )
    same(summary)  # fresh from create(): no `stale` attribute
    summary.stale = False
    same(summary)
    with scopes_disabled():
        listed = selectors.with_stale(Summary.unscoped_objects.all()).get(pk=summary.pk)
    same(listed)
    Document.unscoped_objects.filter(pk=document.pk).update(sha256="b" * 64)
    with scopes_disabled():
        stale = selectors.with_stale(Summary.unscoped_objects.all()).get(pk=summary.pk)
    assert stale.stale is True
    same(stale)
    Summary.unscoped_objects.filter(pk=summary.pk).update(
        created_by=None, status=Summary.Status.TRUNCATED, truncated=True
    )
    same(Summary.unscoped_objects.get(pk=summary.pk))
