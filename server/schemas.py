"""The HTTP API's request and response bodies, as msgspec Structs (validated on the way
in, serialised on the way out). The chat shapes follow OpenAI's, so the official SDK
works unchanged; fields OpenAI has and hybrid does not use are accepted and ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from hybrid.types import Hit

# Every number and string a client sends is bounded here, so that nothing out of range
# reaches sqlite, torch or the file system (a 4xx naming the field instead of a 500).
# `Any`, not `object`: several structs have a field named `object`, which would shadow
# the builtin when the annotations are resolved.
JsonObject = dict[str, Any]
Seed = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
Version = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ShortText = Annotated[str, msgspec.Meta(max_length=10_000)]
LongText = Annotated[str, msgspec.Meta(max_length=1_000_000)]
StopString = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
MaxTokens = Annotated[int, msgspec.Meta(ge=1, le=8192)]  # as generation.max_new_tokens
# One line of printable text: a title or heading cannot carry a line break.
OneLine = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
Metadata = Annotated[
    dict[Annotated[str, msgspec.Meta(max_length=64)], Annotated[str, msgspec.Meta(max_length=512)]],
    msgspec.Meta(max_length=16),
]


class ContentPart(msgspec.Struct, kw_only=True):
    type: Annotated[str, msgspec.Meta(max_length=64)]
    text: LongText | None = None


class ChatMessage(msgspec.Struct, kw_only=True):
    role: Literal["system", "developer", "user", "assistant"]
    content: LongText | Annotated[list[ContentPart], msgspec.Meta(max_length=256)] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool = False


class ChatCompletionRequest(msgspec.Struct, kw_only=True):
    model: Name
    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1, max_length=1024)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] | None = None
    stop: StopString | Annotated[list[StopString], msgspec.Meta(max_length=4)] | None = None
    seed: Seed | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    user: Annotated[str, msgspec.Meta(max_length=256)] | None = None

    def stop_strings(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class Citation(Hit, frozen=True, kw_only=True):
    """A source the answer was given, numbered as the prompt numbered it ([1], [2], ...)."""

    index: int

    @classmethod
    def numbered(cls, hits: list[Hit]) -> list[Citation]:
        return [
            cls(index=number, **msgspec.structs.asdict(hit))
            for number, hit in enumerate(hits, start=1)
        ]


class Usage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(msgspec.Struct, kw_only=True):
    role: str = "assistant"
    content: str = ""


class Choice(msgspec.Struct, kw_only=True):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[Citation]
    # Figures of the answer in none of its sources nor the question: only when nothing
    # kept them out (no sources, or generation.grounded_figures off).
    ungrounded_figures: list[str] = msgspec.field(default_factory=list)
    system_fingerprint: str | None = None


class Delta(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    citations: list[Citation] | None = None
    ungrounded_figures: list[str] | None = None


class Model(msgspec.Struct, kw_only=True):
    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Model]


class ErrorDetail(msgspec.Struct, kw_only=True):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(msgspec.Struct, kw_only=True):
    error: ErrorDetail


class Health(msgspec.Struct, kw_only=True):
    # unavailable: loaded, but the generator (vLLM) does not answer.
    status: Literal["ok", "loading", "failed", "unavailable"]
    detail: str | None = None


class FeedbackRequest(msgspec.Struct, kw_only=True):
    completion_id: Name
    # 1 (bad) to 5 (good); `hybrid data export --from-logs --min-rating N` selects on it.
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    corrected_answer: ShortText | None = None
    comment: ShortText | None = None


class Feedback(msgspec.Struct, kw_only=True):
    id: int
    object: str = "feedback"
    completion_id: str
    rating: int


class SearchRequest(msgspec.Struct, kw_only=True):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    k: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5


class SearchResult(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Hit]


class DocumentInfo(msgspec.Struct, kw_only=True):
    id: str
    object: str = "document"
    title: str
    source: str
    metadata: JsonObject
    updated_at: int


class DocumentDetail(DocumentInfo, kw_only=True):
    # The indexed text (for a Markdown file, with its `# title` heading). None for a
    # document indexed before revisions kept their text: `hybrid index sync --rebuild`.
    text: str | None


class DocumentList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[DocumentInfo]


class DocumentBody(msgspec.Struct, kw_only=True):
    title: OneLine
    text: Annotated[str, msgspec.Meta(min_length=1)]  # its size is index.max_file_mb's


class SyncInfo(msgspec.Struct, kw_only=True):
    object: str = "index.sync"
    version: int | None
    previous: int | None
    published: bool
    added: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: int
    chunks_embedded: int
    chunks_reused: int
    problems: list[str]
    seconds: float


class DocumentChange(msgspec.Struct, kw_only=True):
    document: DocumentInfo | None
    deleted: bool = False
    sync: SyncInfo


class IndexInfo(msgspec.Struct, kw_only=True):
    object: str = "index"
    version: int | None
    documents: int


class AdapterInfo(msgspec.Struct, kw_only=True):
    id: str  # name@version
    object: str = "adapter"
    name: str
    version: int
    status: str
    created_at: int
    promoted_at: int | None
    metrics: JsonObject


class AdapterList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[AdapterInfo]


class PromoteRequest(msgspec.Struct, kw_only=True):
    version: Version | None = None  # default: newest candidate


class FileObject(msgspec.Struct, kw_only=True):
    id: str
    object: str = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str = "processed"
    status_details: str | None = None


class FileList(msgspec.Struct, kw_only=True):
    """A cursor page: the SDK asks for the next one (`after` the last id) while
    `has_more` is true."""

    object: str = "list"
    data: list[FileObject]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


class FileDeleted(msgspec.Struct, kw_only=True):
    id: str
    object: str = "file"
    deleted: bool = True


# -- fine-tuning jobs -------------------------------------------------------------------

Auto = Literal["auto"]


class JobHyperparameters(msgspec.Struct, kw_only=True):
    """ "auto" takes the bot's `[training]` setting; the learning rate is the bot's
    `training.learning_rate` times the multiplier."""

    n_epochs: Auto | Annotated[int, msgspec.Meta(ge=1, le=100)] = "auto"
    batch_size: Auto | Annotated[int, msgspec.Meta(ge=1, le=1024)] = "auto"
    learning_rate_multiplier: Auto | Annotated[float, msgspec.Meta(gt=0.0, le=100.0)] = "auto"


class SupervisedMethod(msgspec.Struct, kw_only=True):
    hyperparameters: JobHyperparameters | None = None


class JobMethod(msgspec.Struct, kw_only=True):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: SupervisedMethod | None = None


class CreateJobRequest(msgspec.Struct, kw_only=True):
    model: Name
    training_file: Name
    validation_file: Name | None = None
    hyperparameters: JobHyperparameters | None = None  # OpenAI's older place for them
    method: JobMethod | None = None
    suffix: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    seed: Seed | None = None
    metadata: Metadata | None = None
    integrations: Annotated[list[JsonObject], msgspec.Meta(max_length=16)] | None = None


class JobError(msgspec.Struct, kw_only=True):
    code: str
    message: str
    param: str | None = None


class FineTuningJob(msgspec.Struct, kw_only=True):
    id: str
    object: str = "fine_tuning.job"
    created_at: int
    model: str
    status: str
    training_file: str
    validation_file: str | None
    hyperparameters: JobHyperparameters
    method: JobMethod
    seed: int
    fine_tuned_model: str | None  # NAME@VERSION, usable as `model` at once
    finished_at: int | None
    trained_tokens: int | None
    error: JobError | None
    user_provided_suffix: str | None
    metadata: dict[str, str] | None
    organization_id: str = "hybrid"
    result_files: list[str] = msgspec.field(default_factory=list)
    integrations: list[JsonObject] = msgspec.field(default_factory=list)
    estimated_finish: int | None = None


class FineTuningJobList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[FineTuningJob]
    has_more: bool


class JobEventObject(msgspec.Struct, kw_only=True):
    id: str
    object: str = "fine_tuning.job.event"
    created_at: int
    level: str
    type: str
    message: str
    data: JsonObject | None = None


class JobEventList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[JobEventObject]
    has_more: bool


class CheckpointMetrics(msgspec.Struct, kw_only=True):
    step: int
    train_loss: float | None = None
    valid_loss: float | None = None


class JobCheckpointObject(msgspec.Struct, kw_only=True):
    id: str
    object: str = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuning_job_id: str
    # NAME@VERSION for the one that was published; NAME:ckpt-step-N (not servable) else.
    fine_tuned_model_checkpoint: str
    step_number: int
    metrics: CheckpointMetrics


class JobCheckpointList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[JobCheckpointObject]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None
