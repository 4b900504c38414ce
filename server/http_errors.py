"""Every error the server returns, in OpenAI's shape:
`{"error": {"message", "type", "param", "code"}}`, so that the SDK raises its matching
exception (BadRequestError, NotFoundError, RateLimitError, ...)."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from hybrid.errors import HybridError
from server.engine import EngineBusyError
from server.schemas import ErrorBody, ErrorDetail

log = logging.getLogger("hybrid.server")

# OpenAI's error types by status.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
    504: "timeout_error",
}
_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorBody]:
    detail = ErrorDetail(
        message=message,
        type=_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        param=param,
        code=code or _CODES.get(status),
    )
    return Response(ErrorBody(error=detail), status_code=status, headers=headers)


def hybrid_error(_: Request, exc: HybridError) -> Response[ErrorBody]:
    headers = None
    if isinstance(exc, EngineBusyError):
        headers = {"Retry-After": str(exc.retry_after)}
    message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return error_response(exc.status, message, code=exc.code, param=exc.param, headers=headers)


def validation_error(_: Request, exc: ValidationException) -> Response[ErrorBody]:
    """A body that does not match its schema: 422, naming the first field at fault."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    param = first.get("key")
    message = first.get("message") or exc.detail
    if param:
        message = f"{param}: {message}"
    return error_response(422, str(message), code="invalid_value", param=param)


def http_error(_: Request, exc: HTTPException) -> Response[ErrorBody]:
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


def unexpected_error(request: Request, exc: Exception) -> Response[ErrorBody]:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


EXCEPTION_HANDLERS = {
    HybridError: hybrid_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
