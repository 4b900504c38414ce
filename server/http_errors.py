"""Every error the server returns, in OpenAI's shape:
`{"error": {"message", "type", "param", "code"}}`, so that the SDK raises its matching
exception (BadRequestError, NotFoundError, RateLimitError, ...).

The one place where error categories become HTTP statuses. A fault of the request is a
4xx that names the field; a fault of the server is a 5xx whose body says only that, with
an incident id the server's log repeats next to the real cause."""

from __future__ import annotations

import logging
import secrets

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from hybrid.errors import (
    BusyError,
    ConflictError,
    HybridError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from server.auth import AuthenticationError, PermissionDeniedError
from server.engine import GenerationTimeoutError
from server.schemas import ErrorBody, ErrorDetail

log = logging.getLogger("hybrid.server")

# Checked in order: the first category an error belongs to gives its status. An error
# of none of them is the server's own fault.
STATUS_OF: list[tuple[type[HybridError], int]] = [
    (InvalidInputError, 400),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (BusyError, 429),
    (UnavailableError, 503),
    (GenerationTimeoutError, 504),
]

# OpenAI's error types by status.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
    504: "timeout_error",
}
_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def status_of(exc: HybridError) -> int:
    return next((status for kind, status in STATUS_OF if isinstance(exc, kind)), 500)


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorBody]:
    return Response(
        ErrorBody(error=error_detail(status, message, code=code, param=param)),
        status_code=status,
        headers=headers,
    )


def error_detail(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> ErrorDetail:
    return ErrorDetail(
        message=message,
        type=_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        param=param,
        code=code or _CODES.get(status),
    )


def detail_of(exc: HybridError, request: Request | None = None) -> tuple[int, ErrorDetail]:
    """The status and body for a deliberate error; a server fault is logged, not shown."""
    status = status_of(exc)
    if status == 500:
        incident = _log_fault(request, exc)
        return status, error_detail(status, _fault_message(incident), code=exc.code)
    message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return status, error_detail(status, message, code=exc.code, param=exc.param)


def hybrid_error(request: Request, exc: HybridError) -> Response[ErrorBody]:
    status, detail = detail_of(exc, request)
    retry_after = exc.retry_after if isinstance(exc, BusyError | UnavailableError) else None
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(ErrorBody(error=detail), status_code=status, headers=headers)


def validation_error(_: Request, exc: ValidationException) -> Response[ErrorBody]:
    """A body or parameter that does not match its schema: 422, naming the first field at
    fault; a body that is not JSON at all: 400."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    param = first.get("key")
    message = first.get("message") or exc.detail
    if param:
        message = f"{param}: {message}"
    if param is None and "decod" in str(exc.detail).lower():
        return error_response(400, str(message), code="invalid_json")
    return error_response(422, str(message), code="invalid_value", param=param)


def http_error(_: Request, exc: HTTPException) -> Response[ErrorBody]:
    if exc.status_code >= 500:
        return error_response(exc.status_code, _fault_message(_log_fault(None, exc)))
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


def too_deep(_: Request, exc: RecursionError) -> Response[ErrorBody]:
    """Only a request body nests deeply enough to exhaust the decoder's recursion."""
    return error_response(400, "the request body nests too deeply", code="invalid_json")


def unexpected_error(request: Request, exc: Exception) -> Response[ErrorBody]:
    return error_response(500, _fault_message(_log_fault(request, exc)))


def _log_fault(request: Request | None, exc: BaseException) -> str:
    incident = secrets.token_hex(4)
    where = f"{request.method} {request.url.path}" if request is not None else "a request"
    log.error("incident %s: server fault on %s", incident, where, exc_info=exc)
    return incident


def _fault_message(incident: str) -> str:
    return f"the server failed to answer this request (incident {incident} in its log)"


EXCEPTION_HANDLERS = {
    HybridError: hybrid_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    RecursionError: too_deep,
    Exception: unexpected_error,
}
