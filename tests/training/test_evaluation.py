"""Scores for `hybrid eval`: format rules checked by code, ROUGE-L by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybrid.config import EvaluationSettings, load_config
from training.evaluation import format_problems, rouge_l

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
