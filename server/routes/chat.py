"""OpenAI-compatible chat: GET /v1/models and POST /v1/chat/completions.

`model` names the base model (the bot's `models.base`), an adapter (`name`: its active
version) or an adapter version (`name@version`). The request is checked, the sources
retrieved and the prompt queued before any byte is sent, so every refusal is a plain
error response; a stream then always ends with `data: [DONE]`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Stream

from hybrid.errors import HybridError, NotFoundError
from hybrid.types import AdapterRef, Message
from server.assistant import Answer, AnswerStream
from server.auth import CHAT
from server.http_errors import detail_of
from server.metrics import note_model
from server.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Citation,
    Delta,
    ErrorBody,
    Model,
    ModelList,
    Usage,
)
from server.state import ServerState
from server.streams import async_deltas
from training import AdapterNotFoundError


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


@get("/v1/models", sync_to_thread=True, guards=CHAT)
def list_models(server: NamedDependency[ServerState]) -> ModelList:
    models = [Model(id=server.base_model_id, created=server.started_at, owned_by="hybrid")]
    for record in server.registry().list():
        if record.status == "retired":
            continue
        created = int(record.created_at)
        if record.status == "active":
            models.append(Model(id=record.name, created=created, owned_by="hybrid"))
        models.append(Model(id=str(record.ref), created=created, owned_by="hybrid"))
    return ModelList(data=models)


@post("/v1/chat/completions", status_code=200, guards=CHAT)
async def chat_completions(
    data: JSONBody[ChatCompletionRequest], server: NamedDependency[ServerState], request: Request
) -> Response[ChatCompletion]:  # or a Stream of chunks (see server/openapi.py)
    note_model(request.scope, data.model)
    assistant = server.ready()
    adapter = _adapter_for(server, data.model)
    settings = msgspec.structs.replace(
        server.bot.config.generation,
        **{
            key: value
            for key, value in {
                "max_new_tokens": data.max_completion_tokens or data.max_tokens,
                "temperature": data.temperature,
                "top_p": data.top_p,
                "seed": data.seed,
            }.items()
            if value is not None
        },
    )
    conversation = [
        Message("system" if m.role == "developer" else m.role, m.text())  # type: ignore[arg-type]
        for m in data.messages
    ]
    started = time.perf_counter()
    prompt = await anyio.to_thread.run_sync(assistant.prepare, conversation, settings)
    server.metrics.observe_prompt_building(time.perf_counter() - started)
    try:
        stream = assistant.stream(
            prompt,
            adapter=adapter,
            settings=settings,
            stop=data.stop_strings(),
            timeout=server.bot.config.server.request_timeout,
        )
    except AdapterNotFoundError:
        raise _model_not_found(data.model) from None
    if data.stream:
        include_usage = bool(data.stream_options and data.stream_options.include_usage)
        return Stream(
            _events(server, stream, data.model, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    try:
        async for _ in async_deltas(stream):
            pass
    finally:
        stream.cancel()  # a no-op once finished; frees the row if the client left
    assert stream.answer is not None
    _count_tokens(server, stream.answer)
    return Response(_completion(stream.answer, data.model))


def _adapter_for(server: NamedDependency[ServerState], model: str) -> AdapterRef | None:
    """The adapter `model` names (None: the base). Whether it exists, the engine finds
    out when the request is queued."""
    if model == server.base_model_id:
        return None
    try:
        return AdapterRef.parse(model)
    except HybridError:
        raise _model_not_found(model) from None


def _model_not_found(model: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"the model {model!r} does not exist",
        hint="GET /v1/models lists the base model and the adapters",
        param="model",
    )


async def _events(
    server: NamedDependency[ServerState], stream: AnswerStream, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    created = int(time.time())

    def chunk(choices: list[ChunkChoice], **extra: object) -> bytes:
        body = ChatCompletionChunk(
            id=stream.id, created=created, model=model, choices=choices, **extra
        )
        return b"data: " + msgspec.json.encode(body) + b"\n\n"

    try:
        yield chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
        async for delta in async_deltas(stream):
            yield chunk([ChunkChoice(delta=Delta(content=delta))])
        answer = stream.answer
        assert answer is not None
        _count_tokens(server, answer)
        yield chunk(
            [ChunkChoice(delta=Delta(), finish_reason=answer.generation.finish_reason)],
            citations=Citation.numbered(answer.citations),
            ungrounded_figures=answer.ungrounded_figures,
        )
        if include_usage:
            yield chunk([], usage=_usage(answer))
    except HybridError as exc:  # after the stream started: an error event, then [DONE]
        _, detail = detail_of(exc)
        yield b"data: " + msgspec.json.encode(ErrorBody(error=detail)) + b"\n\n"
    finally:
        stream.cancel()  # a no-op once finished; frees the row if the client left
    yield b"data: [DONE]\n\n"


def _count_tokens(server: NamedDependency[ServerState], answer: Answer) -> None:
    generation = answer.generation
    server.metrics.count_tokens(generation.prompt_tokens, generation.completion_tokens)


def _completion(answer: Answer, model: str) -> ChatCompletion:
    return ChatCompletion(
        id=answer.id,
        created=int(time.time()),
        # As OpenAI names the snapshot that answered: NAME@VERSION for an adapter's name.
        model=str(answer.adapter) if answer.adapter else model,
        choices=[
            Choice(
                message=AssistantMessage(content=answer.text),
                finish_reason=answer.generation.finish_reason,
            )
        ],
        usage=_usage(answer),
        citations=Citation.numbered(answer.citations),
        ungrounded_figures=answer.ungrounded_figures,
    )


def _usage(answer: Answer) -> Usage:
    generation = answer.generation
    return Usage(
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.completion_tokens,
        total_tokens=generation.prompt_tokens + generation.completion_tokens,
    )


ROUTES = [list_models, chat_completions]
