from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from hybrid import Config, ConfigError, load_config
from hybrid.config import write_setting

TEMPLATE_CONFIG = (
    Path(__file__).resolve().parents[2] / "hybrid" / "templates" / "support" / "hybrid.toml"
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hybrid.toml"
    path.write_text(text)
    return path


def test_an_empty_file_gives_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config == Config()
    assert config.models.base == "embedded:smollm2-135m-instruct"
    assert config.generation.temperature == 0.0


def test_values_are_read_into_typed_settings(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, '[bot]\nname = "Acme"\n[generation]\nmax_new_tokens = 64\ntop_p = 0.9\n')
    )
    assert config.bot.name == "Acme"
    assert config.generation.max_new_tokens == 64
    assert config.generation.top_p == 0.9


@pytest.mark.parametrize(
    ("text", "key", "value", "line"),
    [
        ("[generation]\nseed = 1\ntemperature = -1\n", "generation.temperature", "-1", 3),
        ('[generation]\nmax_new_tokens = "many"\n', "generation.max_new_tokens", '"many"', 2),
        ("[generation]\nmax_new_tokens = 0\n", "generation.max_new_tokens", "0", 2),
        ('[models]\n\ndevice = "gpu"\n', "models.device", '"gpu"', 3),
        ('[bot]\nname = ""\n', "bot.name", '""', 2),
        ('[bot]\ndocs_dir = "../../etc"\n', "bot.docs_dir", '"../../etc"', 2),
        ('[bot]\n\ndata_dir = "/tmp"\n', "bot.data_dir", '"/tmp"', 3),
    ],
)
def test_a_bad_value_names_the_key_the_value_the_file_and_the_line(
    tmp_path: Path, text: str, key: str, value: str, line: int
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert (error.key, error.line, error.file) == (key, line, path)
    assert f"{path}:{line}" in str(error)
    assert f"`{key} = {value}`" in str(error)


def test_a_wrong_choice_lists_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r'choose one of: "auto", "cpu", "cuda"'):
        load_config(write(tmp_path, '[models]\ndevice = "gpu"\n'))


def test_a_misspelt_key_is_an_error_that_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[generation]\ntempreture = 0.5\n"))
    assert caught.value.key == "generation.tempreture"
    assert caught.value.line == 2
    assert "temperature" in str(caught.value)  # the hint names the right spelling


def test_an_unknown_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting `retreival`") as caught:
        load_config(write(tmp_path, "[retreival]\nk = 3\n"))
    assert caught.value.line == 1


def test_invalid_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[bot]\nname = "unterminated\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 2
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "hybrid.toml")


def test_settings_are_immutable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    with pytest.raises(AttributeError):
        config.generation.temperature = 1.0  # type: ignore[misc]


def test_the_sample_config_is_valid_and_documents_every_setting() -> None:
    load_config(TEMPLATE_CONFIG)
    text = TEMPLATE_CONFIG.read_text()
    lines = text.splitlines()
    for table in msgspec.structs.fields(Config):
        assert f"[{table.name}]" in text
        for setting in msgspec.structs.fields(table.type):
            if setting.default is None:  # an optional table, off by default: shown commented
                assert f"# [{table.name}.{setting.name}]" in text
                continue
            at = next(
                (i for i, line in enumerate(lines) if re.match(rf"{setting.name} = ", line)), None
            )
            assert at is not None, f"{table.name}.{setting.name} missing from the sample"
            assert lines[at - 1].startswith("#"), f"{table.name}.{setting.name} has no comment"


def test_the_threads_setting_limits_torch_before_and_after_it_is_imported() -> None:
    assert load_config(TEMPLATE_CONFIG).models.threads == 0, "0: every core, or OMP_NUM_THREADS"
    script = (
        "import os, sys; from hybrid.hardware import limit_threads; limit_threads(1); "
        "import torch; before = torch.get_num_threads(); torch.set_num_threads(2); "
        "limit_threads(1); print(before, torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.split() == ["1", "1", "1"], out.stderr


def test_a_setting_is_written_in_place_keeping_comments_and_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path, "# my bot\n[retrieval]\n# how many\ntop_k = 3\n\n[server]\nport = 9000\n"
    )
    write_setting(path, "retrieval", "handover_below", 0.25)
    write_setting(path, "retrieval", "top_k", 5)
    write_setting(path, "generation", "seed", 7)
    config = load_config(path)
    assert (config.retrieval.handover_below, config.retrieval.top_k) == (0.25, 5)
    assert (config.server.port, config.generation.seed) == (9000, 7)
    assert path.read_text().startswith("# my bot\n[retrieval]\n# how many\ntop_k = 5\n")
    with pytest.raises(ConfigError, match="handover_below"):
        write_setting(path, "retrieval", "handover_below", 3)
    assert load_config(path).retrieval.handover_below == 0.25, "a bad value is not written"


def test_vllm_url_is_one_address_or_a_list_of_replicas(tmp_path: Path) -> None:
    one = load_config(write(tmp_path, '[vllm]\nurl = "http://10.0.0.5:8001"\n'))
    assert one.vllm.urls == ["http://10.0.0.5:8001"]
    text = '[vllm]\nurl = ["http://a:8001", "http://b:8001"]\n'
    assert load_config(write(tmp_path, text)).vllm.urls == ["http://a:8001", "http://b:8001"]
    for bad in ("[]", '["http://a:8001", "b:8001"]'):
        with pytest.raises(ConfigError, match=r"vllm\.url"):
            load_config(write(tmp_path, f"[vllm]\nurl = {bad}\n"))
