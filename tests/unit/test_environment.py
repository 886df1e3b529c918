"""environment.yml (conda) installs the same set as pyproject.toml (pip), and the book's
Jupyter Book stays on 1.x (2.x downloads its theme at build time and fails offline)."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs |= set(extra)
    return reqs


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {r for r in pip_section if not r.startswith("-e")}
    assert "-e ." in pip_section, "environment.yml must install course_lib itself (-e .)"
    assert listed == _pyproject_requirements(), (
        f"only in environment.yml: {sorted(listed - _pyproject_requirements())}; "
        f"only in pyproject.toml: {sorted(_pyproject_requirements() - listed)}")
    assert any(str(d).startswith("python") for d in env["dependencies"])


def test_jupyter_book_is_pinned_below_2():
    assert any(r.replace(" ", "").startswith("jupyter-book") and "<2" in r for r in _pyproject_requirements())
