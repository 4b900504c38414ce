"""The OpenAPI document at /schema, made to tell the truth about errors: Litestar
documents only its own 400 shape, while every error this server sends has OpenAI's
`{"error": {...}}` body. After Litestar builds the document, each operation gets the
error statuses it can answer with that body, and the chat route its event stream."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.routes import HTTPRoute

from server.schemas import ErrorBody

REF = "#/components/schemas/{name}"
# Statuses every route can answer: a bad Host (400), a server fault (500) or a server
# still loading (503); then by what the route takes.
ALWAYS = {400: "The request or its Host header is wrong", 500: "A fault of the server"}
SECURED = {401: "No valid API key", 403: "The key lacks the scope, or a foreign origin"}
WITH_BODY = {
    413: "The body is too large",
    415: "The body is not of the route's content type",
    422: "A field is out of range or of the wrong type; `param` names it",
}
WITH_PARAMETERS = {422: WITH_BODY[422], 404: "What the path names does not exist"}
BY_PATH = {
    "/v1/chat/completions": {
        404: "No such model",
        429: "Too many requests waiting; see Retry-After",
        503: "The model is still loading",
        504: "The answer took longer than server.request_timeout",
    },
    "/v1/search": {503: "The model is still loading, or nothing was synced yet"},
    "/v1/feedback": {404: "No such completion", 503: "The model is still loading"},
    "/v1/adapters/{name}/promote": {409: "Nothing to promote, or already active"},
    "/v1/adapters/{name}/rollback": {409: "Nothing to roll back to"},
    "/v1/documents/{document_id}": {409: "The document's file is not editable (PDF, JSONL)"},
    "/v1/index/sync": {409: "Another sync is running"},
    "/v1/fine_tuning/jobs/{job_id}/cancel": {409: "The job has finished"},
    "/v1/fine_tuning/jobs": {409: "The Idempotency-Key was used with other parameters"},
    "/healthz": {503: "Loading, or loading failed"},
}
UNSAFE = {"post", "put", "patch", "delete"}


def document_errors(app: Litestar) -> None:
    """Rewrite the cached OpenAPI document in place (call at start-up, before /schema is
    first served)."""
    document = app.plugins.get("OpenAPIPlugin").provide_openapi_schema()
    guarded = {
        route.path_format
        for route in app.routes
        if isinstance(route, HTTPRoute)
        and any(handler.guards for handler, _ in route.route_handler_map.values())
    }
    (error_ref,), components = msgspec.json.schema_components([ErrorBody], ref_template=REF)
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method in UNSAFE | {"get"}:
                _describe(path in guarded, method, path, operation, error_ref)
    chat = document["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]
    chat["content"]["text/event-stream"] = {
        "schema": {"type": "string", "description": "server-sent chat.completion.chunk events"}
    }


def _describe(
    guarded: bool, method: str, path: str, operation: dict[str, Any], error_ref: Any
) -> None:
    statuses = dict(ALWAYS)
    if guarded:
        statuses |= SECURED
    if method in UNSAFE:
        statuses |= WITH_BODY | {403: SECURED[403]}
    if operation.get("parameters"):
        statuses |= WITH_PARAMETERS
    statuses |= BY_PATH.get(path, {})
    responses = operation.setdefault("responses", {})
    for status, description in sorted(statuses.items()):
        responses[str(status)] = {
            "description": description,
            "content": {"application/json": {"schema": error_ref}},
        }
