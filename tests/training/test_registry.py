"""The adapter registry: versions, statuses, promotion and rollback; a publication
killed half-way is never listed and is cleaned up by the next one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hybrid import HybridError
from hybrid.types import AdapterRef
from training import AdapterNotFoundError, AdapterRegistry

ROOT = Path(__file__).resolve().parents[2]


def fake_adapter(folder: Path) -> dict[str, object]:
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    return {"metrics": {"final_train_loss": 1.0}}


@pytest.fixture
def registry(tmp_path: Path):
    with AdapterRegistry(tmp_path / "hybrid.db", tmp_path / "adapters") as registry:
        yield registry


def statuses(registry: AdapterRegistry) -> dict[int, str]:
    return {record.version: record.status for record in registry.list("style")}


def test_versions_are_numbered_and_promotion_moves_the_active_one(registry) -> None:
    for _ in range(3):
        registry.publish("style", fake_adapter)
    assert statuses(registry) == {1: "candidate", 2: "candidate", 3: "candidate"}
    with pytest.raises(AdapterNotFoundError, match="no active version"):
        registry.get(AdapterRef("style"))
    assert registry.promote("style", 1).status == "active"
    assert registry.get(AdapterRef("style")).version == 1
    assert registry.promote("style").version == 3  # the newest candidate
    assert statuses(registry) == {1: "retired", 2: "candidate", 3: "active"}
    assert registry.rollback("style").version == 1
    assert statuses(registry) == {1: "active", 2: "candidate", 3: "candidate"}
    assert registry.get(AdapterRef("style", 3)).manifest["version"] == 3
    with pytest.raises(HybridError, match="already active"):
        registry.promote("style", 1)


def test_unknown_names_and_versions_say_what_exists(registry) -> None:
    with pytest.raises(AdapterNotFoundError, match="no adapter named 'style'"):
        registry.get(AdapterRef("style"))
    registry.publish("style", fake_adapter)
    with pytest.raises(AdapterNotFoundError, match=r"no version 7 \(versions: \[1\]\)"):
        registry.get(AdapterRef("style", 7))
    with pytest.raises(AdapterNotFoundError) as raised:
        registry.get(AdapterRef("tone"))
    assert "known adapters: style" in str(raised.value)
    registry.promote("style")
    with pytest.raises(HybridError, match="no earlier active version"):
        registry.rollback("style")
    with pytest.raises(HybridError, match="bad adapter name"):
        registry.publish("../escape", fake_adapter)


def test_a_failed_write_leaves_nothing(registry, tmp_path: Path) -> None:
    def broken(folder: Path) -> dict[str, object]:
        fake_adapter(folder)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        registry.publish("style", broken)
    assert registry.list() == []
    assert list((tmp_path / "adapters" / "style").iterdir()) == []


KILL_PUBLISH = """
import os, signal, sys
from pathlib import Path
from training import AdapterRegistry

def write(folder):
    (folder / "adapter_config.json").write_text("{}")
    os.kill(os.getpid(), signal.SIGKILL)  # half-written: weights never arrive

with AdapterRegistry(Path(sys.argv[1]) / "hybrid.db", Path(sys.argv[1]) / "adapters") as r:
    r.publish("style", write)
"""


def test_a_publication_killed_half_way_is_never_listed(tmp_path: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", KILL_PUBLISH, str(tmp_path)], cwd=ROOT, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr
    with AdapterRegistry(tmp_path / "hybrid.db", tmp_path / "adapters") as registry:
        assert registry.list() == []
        with pytest.raises(AdapterNotFoundError):
            registry.get(AdapterRef("style", 1))
        leftovers = [p.name for p in (tmp_path / "adapters" / "style").iterdir()]
        assert len(leftovers) == 1 and leftovers[0].startswith(".1.tmp-")
        record = registry.publish("style", fake_adapter)
        assert record.version == 1 and [r.version for r in registry.list()] == [1]
        assert [p.name for p in (tmp_path / "adapters" / "style").iterdir()] == ["1"]
