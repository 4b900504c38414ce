"""The one-way flow of DESIGN.md §4, read from the source: who may import whom."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hybrid", "indexes", "training", "server")
# What each package may import of the others: anywhere in the code, and at module level.
ALLOWED = {
    "hybrid": set(),
    "indexes": {"hybrid"},
    "training": {"hybrid"},
    "server": {"hybrid", "indexes", "training"},
}
# Core stays light: the standard library plus these small dependencies at module level.
CORE_THIRD_PARTY = {"msgspec", "typer", "click", "rich"}
HEAVY = {"torch", "transformers", "peft", "bitsandbytes", "faiss", "sentence_transformers", "numpy"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level name, imported at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        # Imports under `if TYPE_CHECKING:` or inside functions are not module level.
        found.extend((name.split(".")[0], id(node) in module_level) for name in names)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_downstream(package: str) -> None:
    cli = ROOT / "hybrid" / "cli"
    for path in modules(package):
        for name, at_module_level in imports(path):
            if name not in PACKAGES or name == package:
                continue
            if cli in path.parents and not at_module_level:
                continue  # the CLI reaches every package, lazily, inside its commands
            assert name in ALLOWED[package], f"{path.relative_to(ROOT)} imports {name}"


def test_core_imports_only_the_standard_library_and_small_dependencies() -> None:
    for path in modules("hybrid"):
        for name, at_module_level in imports(path):
            if not at_module_level or name in PACKAGES or name == "__future__":
                continue
            assert name in sys.stdlib_module_names or name in CORE_THIRD_PARTY, (
                f"{path.relative_to(ROOT)} imports {name} at module level"
            )


@pytest.mark.parametrize("package", ["indexes", "training", "server"])
def test_heavy_libraries_are_imported_only_where_used(package: str) -> None:
    for path in modules(package):
        heavy = {name for name, top in imports(path) if top and name in HEAVY}
        assert not heavy, f"{path.relative_to(ROOT)} imports {heavy} at module level"


def test_the_cli_starts_without_loading_torch() -> None:
    # numpy is left out: sqlite-utils imports it on its own whenever it is installed.
    model_libraries = sorted(HEAVY - {"numpy"})
    probe = (
        "import sys, hybrid.cli, indexes, training, server; "
        "print(sorted(m for m in %r if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe % model_libraries], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
