"""Questions the documents cannot answer: the threshold is calibrated from answerable
and unanswerable questions, and over HTTP such a question gets the hand-over, given
without the model, while an answerable one is answered from its sources."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from support import serving, synced_bot

from hybrid import Bot
from hybrid.config import write_setting
from indexes import calibrate_handover, open_retriever
from server.app import create_app

ANSWERABLE = [
    "How long do I have to return an item?",
    "How much is expedited shipping?",
    "Do gift cards expire?",
    "How long does a warranty repair take?",
]
# Out of scope as the model-free hashing embedder sees them: hardly a word of the docs.
UNANSWERABLE = ["Explain quantum chromodynamics.", "Recommend a violin teacher."]


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Bot:
    bot = synced_bot(tmp_path_factory.mktemp("handover") / "bot", base=str(tiny_model_dir))
    calibration = calibrate_handover(open_retriever(bot), ANSWERABLE, UNANSWERABLE, max_false=0)
    assert calibration.handed_over_answerable == 0, "at most max_false of them"
    assert calibration.handed_over_unanswerable >= 1, calibration
    write_setting(bot.config_file, "retrieval", "handover_below", calibration.threshold)
    return Bot.open(bot.root)


def test_calibration_is_written_to_the_config_with_its_comments(bot: Bot) -> None:
    text = bot.config_file.read_text()
    assert text.count("handover_below =") == 1 and "# Hand over (bot.handover)" in text
    assert bot.config.retrieval.handover_below > 0


def test_an_out_of_scope_question_gets_the_handover_over_http(bot: Bot) -> None:
    retriever = open_retriever(bot)
    below = [
        q for q in UNANSWERABLE if retriever.relevance(q) < bot.config.retrieval.handover_below
    ]
    with serving(create_app(bot)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        model = client.models.list().data[0].id
        handed = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": below[0]}]
        )
        assert handed.choices[0].message.content == bot.config.bot.handover
        assert handed.usage.completion_tokens == 0 and handed.model_extra["citations"] == []
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": below[0]}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
            bot.config.bot.handover
        )
        answered = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": ANSWERABLE[0]}], max_tokens=4
        )
        assert answered.choices[0].message.content != bot.config.bot.handover
        assert answered.model_extra["citations"], "answered from its sources"
