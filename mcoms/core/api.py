"""Shared REST plumbing: Django validation errors become 400 answers, not 500s."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = ValidationError(detail)
    return drf_exception_handler(exc, context)


class Pagination(LimitOffsetPagination):
    """Limit/offset pages with bounds: ``limit`` at most 1,000 rows, ``offset`` below 2**53.

    Without them a huge ``?limit=`` or ``?offset=`` reached the database as an
    integer it cannot hold and answered 500 (found by the schema fuzz test,
    tests/ops/test_schema_fuzz.py); past the end, a page is simply empty.
    """

    max_limit = 1000
    max_offset = 2**53

    def get_offset(self, request):
        return min(super().get_offset(request), self.max_offset)
