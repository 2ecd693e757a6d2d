"""The list query's summary_count: one expression instance serves every queryset."""

from django_scopes import scopes_disabled

from conftest import make_tenant
from documents import selectors
from documents.models import Document
from summaries.models import Summary


def _document_with_summaries(org, n: int) -> Document:
    document = Document.unscoped_objects.create(org=org, title=f"{n} summaries", content="text", sha256="a" * 64)
    for _ in range(n):
        Summary.unscoped_objects.create(
            org=org, document=document, content="s", provider="local", source_sha256="a" * 64, prompt_sha256="0" * 64
        )
    return document


def test_summary_count_expression_is_built_once_and_counts_per_document_and_org(tenant):
    other = make_tenant("Globex")
    mine = [_document_with_summaries(tenant.org, n) for n in (0, 2)]
    theirs = _document_with_summaries(other.org, 3)
    assert selectors.summary_count_expression() is selectors.summary_count_expression()

    def counts(org) -> dict:
        with scopes_disabled():
            queryset = selectors.document_list_queryset(Document.unscoped_objects.filter(org=org))
            return {row["id"]: row["summary_count"] for row in selectors.document_list_values(queryset)}

    for _ in range(2):  # the shared expression is not changed by being used
        assert counts(tenant.org) == {mine[0].pk: 0, mine[1].pk: 2}
        assert counts(other.org) == {theirs.pk: 3}
