"""A judge model (`[evaluation.judge]`, any OpenAI-compatible chat endpoint) that says
which of two answers is better. Each pair is judged in both orders, and only a verdict
that survives the swap counts: a judge that prefers whichever answer comes first (a
common bias) gives ties, not wins."""

from __future__ import annotations

import os
import re

from hybrid.config import JudgeSettings
from server.flywheel.comparison import Judge, Outcome

INSTRUCTIONS = (
    "You compare two answers of a customer-support assistant to the same question. The "
    "better answer states the facts of the reference answer, invents nothing, and is "
    "polite and brief. Reply with one letter only: A if answer A is better, B if answer B "
    "is better, T if they are equally good."
)
_VERDICT = re.compile(r"\b([ABT])\b")


def openai_judge(settings: JudgeSettings) -> Judge:
    """A Judge that asks `settings.model` at `settings.url`, both orders."""
    import httpx

    key = os.environ.get(settings.api_key_env, "") if settings.api_key_env else ""
    client = httpx.Client(
        base_url=settings.url.rstrip("/"),
        timeout=settings.timeout,
        headers={"Authorization": f"Bearer {key}"} if key else {},
    )

    def ask(question: str, reference: str, first: str, second: str) -> str | None:
        prompt = (
            f"Question: {question}\n\nReference answer: {reference}\n\n"
            f"Answer A: {first}\n\nAnswer B: {second}\n\nWhich is better: A, B or T?"
        )
        try:
            response = client.post(
                "/chat/completions",
                json={
                    "model": settings.model,
                    "messages": [
                        {"role": "system", "content": INSTRUCTIONS},
                        {"role": "user", "content": prompt},
                    ],
                    "temperature": 0,
                    "max_tokens": 8,
                },
            )
            response.raise_for_status()
            text = response.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return None
        found = _VERDICT.search(text.strip().upper())
        return found.group(1) if found else None

    def judge(question: str, reference: str, candidate: str, active: str) -> Outcome | None:
        forward = ask(question, reference, candidate, active)
        backward = ask(question, reference, active, candidate)
        if forward is None or backward is None:
            return None
        if (forward, backward) == ("A", "B"):
            return "win"
        if (forward, backward) == ("B", "A"):
            return "loss"
        return "tie"

    return judge
