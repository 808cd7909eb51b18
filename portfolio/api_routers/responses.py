"""Response declarations shared by the routers, so every operation's OpenAPI entry lists what it can answer."""

from __future__ import annotations

from portfolio.schemas import ErrorOut, ValidationErrorOut

# Every operation needs a signed-in user (or, later, a personal token).
UNAUTHORIZED = {401: ErrorOut}
# A path id of another user answers exactly like an id that does not exist.
NOT_FOUND = {404: ErrorOut}
# Query or body values that fail validation.
INVALID = {422: ValidationErrorOut}
# Unsafe methods: the session auth checks the CSRF token (403), a body must be readable JSON (400).
UNSAFE = {403: ErrorOut}
UNREADABLE = {400: ErrorOut}
