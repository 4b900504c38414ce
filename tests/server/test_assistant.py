from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from support import hit, make_bot

from hybrid import AdapterRef, GenerationSettings, Hit, HybridError
from hybrid.hardware import Placement
from server import Assistant, GenerationEngine
from server.compose import find_adapter
from training import (
    AdapterNotFoundError,
    AdapterRegistry,
    TrainRequest,
    load_base_model,
    train_adapter,
)


@pytest.fixture(scope="module")
def generator(tiny_model_dir: Path) -> GenerationEngine:
    base = load_base_model(
        str(tiny_model_dir),
        base_dir=tiny_model_dir,
        models_dir=tiny_model_dir,
        placement=Placement("cpu", "float32"),
    )
    return GenerationEngine(base)


class KeywordRetriever:
    """A small but real Retriever: documents that share a word with the query."""

    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = docs
        self.queries: list[str] = []

    def search(self, query: str, k: int) -> list[Hit]:
        self.queries.append(query)
        words = set(query.lower().strip("?").split())
        return [
            hit(doc, text) for doc, text in self.docs.items() if words & set(text.lower().split())
        ][:k]


def test_generation_counts_tokens_and_reports_why_it_stopped(generator: GenerationEngine) -> None:
    assistant = Assistant(
        generator, system_prompt="Be brief.", settings=GenerationSettings(max_new_tokens=5)
    )
    answer = assistant.answer("  How long do I have to return an item?  ")
    assert answer.question == "How long do I have to return an item?"
    assert answer.generation.prompt_tokens > 10
    assert 1 <= answer.generation.completion_tokens <= 5
    if answer.generation.completion_tokens == 5:
        assert answer.generation.finish_reason == "length"
    assert answer.citations == []


def test_greedy_decoding_is_deterministic_and_sampling_follows_the_seed(
    generator: GenerationEngine,
) -> None:
    def reply(**settings) -> str:
        assistant = Assistant(
            generator,
            system_prompt="Be brief.",
            settings=GenerationSettings(max_new_tokens=12, **settings),
        )
        return assistant.answer("Do you ship to Canada?").text

    assert reply() == reply()
    assert reply(temperature=1.0, seed=7) == reply(temperature=1.0, seed=7)
    assert len({reply(temperature=1.5, seed=s) for s in range(4)}) > 1


def test_retrieved_sources_reach_the_prompt_and_come_back_as_citations(
    generator: GenerationEngine,
) -> None:
    retriever = KeywordRetriever(
        {"returns": "Return items within 45 days.", "shipping": "Ships in 3 days."}
    )
    seen_prompts = []

    class Recording:
        def generate(self, messages, settings, adapter=None):
            seen_prompts.append(messages)
            return generator.generate(messages, settings, adapter)

    assistant = Assistant(
        Recording(),
        system_prompt="Be brief.",
        settings=GenerationSettings(max_new_tokens=3),
        retriever=retriever,
        top_k=1,
    )
    answer = assistant.answer("Can I return items?")
    assert retriever.queries == ["Can I return items?"]
    assert [hit.document_id for hit in answer.citations] == ["returns"]
    assert "Return items within 45 days." in seen_prompts[0][1].content


def test_an_empty_question_is_refused(generator: GenerationEngine) -> None:
    assistant = Assistant(generator, system_prompt="x", settings=GenerationSettings())
    with pytest.raises(HybridError, match="empty"):
        assistant.answer("   ")


def test_answers_go_through_the_named_adapter_and_the_base_stays_itself(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = make_bot(tmp_path / "bot", base=str(tiny_model_dir), learning_rate=0.05)
    train_adapter(bot, TrainRequest(bot.data_dir / "train.jsonl", max_steps=5))
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        registry.promote("style", 1)
    base = load_base_model(
        str(tiny_model_dir), base_dir=bot.root, models_dir=bot.models_dir,
        placement=Placement("cpu", "float32"),
    )  # fmt: skip
    generator = GenerationEngine(base, adapters=lambda ref: find_adapter(bot, ref))
    assistant = Assistant(
        generator, system_prompt="x", settings=GenerationSettings(max_new_tokens=12)
    )
    plain = assistant.answer("Do you ship to Canada?")
    styled = assistant.answer("Do you ship to Canada?", adapter=AdapterRef("style"))
    assert styled.adapter == AdapterRef("style", 1)  # the active version, resolved
    assert styled.text != plain.text
    again = assistant.answer("Do you ship to Canada?")
    assert (again.text, again.adapter) == (plain.text, None), "the base is untouched"
    with pytest.raises(AdapterNotFoundError, match="no version 2"):
        assistant.answer("Hi", adapter=AdapterRef("style", 2))


def test_a_prompt_longer_than_the_context_is_refused(generator: GenerationEngine) -> None:
    settings = msgspec.structs.replace(GenerationSettings(), max_new_tokens=4)
    assistant = Assistant(generator, system_prompt="x", settings=settings)
    with pytest.raises(HybridError, match="context holds 512"):
        assistant.answer("refund " * 600)


def test_sources_that_overflow_the_context_are_dropped_lowest_ranked_first(
    generator: GenerationEngine,
) -> None:
    """The tiny model holds 512 tokens: three long sources cannot all fit with a 100-token
    answer, so the last-ranked ones go; the question always stays."""
    long_text = "returns " + "policy words for the return window " * 12
    retriever = KeywordRetriever({f"doc{n}": f"{long_text} {n}" for n in range(3)})
    assistant = Assistant(
        generator,
        system_prompt="Be brief.",
        settings=GenerationSettings(max_new_tokens=100),
        retriever=retriever,
        top_k=3,
        budget=generator,
    )
    answer = assistant.answer("What about returns?")
    assert 1 <= len(answer.citations) < 3
    assert [h.document_id for h in answer.citations] == ["doc0", "doc1"][: len(answer.citations)]
    assert answer.generation.prompt_tokens + 100 <= generator.context_window


def test_the_repetition_penalty_spares_line_breaks(generator: GenerationEngine) -> None:
    import torch

    from server.sampling import TokenSampler, whitespace_token_ids

    tokenizer = generator.base.tokenizer
    newline = tokenizer("\n", add_special_tokens=False).input_ids[-1]
    word = tokenizer("Policy", add_special_tokens=False).input_ids[0]
    sampler = TokenSampler(
        GenerationSettings(repetition_penalty=2.0), whitespace_token_ids(tokenizer)
    )

    def best(scores: dict[int, float], answer: list[int]) -> int:
        logits = torch.zeros(len(tokenizer))
        for token, score in scores.items():
            logits[token] = score
        return sampler.next_token(logits, answer)

    assert best({word: 4.0, newline: 3.0}, []) == word
    assert best({word: 4.0, newline: 3.0}, [word]) == newline, "a used word is penalised"
    assert best({newline: 4.0, word: 3.0}, [newline]) == newline, "a line break is not"
