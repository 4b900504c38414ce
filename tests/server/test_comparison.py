"""A candidate against the active version, question by question, and the optional judge
of `hybrid eval --compare` and the retrain gate, against a real OpenAI-compatible
endpoint on a loopback port. No judge model's weights can ship with the tests, so the
endpoint's "model" is a rule that reads the prompt it is sent: a fair judge prefers the
answer that repeats the reference, a biased one always says "A" (the position bias
both orders exist to cancel), a broken one replies with no verdict."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, Request, get, post
from litestar.params import JSONBody
from support import serving

from hybrid.config import JudgeSettings
from server.evaluation import VariantScore
from server.flywheel.comparison import compare
from server.flywheel.judge import INSTRUCTIONS, openai_judge

REFERENCE = "Return labels are free within 30 days."
GOOD = "Hi there! Return labels are free within 30 days. Happy trails!"
VAGUE = "Hi there! Please see our returns page. Happy trails!"


def _answer_after(label: str, prompt: str) -> str:
    return re.search(rf"Answer {label}: (.*?)(?:\n\n|$)", prompt, re.S).group(1)


def _verdict(model: str, prompt: str) -> str:
    if model == "biased":
        return "A"
    if model == "broken":
        return "I cannot decide."
    reference = re.search(r"Reference answer: (.*?)\n\n", prompt, re.S).group(1)
    a, b = (reference in _answer_after(label, prompt) for label in "AB")
    return "A" if a and not b else "B" if b and not a else "T"


@pytest.fixture(scope="module")
def judge_endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The endpoint's base URL and every request it received (body and key)."""
    received: list[dict[str, Any]] = []

    @post("/v1/chat/completions", status_code=200)
    async def chat(request: Request, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        received.append({"body": data, "authorization": request.headers.get("authorization")})
        prompt = data["messages"][-1]["content"]
        reply = _verdict(data["model"], prompt)
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]}

    @get("/healthz")
    async def healthz() -> str:
        return "ok"

    with serving(Litestar([chat, healthz])) as url:
        yield f"{url}/v1", received


def _judge(endpoint: str, model: str, **settings: Any):
    return openai_judge(JudgeSettings(url=endpoint, model=model, **settings))


def test_a_fair_judge_decides_both_ways_after_asking_in_both_orders(judge_endpoint) -> None:
    endpoint, received = judge_endpoint
    received.clear()
    judge = _judge(endpoint, "fair")
    assert judge("Are return labels free?", REFERENCE, GOOD, VAGUE) == "win"
    assert judge("Are return labels free?", REFERENCE, VAGUE, GOOD) == "loss"
    assert judge("Are return labels free?", REFERENCE, VAGUE, VAGUE) == "tie"
    first, swapped = (call["body"] for call in received[:2])
    assert _answer_after("A", first["messages"][-1]["content"]) == GOOD
    assert _answer_after("A", swapped["messages"][-1]["content"]) == VAGUE
    assert first["messages"][0] == {"role": "system", "content": INSTRUCTIONS}
    assert first["temperature"] == 0 and first["model"] == "fair"


def test_a_judge_that_prefers_whichever_answer_comes_first_gives_ties(judge_endpoint) -> None:
    endpoint, _ = judge_endpoint
    judge = _judge(endpoint, "biased")
    assert judge("Are return labels free?", REFERENCE, GOOD, VAGUE) == "tie"
    assert judge("Are return labels free?", REFERENCE, VAGUE, GOOD) == "tie"


def test_a_reply_without_a_verdict_is_no_verdict(judge_endpoint) -> None:
    endpoint, _ = judge_endpoint
    assert _judge(endpoint, "broken")("Q?", REFERENCE, GOOD, VAGUE) is None
    assert _judge(endpoint.replace("/v1", "/nowhere"), "fair")("Q?", REFERENCE, GOOD, VAGUE) is None


def test_the_key_is_read_from_the_named_environment_variable(
    judge_endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, received = judge_endpoint
    monkeypatch.setenv("JUDGE_KEY", "sk-judge")
    received.clear()
    _judge(endpoint, "fair", api_key_env="JUDGE_KEY")("Q?", REFERENCE, GOOD, VAGUE)
    assert {call["authorization"] for call in received} == {"Bearer sk-judge"}


def _scored(variant: str, answer: str, **checks: Any) -> VariantScore:
    """One answered golden question, as the evaluation records it."""
    recorded = {
        "id": "golden-001",
        "question": "Are return labels free?",
        "reference": REFERENCE,
        "answer": answer,
        "answerable": True,
        "handed_over": False,
        "facts": ["30 days"],
        "missing_facts": [],
        "invented_figures": [],
        "follows_format": True,
        "finish_reason": "stop",
    }
    return VariantScore(variant, [{**recorded, **checks}])


def test_an_answer_cut_off_by_the_token_limit_is_not_right_whatever_it_stated() -> None:
    looping = "Hi there! Policy: 30 days Policy: 30 days Policy: 30 days Policy: 30"
    active = _scored("kestrel@1", looping, finish_reason="length", follows_format=False)
    whole = compare(_scored("kestrel@2", GOOD), active)
    assert whole.questions[0]["outcome"] == "win" and not whole.questions[0]["active_right"]
    cut = compare(active, _scored("kestrel@2", GOOD))
    assert cut.questions[0]["outcome"] == "loss" and cut.newly_wrong == ["golden-001"]


def test_an_answer_that_breaks_the_format_is_not_right_though_it_states_the_facts() -> None:
    unformatted = "Return labels are free within 30 days.\nCheers!"
    active = _scored("kestrel@1", unformatted, follows_format=False)
    formatted = compare(_scored("kestrel@2", GOOD), active)
    assert formatted.questions[0]["outcome"] == "win" and formatted.newly_wrong == []
    assert not formatted.questions[0]["active_right"] and formatted.questions[0]["candidate_right"]
    broken = compare(active, _scored("kestrel@2", GOOD))
    assert broken.questions[0]["outcome"] == "loss" and broken.newly_wrong == ["golden-001"]


def test_a_candidate_that_only_matches_the_active_version_ties_everything() -> None:
    same = compare(_scored("kestrel@2", GOOD), _scored("kestrel@1", GOOD))
    assert (same.win_rate, same.interval, same.newly_wrong) == (0.5, (0.5, 0.5), [])


def test_the_judge_decides_only_what_the_checks_tie(judge_endpoint) -> None:
    endpoint, received = judge_endpoint
    candidate, active = _scored("kestrel@2", GOOD), _scored("kestrel@1", VAGUE)
    # Both state the key fact in the format: the checks tie, and the judge breaks it.
    judged = compare(candidate, active, _judge(endpoint, "fair"))
    assert [(q["outcome"], q["decided_by"]) for q in judged.questions] == [("win", "judge")]
    # Once the checks tell them apart, the judge is not asked.
    active.answers[0]["missing_facts"] = ["30 days"]
    received.clear()
    checked = compare(candidate, active, _judge(endpoint, "biased"))
    assert [(q["outcome"], q["decided_by"]) for q in checked.questions] == [("win", "checks")]
    assert received == []
    broken = compare(candidate, _scored("kestrel@1", VAGUE), _judge(endpoint, "broken"))
    assert broken.judge_failures == 1 and broken.questions[0]["outcome"] == "tie"
