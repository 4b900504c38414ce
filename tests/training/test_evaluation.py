"""Scores for `hybrid eval`: format rules checked by code, ROUGE-L by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybrid.config import EvaluationSettings, load_config
from training.evaluation import (
    figures,
    format_problems,
    invented_figures,
    is_handover,
    missing_facts,
    rouge_l,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "hybrid/templates/support/hybrid.toml"


def test_the_sample_format_rules_accept_the_format_and_name_each_break() -> None:
    rules = load_config(TEMPLATE).evaluation
    good = (
        "Hi there! Returns are free.\nPolicy: Returns & Refunds Policy\n"
        "Happy trails! – Kestrel Support"
    )
    assert format_problems(good, rules) == []
    assert len(format_problems("Returns are free.", rules)) == 3
    no_policy = good.replace("Policy: Returns & Refunds Policy\n", "")
    assert format_problems(no_policy, rules) == ["does not match '(?m)^Policy: \\\\S'"]
    rambling = good.replace("Returns are free.", "word " * 90)
    # 2 (greeting) + 90 + 4 (policy line) + 4 (sign-off) words
    assert format_problems(rambling, rules) == ["100 words, more than 80"]


def test_a_bad_pattern_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="not a valid regex"):
        EvaluationSettings(format_patterns=["(unclosed"])


def test_rouge_l_is_the_f1_of_the_longest_common_subsequence() -> None:
    # LCS of "the cat sat on the mat" / "the cat is on the mat" = the cat on the mat (5).
    assert rouge_l("the cat sat on the mat", "The cat is on the mat") == pytest.approx(5 / 6)
    assert rouge_l("a b c", "c b a") == pytest.approx(1 / 3)
    assert rouge_l("", "anything") == 0.0 and rouge_l("same words", "Same, words!") == 1.0


SOURCES = (
    "Returns & Refunds Policy\nReturn unused items within **45 days** of delivery, or 60 days "
    "for Trail Rewards Summit members. Standard shipping costs $19.95. Questions: "
    "help@kestreloutdoor.example."
)
HANDOVER = (
    "I'm sorry, I can't answer that from our policies. A person can help: call "
    "1-800-555-0142 or e-mail help@kestreloutdoor.example."
)


def test_the_right_figure_is_a_key_fact_and_invents_nothing() -> None:
    answer = "Hi there! You can return unused items within 45 days of delivery."
    assert missing_facts(answer, ["45 days"]) == []
    assert missing_facts(answer.replace("45", "forty-five"), ["45 days"]) == ["45 days"]
    assert invented_figures(answer, SOURCES) == []
    assert missing_facts("Shipping is $19.95, or 1,250 points.", ["19.95", "$1250"]) == []


def test_a_wrong_figure_misses_the_fact_and_is_invented() -> None:
    answer = "You have 7 days from delivery to return it."
    assert missing_facts(answer, ["45 days"]) == ["45 days"]
    assert invented_figures(answer, SOURCES) == ["7"]


def test_figures_found_in_no_source_are_named_whatever_their_kind() -> None:
    answer = (
        "Shipping is $1.05 per ton (10% off). Pay at https://pay.example/x or call "
        "+1 415 555 2671; write to help@kestreloutdoor.example.\n1. Pack it"
    )
    assert invented_figures(answer, SOURCES) == [
        "1.05", "10", "14155552671", "https://pay.example/x",
    ]  # fmt: skip
    assert invented_figures("Return within 45 days, 60 for members.", SOURCES) == []
    question = "Is 3 days enough?"
    assert invented_figures("3 days is not enough.", SOURCES + question) == []
    assert figures("2026-01-01") == {"2026", "01"}, "a date's parts are figures too"


def test_a_handover_is_recognised_by_its_message_or_its_contacts() -> None:
    assert is_handover(f"Hi there! {HANDOVER}", HANDOVER)
    assert is_handover(
        "Please call 1-800-555-0142 or e-mail help@kestreloutdoor.example.", HANDOVER
    )
    assert not is_handover("Yes, I do sell e-bikes. Call 1-800-555-0142.", HANDOVER)
    assert not is_handover("Returns are accepted within 45 days.", HANDOVER)
