"""Failures as OpenAI's clients expect them: an HTTP status and ``{"error": {...}}``.

The ``openai`` package turns the status into its exception classes (400 ``BadRequestError``,
401 ``AuthenticationError``, 404 ``NotFoundError``, 429 ``RateLimitError``) and shows
``error.message``; so each message says what was wrong and what to send instead.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request that cannot be answered; raised anywhere under a route, rendered by the app."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
