"""Response declarations, the API's error type and list pagination shared by the routers, so each
operation documents every answer it can give."""

from __future__ import annotations

import base64
import json
from typing import Any

from ninja import Field, Schema
from ninja.errors import ValidationError
from ninja.pagination import LimitOffsetPagination

from portfolio.schemas import ErrorOut, ValidationErrorOut

MAX_PAGE = 500

# Every operation: no or a bad token/session (401), over the request limit (429, with Retry-After),
# a malformed path/query/body value (422 with field locations).
UNAUTHORIZED = {401: ErrorOut}
LIMITED = {429: ErrorOut}
INVALID = {422: ValidationErrorOut}
# A path id of another user answers exactly like an id that does not exist.
NOT_FOUND = {404: ErrorOut}
# Unsafe methods: a read-only token or a session without its CSRF token (403), a body that is not JSON
# (400).
UNSAFE = {403: ErrorOut}
UNREADABLE = {400: ErrorOut}
CONFLICT = {409: ErrorOut}
UNAVAILABLE = {503: ErrorOut}


def answers(ok: dict, *, write: bool = False, lookup: bool = False, conflict: bool = False,
            unavailable: bool = False) -> dict:
    """The response map of an operation: ``ok`` plus the errors it can give. ``write``: an unsafe method
    with a body or not (400, 403); ``lookup``: it loads an object by id (404); ``conflict``: it can clash
    with an existing object (409); ``unavailable``: it needs the task broker (503)."""
    out = {**ok, **UNAUTHORIZED, **LIMITED, **INVALID}
    if write:
        out.update({**UNREADABLE, **UNSAFE})
    if lookup:
        out.update(NOT_FOUND)
    if conflict:
        out.update(CONFLICT)
    if unavailable:
        out.update(UNAVAILABLE)
    return out


class ApiError(Exception):
    """An answer other than success: ``{"detail": detail, "code": code}`` with ``status`` (and headers,
    e.g. Retry-After or WWW-Authenticate). Raised anywhere below an operation; api.py renders it."""

    def __init__(self, status: int, detail: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code, self.headers = status, detail, code, headers or {}


class Page(LimitOffsetPagination):
    """``?limit=&offset=`` lists answered as ``{"items": [...], "count": total}``. Both are bounded, so a
    huge offset is a 422 and not a database error."""

    class Input(Schema):
        limit: int = Field(100, ge=1, le=MAX_PAGE)
        offset: int = Field(0, ge=0, le=10**9)

    def __init__(self, **kwargs):
        super().__init__(max_limit=MAX_PAGE, **kwargs)


# --------------------------------------------------------------------------- cursors


def encode_cursor(key: list[Any]) -> str:
    """An opaque cursor holding the sort key of the last item of a page (keyset paging: rows added or
    removed meanwhile never shift the next page)."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, shape: tuple[type | tuple[type, ...], ...]) -> list[Any]:
    """The key of ``cursor`` checked against ``shape`` (the type, or tuple of types, of each position;
    integers within a 64-bit column).

    Raises ninja's ``ValidationError`` (a 422 at ``["query", "cursor"]``) for anything this API did not
    hand out."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or len(key) != len(shape):
            raise ValueError
        for value, kind in zip(key, shape):
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise ValueError
        return key
    except (ValueError, TypeError, UnicodeDecodeError):
        raise bad_cursor() from None


def bad_cursor() -> ValidationError:
    return ValidationError([{"loc": ["query", "cursor"], "msg": "Not a cursor of this list.", "type": "invalid"}])
