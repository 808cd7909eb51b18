"""Response declarations and list pagination shared by the routers, so each operation documents its answers."""

from __future__ import annotations

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

from portfolio.schemas import ErrorOut, ValidationErrorOut

MAX_PAGE = 500

# Every operation needs a signed-in user (or, later, a personal token).
UNAUTHORIZED = {401: ErrorOut}
# A path id of another user answers exactly like an id that does not exist.
NOT_FOUND = {404: ErrorOut}
# Path, query or body values that fail validation (e.g. an id that is not an integer).
INVALID = {422: ValidationErrorOut}
# Unsafe methods: the session auth checks the CSRF token (403), a body must be readable JSON (400).
UNSAFE = {403: ErrorOut}
UNREADABLE = {400: ErrorOut}


class Page(LimitOffsetPagination):
    """``?limit=&offset=`` lists answered as ``{"items": [...], "count": total}``. Both are bounded, so a
    huge offset is a 422 and not a database error."""

    class Input(Schema):
        limit: int = Field(100, ge=1, le=MAX_PAGE)
        offset: int = Field(0, ge=0, le=10**9)

    def __init__(self, **kwargs):
        super().__init__(max_limit=MAX_PAGE, **kwargs)
