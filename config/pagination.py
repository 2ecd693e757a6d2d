"""Cursor pagination for every list: `{next, previous, results}`.

`?page_size=` defaults to 20 and is clamped to 100; a non-numeric or
non-positive value falls back to the default (never an error, never unbounded).
Cursors are stable under concurrent inserts and never count the table.
"""

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination as _DRFCursorPagination


class CursorPagination(_DRFCursorPagination):
    page_size = 20
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-created_at"
    invalid_cursor_message = "Invalid or expired cursor."

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        """DRF checks a cursor's offset and direction but not its position, which
        goes straight into the query: a forged one must be a 404, not a 500."""
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        position = cursor.position
        field_name = self.ordering[0].lstrip("-") if isinstance(self.ordering, (list, tuple)) else self.ordering
        field_name = field_name.lstrip("-")
        try:
            if "\x00" in position or len(position) > 1000:
                raise ValueError("bad position")
            try:
                field = self._model._meta.get_field(field_name)
            except FieldDoesNotExist:
                float(position)  # an annotation we order by (search rank)
            else:
                field.to_python(position)
        except (ValidationError, ValueError, TypeError):
            raise NotFound(self.invalid_cursor_message) from None
        return cursor
