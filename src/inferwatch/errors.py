"""Errors that become a JSON answer. Raised anywhere below the API, rendered in one place."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    error = "Invalid request"

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error}
        if self.detail is not None:
            out["detail"] = self.detail
        return out


class InvalidRequest(ApiError):
    pass


class PayloadTooLarge(ApiError):
    status = 413
    error = "Payload too large"


class Unauthorized(ApiError):
    status = 401
    error = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    error = "Forbidden"


class NotFound(ApiError):
    status = 404
    error = "Not found"


class RateLimited(ApiError):
    """The API key's rate limit is spent: the client should wait `Retry-After` seconds."""

    status = 429
    error = "Too many requests"

    def __init__(self, detail: Any = None, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class RequestTimeout(ApiError):
    """The client stopped sending its request (the server's read deadline closed it, or it left)."""

    status = 408
    error = "Request timeout"


class Overloaded(ApiError):
    """The writer's queue is full: the client should retry, nothing was accepted."""

    status = 503
    error = "Overloaded"

    def __init__(self, detail: Any = None, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})
