"""Retrieval-aware training: the prompt an adapter is trained on is byte-for-byte the
prompt the assistant sends when serving the same question."""

from __future__ import annotations

from pathlib import Path

from support import make_bot

from hybrid import GenerationSettings
from hybrid.hardware import Placement
from indexes import HybridRetriever, embedder_for_bot, sync_index
from server import Assistant, GenerationEngine
from training import (
    TrainRequest,
    load_base_model,
    read_dataset,
    render_chat,
    tokenize_example,
    train_adapter,
    with_retrieval,
)


def test_training_and_serving_prompts_are_byte_identical(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    # Short chunks: three sources and the question fit the tiny model's 512 tokens.
    bot = make_bot(tmp_path / "bot", base=str(tiny_model_dir), chunk_tokens=16, chunk_overlap=2)
    sync_index(bot, embedder_for_bot(bot))
    retriever = HybridRetriever.for_bot(bot, embedder_for_bot(bot))
    base = load_base_model(
        str(tiny_model_dir), base_dir=bot.root, models_dir=bot.models_dir,
        placement=Placement("cpu", "float32"),
    )  # fmt: skip
    example = read_dataset(bot.data_dir / "train.jsonl").examples[0]
    question = example.messages[1].content
    trained = with_retrieval(
        example, retriever, system_prompt=bot.config.bot.system_prompt, top_k=3
    )

    served = []

    class Recording(GenerationEngine):
        def stream(self, request):
            served.append(request.messages)
            return super().stream(request)

    assistant = Assistant(
        Recording(base),
        system_prompt=bot.config.bot.system_prompt,
        settings=GenerationSettings(max_new_tokens=2),
        retriever=retriever,
        top_k=3,
    )
    answer = assistant.answer(question)
    assert len(answer.citations) == 3 and '<source id="3"' in served[0][1].content
    assert list(trained.messages[:-1]) == served[0]
    serving_prompt = render_chat(base.tokenizer, served[0], add_generation_prompt=True)
    tokens = tokenize_example(base.tokenizer, trained)
    first_trained = next(i for i, label in enumerate(tokens.labels) if label != -100)
    assert base.tokenizer.decode(tokens.input_ids[:first_trained]) == serving_prompt
    assert trained.messages[-1] == example.messages[-1]  # the answer is unchanged

    result = train_adapter(
        bot, TrainRequest(bot.data_dir / "train.jsonl", retriever=retriever, max_steps=1)
    )
    assert result.adapter.manifest["with_retrieval"] is True
