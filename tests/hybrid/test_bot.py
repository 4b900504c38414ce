from __future__ import annotations

from pathlib import Path

import pytest

from hybrid import BotNotFoundError, HybridError, find_bot, init_bot


@pytest.fixture
def bot_root(tmp_path: Path) -> Path:
    root = tmp_path / "acme"
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "hybrid.toml").write_text('[bot]\nname = "Acme"\n')
    return root


def test_found_from_the_bot_folder_itself(bot_root: Path) -> None:
    assert find_bot(cwd=bot_root, environ={}).root == bot_root.resolve()


def test_found_from_a_folder_below_it(bot_root: Path) -> None:
    bot = find_bot(cwd=bot_root / "docs" / "deep", environ={})
    assert bot.root == bot_root.resolve()
    assert bot.config.bot.name == "Acme"


def test_dash_c_starts_the_search_elsewhere(bot_root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert find_bot(bot_root / "docs", cwd=elsewhere, environ={}).root == bot_root.resolve()


def test_the_environment_variable_names_the_bot(bot_root: Path, tmp_path: Path) -> None:
    bot = find_bot(cwd=tmp_path, environ={"HYBRID_BOT": str(bot_root)})
    assert bot.root == bot_root.resolve()


def test_dash_c_wins_over_the_environment(bot_root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "hybrid.toml").write_text("")
    bot = find_bot(other, environ={"HYBRID_BOT": str(bot_root)})
    assert bot.root == other.resolve()


def test_no_bot_anywhere_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BotNotFoundError, match=r"no hybrid\.toml") as caught:
        find_bot(cwd=tmp_path, environ={})
    assert "hybrid init" in str(caught.value)


def test_an_environment_variable_pointing_nowhere_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BotNotFoundError, match="not a bot folder"):
        find_bot(cwd=tmp_path, environ={"HYBRID_BOT": str(tmp_path / "missing")})


def test_init_creates_a_complete_bot_folder(tmp_path: Path) -> None:
    bot = init_bot(tmp_path / "new-bot")
    assert bot.config_file.is_file()
    assert len(list(bot.docs_dir.glob("*.md"))) >= 12
    assert (bot.data_dir / "train.jsonl").is_file()
    assert (bot.data_dir / "golden.jsonl").is_file()
    assert (bot.root / ".gitignore").read_text() == ".hybrid/\n"
    assert not list(tmp_path.glob(".*init*")), "no staging folder is left behind"


def test_init_fills_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert init_bot(tmp_path / "empty").config_file.is_file()


def test_init_never_overwrites(tmp_path: Path, bot_root: Path) -> None:
    before = (bot_root / "hybrid.toml").read_text()
    with pytest.raises(HybridError, match="already a bot folder"):
        init_bot(bot_root)
    assert (bot_root / "hybrid.toml").read_text() == before
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("keep me")
    with pytest.raises(HybridError, match="not empty"):
        init_bot(tmp_path / "full")
    assert (tmp_path / "full" / "notes.txt").read_text() == "keep me"


def test_init_rejects_an_unknown_template(tmp_path: Path) -> None:
    with pytest.raises(HybridError, match="unknown template 'legal'"):
        init_bot(tmp_path / "x", "legal")
    assert not (tmp_path / "x").exists()
