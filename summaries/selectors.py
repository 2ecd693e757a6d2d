"""Summary reads: `stale` is derived (the document changed since), never stored."""

from django.db.models import BooleanField, Case, F, QuerySet, Value, When

from .models import Summary


def with_stale(queryset: QuerySet[Summary]) -> QuerySet[Summary]:
    return queryset.annotate(
        stale=Case(
            When(source_sha256=F("document__sha256"), then=Value(False)),
            default=Value(True),
            output_field=BooleanField(),
        )
    )
