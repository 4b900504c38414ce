"""One behaviour suite, run over both generators: hybrid's own engine and the vLLM
client (a real vLLM server). What a caller of the Generator protocol relies on: text
deltas that add up to the answer, why it stopped, token counts, stop strings, adapters
by name and by version, cancelling, and the errors raised before generating."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from vllm_support import with_generator

from hybrid import AdapterRef, Bot, GenerationSettings, Message
from hybrid.errors import InvalidInputError
from hybrid.protocols import GenerationRequest, collect, generate
from server.compose import ServedGenerator, compose
from server.vllm_command import VllmProcess
from training import AdapterNotFoundError

pytestmark = pytest.mark.engines
GREEDY = GenerationSettings(max_new_tokens=24, grounded_figures=False)
QUESTION = [
    Message("system", "You are a support assistant."),
    Message("user", "How long do I have to return an item?"),
]


@pytest.fixture(scope="module", params=["local", "vllm"])
def generator(request: pytest.FixtureRequest, engine_bot: Bot) -> Iterator[ServedGenerator]:
    if request.param == "vllm":
        request.getfixturevalue("vllm")
    parts = compose(with_generator(engine_bot, request.param), retrieval=False)
    yield parts.generator
    parts.generator.close()


def ask(adapter: AdapterRef | None = None, **options) -> GenerationRequest:
    settings = msgspec.structs.replace(GREEDY, **options.pop("settings", {}))
    return GenerationRequest(QUESTION, settings, adapter, **options)


def test_deltas_add_up_to_the_answer_with_its_token_counts(generator: ServedGenerator) -> None:
    prompt_ids = generator.prompt_ids(QUESTION)
    stream = generator.stream(ask(prompt_ids=prompt_ids))
    deltas = list(iter(stream.next_delta, None))
    result = stream.result
    assert result is not None and len(deltas) > 1
    assert "".join(deltas).strip() == result.text and result.text
    assert result.prompt_tokens == len(prompt_ids)
    assert 1 <= result.completion_tokens <= GREEDY.max_new_tokens


def test_the_token_limit_ends_the_answer_with_length(generator: ServedGenerator) -> None:
    result = generate(generator, ask(settings={"max_new_tokens": 5}))
    assert result.finish_reason == "length" and result.completion_tokens == 5


def test_a_stop_string_ends_the_answer_before_it(generator: ServedGenerator) -> None:
    full = generate(generator, ask()).text
    words = full.split()
    assert len(words) >= 3, full
    stopped = generate(generator, ask(stop=(words[2],)))
    assert words[2] not in stopped.text and full.startswith(stopped.text)
    assert stopped.finish_reason == "stop"


def test_an_adapter_answers_in_its_own_way_under_its_version(
    generator: ServedGenerator,
) -> None:
    base = generate(generator, ask())
    by_name = generate(generator, ask(AdapterRef("style")))
    candidate = generate(generator, ask(AdapterRef("terse", 1)))
    assert base.adapter is None
    assert by_name.adapter == AdapterRef("style", 1), "a name answers with its active version"
    assert candidate.adapter == AdapterRef("terse", 1)
    assert len({base.text, by_name.text, candidate.text}) == 3, "each answers its own way"


def test_an_unknown_adapter_or_a_prompt_past_the_context_is_refused_at_once(
    generator: ServedGenerator,
) -> None:
    with pytest.raises(AdapterNotFoundError):
        generator.stream(ask(AdapterRef("nosuch")))
    too_long = [Message("user", "word " * (generator.context_window + 10))]
    with pytest.raises(InvalidInputError, match="context"):
        generator.stream(GenerationRequest(too_long, GREEDY))


def test_a_cancelled_answer_ends_early(generator: ServedGenerator) -> None:
    stream = generator.stream(ask(settings={"max_new_tokens": 400}))
    assert stream.next_delta(timeout=120) is not None
    stream.cancel()
    assert collect(stream).completion_tokens < 400


def test_both_generators_are_given_the_same_prompt_tokens(
    engine_bot: Bot, vllm: VllmProcess
) -> None:
    """The prompt is hybrid's: rendered and tokenized here, so vLLM counts what the local
    engine counts (and what training saw)."""
    counts = []
    for kind in ("local", "vllm"):
        parts = compose(with_generator(engine_bot, kind), retrieval=False)
        try:
            counts.append(generate(parts.generator, ask()).prompt_tokens)
        finally:
            parts.generator.close()
    assert counts[0] == counts[1] == len(parts.generator.prompt_ids(QUESTION))
