"""Cursor pagination for every list: `{next, previous, results}`.

`?page_size=` defaults to 20 and is clamped to 100; a non-numeric or
non-positive value falls back to the default (never an error, never unbounded).
Cursors are stable under concurrent inserts and never count the table.
"""

from rest_framework.pagination import CursorPagination as _DRFCursorPagination


class CursorPagination(_DRFCursorPagination):
    page_size = 20
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-created_at"
    invalid_cursor_message = "Invalid or expired cursor."
