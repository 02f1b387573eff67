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


class RequestTimeout(ApiError):
    """The client stopped sending its request (the server's read deadline closed it, or it left)."""

    status = 408
    error = "Request timeout"


class RetryLater(ApiError):
    """A refusal that is the server's state, not the request's: the same request may succeed
    after `Retry-After` seconds."""

    default_retry_after_s = 1

    def __init__(self, detail: Any = None, retry_after_s: int | None = None) -> None:
        self.retry_after_s = self.default_retry_after_s if retry_after_s is None else retry_after_s
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_s)})

    def again(self) -> RetryLater:
        """The same refusal, a new exception (one instance raised in several requests would share
        its traceback)."""
        return type(self)(self.detail, self.retry_after_s)


class RateLimited(RetryLater):
    """The API key's rate limit is spent: the client should wait `Retry-After` seconds."""

    status = 429
    error = "Too many requests"


class Overloaded(RetryLater):
    """The writer's queue is full: the client should retry, nothing was accepted."""

    status = 503
    error = "Overloaded"


class InsufficientStorage(RetryLater):
    """The data volume is below its free-space floor (or full): nothing was accepted, and the
    client should retry after `Retry-After`, once someone has made room. Reads still work."""

    status = 507
    error = "Insufficient storage"
    default_retry_after_s = 10


class StoreUnavailable(RetryLater):
    """A write failed in the storage engine (an I/O error): nothing of the request was kept, the
    server reopens the store by itself, and the client should retry after `Retry-After`."""

    status = 503
    error = "Store unavailable"
    default_retry_after_s = 5
