"""The package's folders are layers: a module imports only from its own folder and the folders above
it in course_lib's map (course_lib/__init__.py), never from one below. Checked from the imports."""

import ast
from pathlib import Path

import pytest

import course_lib

PKG = Path(course_lib.__file__).parent
LAYERS = ["course", "models", "training", "process", "data", "samplers", "evaluation", "recipes", "book",
          "exercises"]
MAX_LINES = 300


def _modules():
    return sorted(p for p in PKG.rglob("*.py") if p.parent != PKG)


def _imported_layers(path: Path) -> set[str]:
    """The course_lib folders that ``path`` imports from (relative or absolute imports, any depth)."""
    here = path.relative_to(PKG).parts[:-1]
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[:len(here) - (node.level - 1)])
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # "from .. import x": x is a folder
                    parts = [a.name for a in node.names]
            elif node.module and node.module.split(".")[0] == "course_lib":
                parts = node.module.split(".")[1:] or [a.name for a in node.names]
            else:
                continue
            layers.add(parts[0])
        elif isinstance(node, ast.Import):
            layers.update(a.name.split(".")[1] for a in node.names
                          if a.name.startswith("course_lib.") and a.name.count(".") >= 1)
    return layers


def test_every_folder_is_a_known_layer():
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS), f"folders {sorted(folders)} vs the layers {LAYERS}: update both and the map"
    for layer in LAYERS:
        assert f"{layer}/" in course_lib.__doc__, f"course_lib's map has no line for {layer}/"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_up_only(path):
    mine = LAYERS.index(path.relative_to(PKG).parts[0])
    below = sorted(layer for layer in _imported_layers(path) if layer in LAYERS and LAYERS.index(layer) > mine)
    assert not below, f"{path.relative_to(PKG)} imports from {below}, a layer below its own"


def test_the_checker_sees_a_wrong_way_import(tmp_path):
    fake = PKG / "process" / "_probe_layers.py"
    fake.write_text("from ..recipes.common import train_config\nfrom course_lib.book import plotting\n")
    try:
        assert {"recipes", "book"} <= _imported_layers(fake)
    finally:
        fake.unlink()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_modules_stay_short(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PKG)} has {n} lines; split it (at most {MAX_LINES})"
