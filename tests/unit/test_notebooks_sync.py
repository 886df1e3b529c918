"""Each chapter's .py (what people edit) and .ipynb (what the book renders) hold the same cells.
Compared by content, not by file times."""

import shutil
from pathlib import Path

import nbformat
import pytest

from course_lib.book.notebooks import pair_differences, read_py

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted(ROOT.glob("chapters/[0-9][0-9]_*/[0-9][0-9]_*.py"))


def test_there_are_chapters():
    assert CHAPTERS, "no chapters/NN_name/NN_name.py found"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_pair_in_sync(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb} is missing: run python book/execute_chapters.py --profile smoke {py}"
    problems = pair_differences(py, ipynb)
    assert not problems, "out of sync; re-execute the chapter (book/execute_chapters.py): " + "; ".join(problems)


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_stored_outputs_have_provenance_and_no_errors(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    meta = nb.metadata.get("course", {})
    assert {"profile", "hardware", "device", "executed"} <= set(meta), f"{py.stem}: no provenance in metadata"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{py.stem}: some cells were never executed"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{py.stem}: stored outputs contain errors: {[e.ename for e in errors]}"


def test_sync_check_catches_an_edit(tmp_path):
    py = CHAPTERS[0]
    shutil.copy(py, tmp_path / py.name)
    shutil.copy(py.with_suffix(".ipynb"), tmp_path / py.with_suffix(".ipynb").name)
    edited = tmp_path / py.name
    edited.write_text(edited.read_text().replace("import torch", "import torch  # edited", 1))
    assert pair_differences(edited, edited.with_suffix(".ipynb"))
    nb = read_py(py)
    assert len(nb.cells) > 10
