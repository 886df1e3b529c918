"""Student notebooks (course_lib.book.student, scripts/make_student_notebooks.py) and the Colab set-up cell.

  (a) the committed student notebooks and book/students.md are what the script generates now;
  (b) every lecture solution, run with its checker, passes;
  (c) a student notebook stops at each unsolved exercise with the exercise's text;
  (d) nbval and the book leave the student notebooks alone;
  (e) every chapter starts with COLAB_CELL (fails until the cell is added to each chapter).
"""

import ast
import contextlib
import io
import json
import subprocess
import os
import sys
import tomllib
import types
from pathlib import Path

import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager

from course_lib.book import colab, student
from course_lib.book.notebooks import read_py

ROOT = Path(__file__).resolve().parents[2]
LECTURES = student.lecture_notebooks(ROOT)
CHAPTER_PYS = sorted(ROOT.glob("chapters/[0-9][0-9]_*/[0-9][0-9]_*.py"))
REGENERATE = "python scripts/make_student_notebooks.py"


def _python(source: str) -> str:
    """A cell's source as plain Python (IPython magics become get_ipython() calls)."""
    return TransformerManager().transform_cell(source)


def _imports(nb) -> str:
    """The import statements of the code cells before the first solution: what solutions and checkers need."""
    lines = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code":
            continue
        if "solution" in tags or student.STUB_TAG in tags:
            break
        source = _python(cell.source)
        lines += [ast.get_source_segment(source, node) for node in ast.parse(source).body
                  if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


def _with_checkers(nb, tag: str) -> list[tuple[nbformat.NotebookNode, nbformat.NotebookNode]]:
    """(cell tagged ``tag``, the checker cell after it) pairs; the next code cell must be the checker."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    pairs = []
    for k, cell in enumerate(code):
        if tag in cell.metadata.get("tags", []):
            checker = code[k + 1] if k + 1 < len(code) else None
            assert checker is not None and "nbval-check-output" in checker.metadata.get("tags", []), (
                f"the code cell after solution {cell.source[:40]!r} must be its checker, tagged nbval-check-output")
            pairs.append((cell, checker))
    return pairs


def _run(*sources: str, namespace: dict | None = None) -> str:
    """Executes cell sources in order in one namespace (IPython-free); returns what they printed."""
    namespace = {"__name__": "__main__"} if namespace is None else namespace
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for source in sources:
            exec(compile(_python(source), "<cell>", "exec"), namespace)
    return out.getvalue()


# ---- (a) the committed copies are up to date, and regenerating them is byte-stable ----

def test_there_are_lecture_notebooks():
    assert LECTURES and not any(p.stem.endswith("_student") for p in LECTURES)


def test_committed_student_notebooks_are_up_to_date(tmp_path):
    run = subprocess.run([sys.executable, "scripts/make_student_notebooks.py", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated == sorted([colab.student_path(p) for p in LECTURES] + [Path(student.STUDENTS_PAGE)])
    stale = [str(p) for p in generated if not (ROOT / p).exists() or (ROOT / p).read_bytes() != (tmp_path / p).read_bytes()]
    assert not stale, f"stale or missing: {stale}. Regenerate them with `{REGENERATE}` and commit them."


def test_regenerating_is_byte_stable():
    first, second = student.generate(ROOT, LECTURES[:1]), student.generate(ROOT, LECTURES[:1])
    assert first == second
    assert "executed" not in json.loads(first[colab.student_path(LECTURES[0])])["metadata"]["course_student"]


# ---- (b) every solution passes its checker ----

@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_solutions_pass_their_checkers(lecture):
    nb = nbformat.read(ROOT / lecture, as_version=4)
    pairs = _with_checkers(nb, "solution")
    preamble = _imports(nb)
    for solution, checker in pairs:
        try:
            printed = _run(preamble, solution.source, checker.source)
        except NameError as err:
            pytest.fail(f"{lecture}: {err}. A solution and its checker may use only the chapter's imports.")
        assert "✓" in printed, f"{lecture}: the checker after {solution.source[:40]!r} printed {printed!r}"


# ---- (c) a student notebook stops at each unsolved exercise, with the exercise's text ----

SYNTHETIC = [
    ("markdown", "# 9. A synthetic chapter", []),
    ("code", "import torch\n\nfrom course_lib.exercises import check_against_reference", []),
    ("markdown", "Some prose.\n\n```{exercise} Double it\n:label: ex-double\n\nWrite `double(x)` returning $2x$"
                 " (a \"tensor\").\n```\n\n```{solution-start} ex-double\n:class: dropdown\n```", []),
    ("code", "@torch.no_grad()\ndef double(\n    x: torch.Tensor,  # (B,)\n) -> torch.Tensor:\n"
             "    \"\"\"The secret docstring.\"\"\"\n    return 2 * x  # the secret", ["solution"]),
    ("markdown", "Why it works: the secret explanation.", []),
    ("markdown", "```{solution-end}\n```", []),
    ("code", 'check_against_reference("double", double, lambda x: 2 * x, [{"x": torch.ones(3)}], hint="2 x")',
     ["nbval-check-output"]),
    ("markdown", "```{exercise} A class\n:label: ex-class\n\nWrite `Twice`.\n```\n\n"
                 "````{solution} ex-class\n:class: dropdown\n\nThe secret text.\n```python\nx = 1\n```\n````", []),
    ("code", "class Twice(torch.nn.Module):\n    def forward(self, x): return 2 * x  # the secret\n\n\n"
             "y = Twice()(torch.ones(1))", ["solution"]),
    ("code", "print('after', y)", []),
]


def _synthetic():
    nb = nbformat.v4.new_notebook()
    for k, (kind, source, tags) in enumerate(SYNTHETIC):
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(new(source, metadata={"tags": tags} if tags else {}, id=f"c{k}"))
        if kind == "code":
            nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="old output\n")]
            nb.cells[-1].execution_count = k
    return nb


def test_synthetic_student_notebook_hides_the_solutions():
    nb = student.make_student_notebook(_synthetic(), "chapters/09_x/09_x.ipynb")
    text = nbformat.writes(nb)
    assert "secret" not in text and "solution-start" not in text and "solution-end" not in text
    assert "{solution}" not in text and "2 * x\\n" not in text
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs and code[0].execution_count == 1  # before the first exercise: kept
    assert all(not c.outputs and c.execution_count is None for c in code[1:])  # after it: cleared
    stub = code[1].source
    assert stub.startswith("@torch.no_grad()\ndef double(\n    x: torch.Tensor,  # (B,)\n) -> torch.Tensor:\n")
    assert code[1].metadata["tags"] == [student.STUB_TAG]
    assert "    def forward(self, x):\n" in code[3].source and "y = " not in code[3].source
    assert nb.metadata["course_student"]["generated_from"] == "chapters/09_x/09_x.ipynb"
    assert nb.metadata["jupytext"] == {"formats": "ipynb"}  # never paired with a .py by jupytext.toml
    assert nb.cells[1].id == "student-note" and "Student version" in nb.cells[1].source


def test_synthetic_student_notebook_stops_at_the_first_exercise():
    nb = student.make_student_notebook(_synthetic(), "chapters/09_x/09_x.ipynb")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    namespace = {}
    _run(code[0], code[1], namespace=namespace)  # imports, the stub's definition: fine
    with pytest.raises(NotImplementedError) as info:
        _run(code[2], namespace=namespace)  # the checker
    message = str(info.value)
    assert "double is not implemented yet" in message
    assert "Exercise: Double it\n  Write `double(x)` returning $2x$ (a \"tensor\")." in message
    with pytest.raises(NotImplementedError, match="Exercise: A class"):
        _run(code[3], namespace=namespace)  # a stub at the top level stops right there


def test_stub_literals_round_trip():
    exercise = student.Exercise("l", "Quotes \" and \\ backslashes", "$\\sqrt{x}$ and ünïcode\n\tand a tab")
    source = student.stub_source("def f(a, b=(1, 2)): return a", exercise)
    assert source.startswith("def f(a, b=(1, 2)):\n    # Your code here")
    with pytest.raises(NotImplementedError) as info:
        _run(source + "\nf(1)")
    assert str(info.value) == exercise.message()


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_student_notebook_stops_at_each_unsolved_exercise(lecture):
    path = ROOT / colab.student_path(lecture)
    assert path.exists(), f"{path} is missing: run `{REGENERATE}`"
    lecture_nb, nb = nbformat.read(ROOT / lecture, as_version=4), nbformat.read(path, as_version=4)
    solutions, stubs = _with_checkers(lecture_nb, "solution"), _with_checkers(nb, student.STUB_TAG)
    assert len(stubs) == len(solutions) and not _with_checkers(nb, "solution")
    exercises = [e for c in nb.cells if c.cell_type == "markdown" for e in student.find_exercises(c.source)]
    preamble = _imports(nb)
    for (stub, checker), exercise in zip(stubs, exercises):
        with pytest.raises(NotImplementedError) as info:
            _run(preamble, stub.source, checker.source)
        assert f"Exercise: {exercise.title}" in str(info.value)
    text = "\n".join(c.source for c in nb.cells)
    for solution, _ in solutions:  # no line of a solution's body survives
        body = [line.strip() for line in solution.source.split("\n")[1:] if line.strip()]
        assert not [line for line in body if line in text], f"{path.name} shows solution code"
    assert "{solution-start}" not in text and "{solution-end}" not in text
    first = next(k for k, c in enumerate(nb.cells) if c.cell_type == "markdown" and student.find_exercises(c.source))
    assert all(not c.outputs and c.execution_count is None for c in nb.cells[first:] if c.cell_type == "code")
    assert nb.metadata["course_student"]["generated_from"] == lecture.as_posix()


# ---- (d) nbval skips the student notebooks; the book builds only its table of contents ----

def test_nbval_does_not_collect_student_notebooks():
    run = subprocess.run([sys.executable, "-m", "pytest", "chapters", "--collect-only", "-q", "--nbval-lax",
                          "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "_student.ipynb" not in run.stdout
    assert all(p.as_posix() in run.stdout for p in LECTURES)


def test_book_links_but_does_not_build_the_student_notebooks():
    config = yaml.safe_load((ROOT / "book/_config.yml").read_text())
    toc = (ROOT / "book/_toc.yml").read_text()
    assert config["only_build_toc_files"] is True and "_student" not in toc and "book/students" in toc
    page = (ROOT / student.STUDENTS_PAGE).read_text()
    for lecture in LECTURES:
        assert colab.colab_url(colab.student_path(lecture), ROOT) in page
    assert colab.colab_url("chapters/02_vae/02_vae_student.ipynb", ROOT) == (
        "https://colab.research.google.com/github/diffusion-from-scratch/course/blob/main/"
        "chapters/02_vae/02_vae_student.ipynb")


# ---- (e) the Colab cell ----

def test_colab_cell_names_this_package_repository_and_ref():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    repo = yaml.safe_load((ROOT / "book/_config.yml").read_text())["repository"]["url"]
    assert repo == f"https://{colab.REPOSITORY}"
    assert f'URL = "git+{repo}@{colab.COURSE_REF}"' in colab.COLAB_CELL
    assert f'"{project["name"]}[colab] @ {{URL}}"' in colab.COLAB_CELL
    assert colab.COURSE_REF == "main" or colab.COURSE_REF == f"v{project['version']}", "a release ref is its tag"
    assert "colab" in project["optional-dependencies"]
    assert not any(r.split(">")[0].split("=")[0].strip() in ("torch", "torchvision")
                   for r in project["optional-dependencies"]["colab"]), "never pin what Colab ships"
    assert max(len(line) for line in colab.COLAB_CELL.splitlines()) <= 79


def test_the_badges_and_the_students_page_open_the_ref_the_cell_installs():
    """One ref, defined once (course_lib.book.colab.COURSE_REF): install cell, badges, students page."""
    sys.path.insert(0, str(ROOT / "book/_ext"))
    try:
        import colab_badges
    finally:
        sys.path.remove(str(ROOT / "book/_ext"))
    assert colab_badges.COURSE_REF is colab.COURSE_REF
    url = colab_badges.colab_url("https://github.com/x/y", colab.COURSE_REF, "a.ipynb")
    assert url.endswith(f"/x/y/blob/{colab.COURSE_REF}/a.ipynb")
    assert f"/blob/{colab.COURSE_REF}/" in colab.colab_url("chapters/02_vae/02_vae_student.ipynb", ROOT)
    text = (ROOT / "book/_ext/colab_badges.py").read_text()
    assert "repository_branch" not in text, "the badges must not read another ref"


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: Path(p).stem)
def test_notebooks_open_on_a_gpu_runtime_in_colab(lecture):
    for path in (ROOT / lecture, ROOT / colab.student_path(lecture)):
        meta = nbformat.read(path, as_version=4).metadata
        assert meta.get("accelerator") == "GPU" and meta.get("colab", {}).get("gpuType") == "T4", path.name


def test_colab_cell_survives_the_jupytext_round_trip_as_a_magic():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell(colab.COLAB_CELL)])
    import jupytext

    text = jupytext.writes(nb, fmt="py:percent")
    assert '    # %pip install -q "course-lib[colab]' in text  # commented in the .py ...
    assert jupytext.reads(text, fmt="py:percent").cells[1].source == colab.COLAB_CELL  # ... a magic again


def test_colab_cell_installs_on_colab_and_does_nothing_elsewhere(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    calls = []
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: calls.append((name, line)))
    _run(colab.COLAB_CELL, namespace={"get_ipython": lambda: shell})
    assert calls == [] and "COURSE_PROFILE" not in os.environ
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a T4 runtime
    namespace = {"get_ipython": lambda: shell}
    printed = _run(colab.COLAB_CELL, namespace=namespace)
    assert calls == [("pip", 'install -q "course-lib[colab] @ {URL}"')]  # IPython expands {URL}
    assert namespace["URL"] == f"git+https://github.com/diffusion-from-scratch/course@{colab.COURSE_REF}"
    assert os.environ["COURSE_PROFILE"] == "colab" and "No GPU" not in printed


def test_colab_cell_on_a_cpu_runtime_falls_back_to_the_laptop_profile(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: None)
    printed = _run(colab.COLAB_CELL, namespace={"get_ipython": lambda: shell})
    assert os.environ["COURSE_PROFILE"] == "laptop" and "No GPU in this runtime" in printed


@pytest.mark.parametrize("py", CHAPTER_PYS, ids=lambda p: p.stem)
def test_every_chapter_starts_with_the_colab_cell(py):
    first = next(c for c in read_py(py).cells if c.cell_type == "code")
    assert first.source == colab.COLAB_CELL, (
        f"{py.relative_to(ROOT)}: the first code cell must be course_lib.book.colab.COLAB_CELL, in py:percent:\n\n"
        "# %%\n" + colab.COLAB_CELL.replace("    %pip", "    # %pip"))
