"""`hybrid data lint`: each check finds what it is for, on real files; the CLI exits 1 on
errors and writes a redacted copy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import make_bot

from training import lint_data, read_dataset, write_redacted
from training.pii import find_pii, redact

SYSTEM = {"role": "system", "content": "You are Kestrel's support assistant."}


def chat(question: str, answer: str, *, system: bool = True) -> dict[str, object]:
    turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"messages": ([SYSTEM] if system else []) + turns}


def write(path: Path, *records: object) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def checks(report, severity: str) -> list[tuple[int | None, str]]:
    return [(p.line, p.check) for p in report.problems if p.severity == severity]


def test_a_clean_file_passes(tmp_path: Path) -> None:
    file = write(
        tmp_path / "train.jsonl",
        chat("How long is the return window?", "45 days from delivery."),
        chat("Do gift cards expire?", "No, gift cards never expire."),
    )
    report = lint_data(file)
    assert report.ok and report.problems == []


def test_structure_errors_name_their_lines(tmp_path: Path) -> None:
    file = write(
        tmp_path / "train.jsonl",
        chat("Fine question", "Fine answer."),
        chat("Empty answer?", "   "),
        {
            "messages": [
                {"role": "assistant", "content": "I speak first"},
                {"role": "user", "content": "odd"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "user", "content": "q2"},
                {"role": "assistant", "content": "a"},
            ]
        },
        {"messages": [SYSTEM, {"role": "user", "content": "only a question"}]},
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "weight": 0},
            ]
        },
    )
    report = lint_data(file)
    assert not report.ok
    assert checks(report, "error") == [
        (2, "empty_turn"), (3, "role_order"), (4, "role_order"), (5, "role_order"),
        (6, "nothing_to_train"),
    ]  # fmt: skip
    assert report.bad_lines(file) == {2, 3, 4, 5, 6}


def test_duplicates_near_duplicates_and_contradictions_are_warnings(tmp_path: Path) -> None:
    answer = "Standard shipping costs $5.95 and takes three to five business days."
    file = write(
        tmp_path / "train.jsonl",
        chat("How much does standard shipping cost?", answer),
        chat("How much does standard shipping cost?", answer),  # exact duplicate
        chat("how much does standard shipping cost", answer + " "),  # same once normalised
        chat(
            "How much does standard shipping cost, and how long does it take to arrive?",
            "Standard shipping costs $5.95 and takes three to five business days to arrive.",
        ),
        chat("Can I return a used tent?", "Yes, within 45 days, used or not."),
        chat("Can I return a used tent?", "No. Used tents cannot be returned at all."),
    )
    report = lint_data(file)
    assert report.ok  # warnings do not fail the lint
    found = checks(report, "warning")
    assert (2, "duplicate") in found and (3, "duplicate") in found
    assert (6, "contradiction") in found
    contradiction = next(p for p in report.problems if p.check == "contradiction")
    assert "line 5" in contradiction.message
    assert all("duplicate of line 1" in p.message for p in report.problems
               if p.check == "duplicate")  # fmt: skip
    assert (4, "near_duplicate") not in found  # another question sharing the answer


def test_a_near_duplicate_is_found_among_many_examples(tmp_path: Path) -> None:
    records = [chat(f"Question number {i} about item {i * 7}", f"Answer {i} is {i * 3}.")
               for i in range(400)]  # fmt: skip
    answer = "Unused items can be returned within 45 days of delivery."
    records.append(chat("How long is the return window for unused items?", answer))
    records.append(chat("How long is the return window for the unused items?", answer))
    report = lint_data(write(tmp_path / "train.jsonl", *records))
    assert [(p.line, p.check) for p in report.problems] == [(402, "near_duplicate")]
    assert "line 401" in report.problems[0].message


def test_too_long_examples_are_errors_with_length_statistics(tmp_path: Path) -> None:
    file = write(
        tmp_path / "train.jsonl",
        chat("short", "short answer"),
        chat("long " * 50, "long answer " * 50),
    )
    report = lint_data(
        file,
        count_tokens=lambda example: sum(len(m.content.split()) for m in example.messages),
        max_seq_length=60,
    )
    assert checks(report, "error") == [(2, "too_long")]
    assert "max_seq_length = 60" in report.errors[0].message
    stats = report.length_stats()
    assert stats is not None and stats["max"] > 60 > stats["min"]


def test_evaluation_questions_copied_from_training_are_caught(tmp_path: Path) -> None:
    train = write(
        tmp_path / "train.jsonl",
        chat("How long is the return window for unused items?", "45 days."),
        chat("Do you price match Amazon?", "Yes, authorised retailers only."),
    )
    evaluation = write(
        tmp_path / "eval.jsonl",
        {"question": "How long is the return window for unused items?", "reference": "45 days."},
        {"question": "How long is the return window for the unused items?", "reference": "45."},
        {"question": "Is there a repair service?", "reference": "Yes."},
    )
    report = lint_data(train, eval_file=evaluation)
    overlap = [(p.file, p.line, p.severity) for p in report.problems if p.check == "eval_overlap"]
    assert overlap == [(str(evaluation), 1, "error"), (str(evaluation), 2, "warning")]
    assert not report.ok


def test_personal_data_is_found_masked_and_redacted(tmp_path: Path) -> None:
    text = (
        "Mail jane.doe@example.com or call +1 (415) 555-2671; card 4111 1111 1111 1111. "
        "Order 2024-11-02, ref 1234567, support 1-800-555-0142."
    )
    kinds = [(f.kind, f.text) for f in find_pii(text, allowed=["1-800-555-0142"])]
    assert kinds == [
        ("email", "jane.doe@example.com"),
        ("phone", "+1 (415) 555-2671"),
        ("card", "4111 1111 1111 1111"),
    ]
    assert find_pii("card 4111 1111 1111 1112 fails the Luhn check") == []
    assert [f.kind for f in find_pii("my card is 4111111111111111, call me on 4155552671")] == [
        "card",
        "phone",
    ]

    assert redact(text, ["1-800-555-0142"]).startswith(
        "Mail [EMAIL] or call [PHONE]; card [CARD_NUMBER]."
    )
    file = write(tmp_path / "train.jsonl", chat("My email is jane.doe@example.com", "Thanks!"))
    report = lint_data(file)
    (problem,) = report.problems
    assert problem.check == "personal_data" and "jane.doe" not in problem.message
    target = tmp_path / "redacted.jsonl"
    assert write_redacted(report.train, target) == 1
    (clean,) = read_dataset(target).examples
    assert clean.messages[1].content == "My email is [EMAIL]"


def test_order_and_tracking_numbers_are_not_personal_data() -> None:
    references = [
        "Your order 4155552671 shipped on Monday.",
        "Order #4111111111111111 is on its way.",
        "The tracking number is 1234 5678 9012.",
        "Invoice no. 2024-0042-3371 is attached.",
        "Item 30569309025904 is back in stock.",  # passes Luhn, a bare digit run
        "We refunded 123456789012 points.",
    ]
    for text in references:
        assert find_pii(text) == [], text


@pytest.fixture
def cli_bot(tmp_path: Path, tiny_model_dir: Path):
    return make_bot(tmp_path / "bot", base=str(tiny_model_dir))


def run_lint(bot, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybrid", "-C", str(bot.root), "data", "lint", *args],
        capture_output=True,
        text=True,
    )


def test_conversations_no_template_can_render_are_errors_not_crashes(cli_bot, tmp_path) -> None:
    file = write(
        tmp_path / "odd.jsonl",
        chat("Fine question", "Fine answer."),
        {"messages": [{"role": "assistant", "content": "I speak first and alone"}]},
        {
            "messages": [
                {"role": "user", "content": "a\ud800"},
                {"role": "assistant", "content": "b"},
            ]
        },
    )
    result = run_lint(cli_bot, str(file), "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    problems = {(p["line"], p["check"]) for p in json.loads(result.stdout)["problems"]}
    assert problems == {(2, "role_order"), (3, "encoding"), (None, "system_prompt_added")}


def test_the_cli_passes_the_sample_data_and_fails_a_broken_file(cli_bot, tmp_path: Path) -> None:
    sample = run_lint(cli_bot, str(cli_bot.data_dir / "train.jsonl"),
                      "--eval", str(cli_bot.data_dir / "golden.jsonl"))  # fmt: skip
    assert sample.returncode == 0, sample.stderr
    assert "322 examples" in sample.stdout and "OK: 0 error(s)" in sample.stdout
    assert "tokens per example: min" in sample.stdout
    broken = write(tmp_path / "broken.jsonl", chat("q", "a"), *["{oops"] * 0)
    broken.write_text(broken.read_text() + "{oops\n" * 15)
    result = run_lint(cli_bot, str(broken), "--json")
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert payload["errors"] == 15 and payload["problems"][0]["line"] == 2
    text = run_lint(cli_bot, str(broken))
    assert text.returncode == 1 and "… and 5 more parse problem(s)" in text.stdout


def test_examples_without_a_system_turn_are_measured_and_trained_with_the_bots(
    cli_bot, tmp_path: Path
) -> None:
    from training import load_tokenizer, tokenize_example
    from training.datasets import with_system_prompt

    file = write(tmp_path / "bare.jsonl", chat("Do gift cards expire?", "No.", system=False))
    result = run_lint(cli_bot, str(file), "--json")
    assert result.returncode == 0, result.stdout
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["check"] == "system_prompt_added" and problem["severity"] == "warning"
    (example,) = read_dataset(file).examples
    tokenizer = load_tokenizer(cli_bot.config.models.base, base_dir=cli_bot.root,
                               models_dir=cli_bot.models_dir)  # fmt: skip
    trained = tokenize_example(tokenizer, with_system_prompt(example, "Be Kestrel."))
    prompt = tokenizer.decode(trained.input_ids)
    assert "Be Kestrel." in prompt and "SmolLM" not in prompt, "never the template's default"
