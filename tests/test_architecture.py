"""The dependency rules of ``docs/architecture.md``, enforced on the code.

Static: every ``import`` in ``src/funduskit`` (at module level or inside a function) goes from a
stage folder to one the rules allow. At run time, in fresh interpreters: the prediction path
never loads the training package, and the metrics and the evaluation never load torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "funduskit"

#: Stage folder -> the stage folders it may import (besides itself and the package root).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "data": {"core"},
    "transforms": {"core", "data"},
    "scoring": {"core", "data"},
    "synthetic": {"core", "data", "scoring"},
    "runtime": {"core"},
    "models": {"core"},
    "runs": {"core", "models", "runtime"},
    "training": {"core", "data", "transforms", "scoring", "runtime", "models", "runs"},
    "inference": {"core", "data", "transforms", "scoring", "runtime", "models", "runs"},
    "tools": {"core", "data", "transforms", "scoring", "synthetic", "runtime", "models", "runs", "training",
              "inference"},
    "serve": {"core", "data", "scoring", "inference"},
    "cli": {"core", "data", "transforms", "scoring", "synthetic", "runtime", "models", "runs", "training",
            "inference", "tools", "serve"},
}
#: Stage folders that never import torch, at module level or inside a function.
TORCH_FREE = ("core", "data", "transforms", "scoring", "synthetic")
#: Modules directly in src/funduskit (everything else lives in a stage folder).
ROOT_MODULES = {"__init__.py", "__main__.py"}
#: Folders of package data beside the stages (no Python in them): the shipped starter models and the
#: quality gate's content classifier.
DATA_FOLDERS = {"starter_models", "assets"}


def stage_of(module: str) -> str | None:
    """``funduskit.inference.pipeline`` -> ``inference``; the package root -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "funduskit" else None


def imported_modules(path: Path) -> set[str]:
    """Every funduskit module ``path`` imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(name for name in names[:1] if name.startswith("funduskit"))
            if node.module == "funduskit":  # `from funduskit import x`: x is a stage or a root name
                found.update(f"funduskit.{alias.name}" for alias in node.names if alias.name in ALLOWED)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("funduskit"))
    return found


def test_the_top_level_holds_stage_folders_only() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ROOT_MODULES)
    assert loose == [], f"modules outside a stage folder: {loose}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")} - DATA_FOLDERS
    assert folders == set(ALLOWED), f"stage folders {sorted(folders)} differ from the rules {sorted(ALLOWED)}"
    assert not [p for folder in DATA_FOLDERS for p in (PACKAGE / folder).rglob("*.py")], "code in a data folder"


def test_every_import_follows_the_stage_rules() -> None:
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) == 1:
            continue  # the package root (version, __main__) may import anything
        stage = relative.parts[0]
        for module in imported_modules(path):
            target = stage_of(module)
            if target is not None and target != stage and target not in ALLOWED[stage]:
                broken.append(f"{relative} imports {module} ({stage} -> {target})")
    assert broken == [], "\n".join(broken)


def test_torch_free_stages_never_import_torch() -> None:
    for stage in TORCH_FREE:
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
            names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
            assert not {name for name in names if name == "torch" or name.startswith("torch.")}, path


def test_the_rules_have_no_cycle() -> None:
    seen: dict[str, int] = {}

    def depth(stage: str, path: tuple[str, ...] = ()) -> int:
        assert stage not in path, f"cycle {' -> '.join(path + (stage,))}"
        if stage not in seen:
            seen[stage] = 1 + max((depth(d, path + (stage,)) for d in ALLOWED[stage]), default=0)
        return seen[stage]

    for stage in ALLOWED:
        depth(stage)


def _loaded_after(code: str) -> set[str]:
    """The top-level names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                               check=True)
    return set(completed.stdout.split())


@pytest.mark.parametrize("module", ["funduskit.inference.pipeline", "funduskit.inference.onnx_backend",
                                    "funduskit.inference.predictor", "funduskit.cli.predict"])
def test_the_prediction_path_never_imports_the_training_package(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert not any(name == "funduskit.training" or name.startswith("funduskit.training.") for name in loaded)


@pytest.mark.parametrize("module", ["funduskit.scoring.metrics", "funduskit.scoring.evaluate",
                                    "funduskit.scoring.submission", "funduskit.inference.tuning", "funduskit.cli.evaluate"])
def test_metrics_and_evaluation_never_import_torch(module: str) -> None:
    assert "torch" not in _loaded_after(f"import {module}")


def test_models_never_import_the_command_line() -> None:
    for path in sorted((PACKAGE / "models").rglob("*.py")):
        assert not any(stage_of(module) == "cli" for module in imported_modules(path)), path
